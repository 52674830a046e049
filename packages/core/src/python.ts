import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { writeFileAtomic } from './atomic-write.ts';
import { cachePath } from './cache.ts';
import { withCacheLock } from './cache-lock.ts';
import { ChessError } from './errors.ts';

const run = promisify(execFile);

/** Repository root, found from this file's location (packages/core/src). */
export function repoRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

/**
 * The Python virtual environment holding the independent references (gguf-py,
 * numpy), keyed by the hash of python/requirements.txt so a change of pins
 * builds a fresh one. Created on first use; later calls do no work.
 * Returns the path of its python executable.
 */
export async function ensurePythonEnv(log: (line: string) => void = () => undefined): Promise<string> {
  const requirementsPath = join(repoRoot(), 'python', 'requirements.txt');
  const requirements = readFileSync(requirementsPath);
  const key = createHash('sha256').update(requirements).digest('hex').slice(0, 16);
  const envDir = cachePath('python', key);
  const python = join(envDir, 'bin', 'python');
  const marker = join(envDir, '.complete');
  if (existsSync(marker)) return python;
  // Test packages run in parallel and all need it: one creates it, the others wait
  // (two pip installs into one venv collide). Built in place: a venv is not relocatable.
  return withCacheLock(envDir, { what: 'the Python reference environment', waitMs: 20 * 60_000 }, async () => {
    if (existsSync(marker)) return python;
    const systemPython = process.env.CHESS_PYTHON ?? 'python3';
    log(`creating Python reference environment in ${envDir}`);
    await rm(envDir, { recursive: true, force: true });
    await mkdir(dirname(envDir), { recursive: true });
    try {
      await run(systemPython, ['-m', 'venv', envDir]);
      await run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', '-r', requirementsPath], {
        maxBuffer: 64 << 20,
      });
    } catch (error) {
      throw new ChessError(
        'PYTHON_ENV_FAILED',
        `could not create the Python reference environment in ${envDir} from ${requirementsPath}: ${(error as Error).message}. ` +
          'It needs python3 with venv and access to PyPI; set CHESS_PYTHON to another interpreter if needed.',
        { envDir },
        { cause: error },
      );
    }
    await writeFileAtomic(marker, new Date().toISOString());
    return python;
  });
}
