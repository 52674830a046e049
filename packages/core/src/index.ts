export { ChessError, UsageError, isChessError } from './errors.ts';
export { writeFileAtomic, withAtomicOutput, AtomicOutput, temporarySiblingPath } from './atomic-write.ts';
export { cacheRoot, cachePath } from './cache.ts';
export { withCacheLock, ensureCacheDir, lockPathOf, type CacheLockOptions, type CacheDirOptions } from './cache-lock.ts';
export { ensurePythonEnv, repoRoot } from './python.ts';
export { checkOutputPath, type OutputInput } from './output-path.ts';
export { escapeControl } from './printable.ts';
export { mulberry32 } from './random.ts';
