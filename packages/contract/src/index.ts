/**
 * @chess/contract: the sparse GGUF contract between the compiler and the
 * patched llama.cpp (docs/gguf-sparse.md) as one data table (`SPARSE_GGUF`) and
 * typed views of it: projections, counter sites, tensor names, methods,
 * storage layouts, the column-block table, the format version, the keep rule.
 */
export * from './contract.ts';
export * from './projections.ts';
export * from './methods.ts';
export * from './sites.ts';
export * from './names.ts';
export * from './layouts.ts';
export * from './column-blocks.ts';
export * from './keep.ts';
export * from './check.ts';
export * from './budget.ts';
