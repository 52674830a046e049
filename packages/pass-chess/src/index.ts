/**
 * @chess/pass-chess — CHESS-family activation sparsity as IR passes: the sparse
 * ops (`threshold`, `sparse_linear_out`, `sparse_linear_in`), thresholds from a
 * calibration profile, the rewrite pipeline per method (chess, chess+, cats,
 * teal) and its lowering to the sparse GGUF contract (docs/gguf-sparse.md).
 */
export * from './methods.ts';
export * from './ops.ts';
export * from './thresholds.ts';
export * from './passes.ts';
export * from './transpose.ts';
export * from './column-blocks.ts';
export * from './placement.ts';
export * from './transform.ts';
