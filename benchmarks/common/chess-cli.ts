/** `chess ...` (apps/cli) in a child process, for the benchmarks that drive the product the way a user does. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ChessError, repoRoot } from '@chess/core';

/** Runs `chess <args>`; its stderr (progress) goes to ours, its stdout is dropped. Rejects on a non-zero exit. */
export function chessCli(args: readonly string[]): Promise<void> {
  const main = join(repoRoot(), 'apps', 'cli', 'src', 'main.ts');
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), main, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolvePromise() : reject(new ChessError('BENCH_STEP_FAILED', `chess ${args.join(' ')} failed (exit ${code})`, { args: [...args] })),
    );
  });
}
