import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@chess/core';

/** Sources whose change can change a compiled model: the sparse contract (names, layouts), reading, calibration, the passes, code generation, the commands. */
const COMPILER_SOURCES = [
  'packages/contract/src',
  'packages/gguf/src',
  'packages/ir/src',
  'packages/import-gguf/src',
  'packages/codegen-gguf/src',
  'packages/pass-chess/src',
  'packages/compiler/src',
  'packages/calibrate/src',
  'apps/cli/src/commands/calibrate.ts',
  'apps/cli/src/commands/transform.ts',
];

/**
 * Hash of the compiler's sources (tests, fixtures and references left out): benchmarks and the
 * main job reuse a cached calibration profile or compiled model only while it holds, so a
 * changed compiler is measured with what it now writes.
 */
export function compilerSourcesHash(root: string = repoRoot()): string {
  const hash = createHash('sha256');
  const add = (path: string): void => {
    if (statSync(path).isDirectory()) {
      for (const entry of readdirSync(path).sort()) if (!entry.startsWith('__') && entry !== 'node_modules' && entry !== 'testing') add(join(path, entry)); // test helpers do not change compiled files
    } else if (/\.(ts|json)$/.test(path) && !/\.test\.ts$/.test(path)) {
      hash.update(`${path.slice(root.length)}\n`).update(readFileSync(path));
    }
  };
  for (const source of COMPILER_SOURCES) add(join(root, source));
  return hash.digest('hex').slice(0, 10);
}
