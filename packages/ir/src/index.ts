/**
 * @chess/ir — the graph IR of Llama-family decoders: typed values, an op
 * schema (extensible with registerOp), a verifier, a stable text form, pattern
 * rewriting, and a reference interpreter.
 */
export * from './types.ts';
export * from './schema.ts';
export { IrErrorCode } from './errors.ts';
export { registerOp, getOp, registeredOps } from './registry.ts';
export { Node, WeightRef, type Operand } from './node.ts';
export * from './module.ts';
export { inferNodeType, resolveAttrs } from './infer.ts';
export { valueNames } from './names.ts';
export { print, formatWeight, type PrintOptions } from './printer.ts';
export { parse, type ParseOptions } from './parser.ts';
export { verify } from './verifier.ts';
export * from './rewrite.ts';
export * from './pipeline.ts';
export * from './interpreter.ts';
export * from './weights.ts';
export * from './llama.ts';
