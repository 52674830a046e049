#!/usr/bin/env tsx
/**
 * Small runnable entry for the backend build until the `chess` CLI wires it:
 *   tsx src/bin.ts build    build (or reuse) the patched tools and addon
 *   tsx src/bin.ts path     print the directory of the patched tools (last line)
 *   tsx src/bin.ts status   print the cache state as JSON
 */
import { isChessError } from '@chess/core';
import { backendPath, backendStatus, buildBackend } from './build.ts';

const log = (line: string): void => {
  process.stderr.write(`[backend] ${line}\n`);
};

async function main(command: string | undefined): Promise<void> {
  switch (command) {
    case 'build': {
      const started = Date.now();
      const info = await buildBackend({ log });
      log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      process.stdout.write(`${info.binDir}\n`);
      return;
    }
    case 'path':
      process.stdout.write(`${backendPath()}\n`);
      return;
    case 'status':
      process.stdout.write(`${JSON.stringify(backendStatus(), null, 2)}\n`);
      return;
    default:
      process.stderr.write('usage: tsx src/bin.ts build|path|status\n');
      process.exitCode = 2;
  }
}

try {
  await main(process.argv[2]);
} catch (error) {
  if (isChessError(error)) {
    process.stderr.write(`error ${error.code}: ${error.message}\n`);
    process.exitCode = 1;
  } else {
    throw error;
  }
}
