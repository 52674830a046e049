/**
 * @chess/pass-chess — CHESS-family activation sparsity as IR passes: the sparse
 * ops (`threshold`, `sparse_linear_out`, `sparse_linear_in`), the methods by
 * name, thresholds from a calibration profile, the named passes and their
 * pipelines (check, transform, refine) lowering a module to the sparse GGUF
 * contract (docs/gguf-sparse.md). Depends on the IR and the contract only:
 * files, calibration and bytes of the storage layouts are the compiler
 * driver's (@chess/compiler).
 */
export * from './methods.ts';
export * from './ops.ts';
export * from './thresholds.ts';
export * from './budget.ts';
export * from './passes.ts';
export * from './registry.ts';
export * from './apply.ts';
export * from './encoder.ts';
export * from './transpose.ts';
export * from './placement.ts';
