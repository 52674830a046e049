/**
 * The kernel library's source tree (native/) as the kernel test suites see it:
 * its location and a hash of its sources that keys their cached CMake build trees.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const NATIVE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'native');

function listFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? listFiles(path) : [path];
    })
    .sort();
}

/** 16 hex digits over the directory itself and every file of native/ whose path matches `include`. */
export function nativeSourcesHash(include: RegExp): string {
  const hash = createHash('sha256');
  // CMake's cache records its source directory: each checkout gets its own build tree.
  hash.update(NATIVE_DIR);
  for (const file of listFiles(NATIVE_DIR).filter((f) => include.test(f))) {
    hash.update(relative(NATIVE_DIR, file));
    hash.update(readFileSync(file));
  }
  return hash.digest('hex').slice(0, 16);
}
