export { emitGGUF, type EmitOptions, type EmitResult } from './emit.ts';
export { ggufValueFromMeta } from './gguf-value.ts';
