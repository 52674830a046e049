import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectGGUFError, makeTempDir, type TempDir } from './__fixtures__/files.ts';
import { GGUFByteWriter } from './byte-writer.ts';
import { openGGUF } from './reader.ts';
import { GGMLType } from './types.ts';

/**
 * Files larger than 4 GiB without writing 4 GiB: the header places a tensor
 * past 2^32 and the file is extended with ftruncate (sparse), with only the
 * far tensor's bytes actually written.
 */
const FAR = 5 * 2 ** 30 + 96; // relative offset > 4 GiB, multiple of 32, high and low u32 words both non-zero
const FAR_BYTES = 16 * 4; // 'far' is 16 x F32

let dir: TempDir;
beforeAll(async () => {
  dir = await makeTempDir();
});
afterAll(() => dir.remove());

function header(farOffset: number): { bytes: Uint8Array; dataOffset: number; farOffsetField: number } {
  const w = new GGUFByteWriter().header(3, 2, 0);
  w.tensorInfo('near', [8], GGMLType.F32, 0);
  const farInfo = w.length;
  w.tensorInfo('far', [16], GGMLType.F32, farOffset);
  const farOffsetField = w.length - 8;
  expect(farOffsetField).toBe(farInfo + 8 + 3 + 4 + 8 + 4);
  w.padTo(32);
  return { bytes: w.bytes().slice(), dataOffset: w.length, farOffsetField };
}

/** Header, `near` data, a hole, then `far` data (when `withFar`), in a file of `size` bytes. */
async function sparseFile(name: string, size: number, withFar: boolean): Promise<{ path: string; farData: Uint8Array }> {
  const { bytes, dataOffset } = header(FAR);
  const path = join(dir.path, name);
  const farData = new Uint8Array(FAR_BYTES).map((_, i) => (i * 37 + 11) & 0xff);
  const handle = await open(path, 'w');
  try {
    await handle.write(bytes, 0, bytes.byteLength, 0);
    await handle.write(new Uint8Array(32).fill(7), 0, 32, dataOffset);
    await handle.truncate(size);
    if (withFar) await handle.write(farData, 0, FAR_BYTES, dataOffset + FAR);
  } finally {
    await handle.close();
  }
  return { path, farData };
}

describe('64-bit offsets', () => {
  it('reads a tensor placed beyond 4 GiB, whole and by range', async () => {
    const { dataOffset } = header(FAR);
    const { path, farData } = await sparseFile('far.gguf', dataOffset + FAR + FAR_BYTES, true);
    const file = await openGGUF(path);
    try {
      expect(file.fileSize).toBeGreaterThan(2 ** 32);
      const far = file.tensor('far')!;
      expect(far).toMatchObject({ offset: FAR, fileOffset: dataOffset + FAR, byteLength: FAR_BYTES, elementCount: 16 });
      expect(Buffer.from(await file.readTensorData(far))).toEqual(Buffer.from(farData));
      expect(Buffer.from(await file.readTensorRange(far, 20, 24))).toEqual(Buffer.from(farData.subarray(20, 44)));
      expect(Buffer.from(await file.readTensorData(file.tensor('near')!))).toEqual(Buffer.alloc(32, 7));
    } finally {
      await file.close();
    }
  });

  it('reports GGUF_TENSOR_OUT_OF_BOUNDS at the offset field when the tensor ends past the end of the file', async () => {
    const { dataOffset, farOffsetField } = header(FAR);
    const { path } = await sparseFile('short.gguf', dataOffset + FAR + FAR_BYTES - 1, false);
    const error = await expectGGUFError(openGGUF(path), 'GGUF_TENSOR_OUT_OF_BOUNDS', farOffsetField);
    expect(error.details).toMatchObject({ tensor: 'far', fileOffset: dataOffset + FAR, byteLength: FAR_BYTES });
  });

  it('reports GGUF_TENSOR_OUT_OF_BOUNDS for an offset near 2^64 (not a wrapped-around small one)', async () => {
    const w = new GGUFByteWriter().header(3, 1, 0);
    const infoStart = w.length;
    w.string('t').u32(1).u64(8).u32(GGMLType.F32).u64(2n ** 64n - 32n);
    w.padTo(32).raw(new Uint8Array(32));
    await expectGGUFError(openGGUF(await dir.file(w.bytes())), 'GGUF_TENSOR_OUT_OF_BOUNDS', infoStart + 8 + 1 + 4 + 8 + 4);
  });
});
