import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ChessError, cachePath, ensureCacheDir } from '@chess/core';

const run = promisify(execFile);
const require = createRequire(import.meta.url);

/** The llama.cpp release bound by the pinned node-llama-cpp (one squashed commit in its bundle). */
export const LLAMA_CPP_COMMIT = '80fb11ac73e66d89eae2c6a91d8a77428fa733ed';

/** Directory of the installed node-llama-cpp package. */
export function nodeLlamaCppDir(): string {
  // The package's `exports` hide package.json; walk up from its entry point instead.
  let dir = dirname(require.resolve('node-llama-cpp'));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'llama'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new ChessError('NODE_LLAMA_CPP_MISSING', 'node-llama-cpp is not installed; run pnpm install', {});
    dir = parent;
  }
  return dir;
}

/** The git bundle of llama.cpp shipped inside node-llama-cpp (no network needed). */
export function llamaCppBundlePath(): string {
  const bundle = join(nodeLlamaCppDir(), 'llama', 'gitRelease.bundle');
  if (!existsSync(bundle)) {
    throw new ChessError(
      'LLAMA_BUNDLE_MISSING',
      `${bundle} not found: node-llama-cpp@3.21.1 ships llama.cpp as this git bundle; reinstall dependencies with 'pnpm install'`,
      { bundle },
    );
  }
  return bundle;
}

/**
 * Pristine llama.cpp source tree, cloned once from node-llama-cpp's bundle into
 * the cache and never modified (patched trees are separate copies). Returns its path.
 */
export async function ensureLlamaSource(log: (line: string) => void = () => undefined): Promise<string> {
  const dir = cachePath('llama.cpp', `src-${LLAMA_CPP_COMMIT.slice(0, 12)}`);
  const complete = (d: string): boolean => {
    const marker = join(d, '.chess-complete');
    return existsSync(marker) && readFileSync(marker, 'utf8').trim() === LLAMA_CPP_COMMIT;
  };
  if (complete(dir)) return dir;
  const bundle = llamaCppBundlePath();
  return ensureCacheDir(dir, {
    what: `the llama.cpp ${LLAMA_CPP_COMMIT.slice(0, 7)} source tree`,
    complete,
    build: async (tmp) => {
      log(`cloning llama.cpp ${LLAMA_CPP_COMMIT.slice(0, 7)} from ${bundle}`);
      try {
        await run('git', ['clone', '-q', '--no-checkout', bundle, tmp]);
        await run('git', ['-C', tmp, '-c', 'advice.detachedHead=false', 'checkout', '-q', LLAMA_CPP_COMMIT]);
      } catch (error) {
        throw new ChessError('LLAMA_SOURCE_FAILED', `could not clone llama.cpp from ${bundle}: ${(error as Error).message}`, { bundle }, { cause: error });
      }
      await writeFile(join(tmp, '.chess-complete'), `${LLAMA_CPP_COMMIT}\n`);
    },
  });
}
