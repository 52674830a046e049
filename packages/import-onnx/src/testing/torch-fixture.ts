/**
 * The independent exporter for tests: a Python environment with torch,
 * transformers, onnx and onnxruntime (scripts/requirements.txt, keyed by its
 * hash), and ONNX files made by scripts/make-fixture.py, both in the cache and
 * created under its lock (test packages start at once on a cold cache).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ChessError, cachePath, ensureCacheDir, withCacheLock, writeFileAtomic } from '@chess/core';

const run = promisify(execFile);
const SCRIPTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts');

/** The venv of scripts/requirements.txt; returns its python. */
export async function ensureOnnxPythonEnv(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<string> {
  const requirements = join(SCRIPTS, 'requirements.txt');
  const key = createHash('sha256').update(readFileSync(requirements)).digest('hex').slice(0, 16);
  const envDir = cachePath('python-onnx', key);
  const python = join(envDir, 'bin', 'python');
  const marker = join(envDir, '.complete');
  if (existsSync(marker)) return python;
  return withCacheLock(envDir, { what: 'the Python ONNX exporter environment (torch, transformers, onnx, onnxruntime)', waitMs: 40 * 60_000 }, async () => {
    if (existsSync(marker)) return python;
    log(`creating the Python ONNX exporter environment in ${envDir} (torch, transformers: a few minutes)`);
    await rm(envDir, { recursive: true, force: true });
    await mkdir(dirname(envDir), { recursive: true });
    try {
      await run(process.env.CHESS_PYTHON ?? 'python3', ['-m', 'venv', envDir]);
      await run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', '-r', requirements], { maxBuffer: 64 << 20, timeout: 40 * 60_000 });
    } catch (error) {
      throw new ChessError('PYTHON_ENV_FAILED', `could not create the Python ONNX exporter environment in ${envDir} from ${requirements}: ${(error as Error).message}`, { envDir }, { cause: error });
    }
    await writeFileAtomic(marker, new Date().toISOString());
    return python;
  });
}

export interface TorchFixture {
  readonly dir: string;
  readonly model: string;
  readonly versions: Record<string, unknown>;
}

/** An ONNX export of a tiny random Llama (make-fixture.py), cached by script, requirements and arguments. */
export async function torchFixture(options: { seed?: number; tied?: boolean } = {}): Promise<TorchFixture> {
  const python = await ensureOnnxPythonEnv();
  const script = join(SCRIPTS, 'make-fixture.py');
  const args = ['--seed', String(options.seed ?? 0), ...(options.tied ? ['--tied'] : [])];
  const key = createHash('sha256').update(readFileSync(script)).update(readFileSync(join(SCRIPTS, 'requirements.txt'))).update(args.join(' ')).digest('hex').slice(0, 16);
  const dir = cachePath('onnx-fixtures', key);
  await ensureCacheDir(dir, {
    what: `the torch.onnx.export fixture (${args.join(' ')})`,
    complete: (d) => existsSync(join(d, 'versions.json')),
    build: async (tmp) => {
      try {
        await run(python, [script, '--out', tmp, ...args], { maxBuffer: 64 << 20, timeout: 20 * 60_000 });
      } catch (error) {
        throw new ChessError('ONNX_FIXTURE_FAILED', `make-fixture.py ${args.join(' ')} failed: ${(error as Error).message}`, {}, { cause: error });
      }
    },
  });
  return { dir, model: join(dir, 'model.onnx'), versions: JSON.parse(readFileSync(join(dir, 'versions.json'), 'utf8')) as Record<string, unknown> };
}
