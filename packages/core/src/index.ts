export { ChessError, UsageError, isChessError } from './errors.ts';
export { writeFileAtomic, withAtomicOutput, AtomicOutput, temporarySiblingPath } from './atomic-write.ts';
export { cacheRoot, cachePath } from './cache.ts';
export { withCacheLock, ensureCacheDir, lockPathOf, type CacheLockOptions, type CacheDirOptions } from './cache-lock.ts';
export { ensurePythonEnv, repoRoot } from './python.ts';
