/** Test helpers: temporary files and assertions on GGUFError code + offset. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { GGUFError, type GGUFErrorCode } from '../errors.ts';
import { openGGUF, type GGUFFile, type OpenGGUFOptions } from '../reader.ts';

export interface TempDir {
  readonly path: string;
  /** Write `bytes` to a fresh file in the directory; returns its path. */
  file(bytes: Uint8Array, name?: string): Promise<string>;
  remove(): Promise<void>;
}

export async function makeTempDir(prefix = 'chess-gguf-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  let counter = 0;
  return {
    path,
    async file(bytes, name = `f${counter++}.gguf`) {
      const file = join(path, name);
      await writeFile(file, bytes);
      return file;
    },
    remove: () => rm(path, { recursive: true, force: true }),
  };
}

/** Open `bytes` as a GGUF file (written to `dir`), closing it again when it opens. */
export async function openBytes(dir: TempDir, bytes: Uint8Array, options?: OpenGGUFOptions): Promise<GGUFFile> {
  return openGGUF(await dir.file(bytes), options);
}

/** Await `promise`, expecting a GGUFError with `code` (and `offset` when given). */
export async function expectGGUFError(promise: Promise<unknown>, code: GGUFErrorCode, offset?: number): Promise<GGUFError> {
  let caught: unknown;
  try {
    const value = await promise;
    if (value && typeof (value as GGUFFile).close === 'function') await (value as GGUFFile).close();
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(GGUFError);
  const error = caught as GGUFError;
  expect({ code: error.code, message: error.message }).toMatchObject({ code });
  if (offset !== undefined) {
    expect(error.details.offset, error.message).toBe(offset);
    expect(error.message).toContain(`at byte ${offset}`);
  }
  return error;
}
