/**
 * @chess/compiler — the compiler driver: `compile(options, { calibrator, events })`
 * validates its options once, then imports a dense GGUF, checks it, calibrates,
 * computes the thresholds, runs the named pass pipeline of @chess/pass-chess,
 * refines the thresholds on the sparse model and writes the sparse GGUF,
 * reporting each stage and pass as an event. `chess transform` is a thin
 * command line over it.
 */
export * from './defaults.ts';
export * from './options.ts';
export * from './events.ts';
export * from './calibrator.ts';
export * from './zero-sparsity.ts';
export * from './runtime-calibrator.ts';
export * from './layout-encoder.ts';
export * from './refine.ts';
export * from './run-passes.ts';
export * from './compile.ts';
export * from './listing.ts';
