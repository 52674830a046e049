import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { fetchDefaultModel } from '@chess/assets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ggufPyDump, toRefMetadata, toRefTensors, type RefDump } from './__reference__/gguf-py.ts';
import { expectGGUFError } from './__fixtures__/files.ts';
import { openGGUF, type GGUFFile } from './reader.ts';
import { GGMLType, GGUFValueType } from './types.ts';

describe('openGGUF on SmolLM2-135M-Instruct Q4_1, against gguf-py', () => {
  let path: string;
  let file: GGUFFile;
  let ref: RefDump;

  beforeAll(async () => {
    path = await fetchDefaultModel();
    [file, ref] = await Promise.all([openGGUF(path), ggufPyDump(await fetchDefaultModel(), { hashData: true })]);
  }, 120_000);
  afterAll(() => file?.close());

  it('has the same version, alignment and data offset', () => {
    expect({ version: file.version, alignment: file.alignment, dataOffset: file.dataOffset }).toEqual({
      version: ref.version,
      alignment: ref.alignment,
      dataOffset: ref.dataOffset,
    });
  });

  it('has the same metadata: keys in order, exact value types, full values (all 49152 tokens, 48900 merges)', () => {
    expect(toRefMetadata(file.metadata)).toEqual(ref.metadata);
    // The big arrays keep their on-disk item types and compact representations.
    expect(file.metadata.getArray('tokenizer.ggml.tokens', GGUFValueType.STRING).items).toHaveLength(49152);
    expect(file.metadata.getArray('tokenizer.ggml.merges', GGUFValueType.STRING).items).toHaveLength(48900);
    expect(file.metadata.getArray('tokenizer.ggml.token_type', GGUFValueType.INT32).items).toBeInstanceOf(Int32Array);
  });

  it('has the same tensor table (name, ggml-order shape, type, offsets, sizes)', () => {
    const { tensors } = ref;
    expect(toRefTensors(file.tensors)).toEqual(tensors.map(({ sha256: _, ...info }) => info));
    expect(file.tensors).toHaveLength(272);
    expect(file.tensor('token_embd.weight')).toMatchObject({ shape: [576, 49152], type: GGMLType.Q8_0 });
    expect(file.tensor('no.such.tensor')).toBeUndefined();
  });

  it('reads every tensor lazily with the same bytes as gguf-py', async () => {
    const hashes = new Map(ref.tensors.map((t) => [t.name, t.sha256]));
    for (const t of file.tensors) {
      const digest = createHash('sha256').update(await file.readTensorData(t)).digest('hex');
      expect(digest, t.name).toBe(hashes.get(t.name));
    }
  }, 60_000);

  it('reads ranges and chunks at the right file positions', async () => {
    const t = file.tensor('blk.0.ffn_down.weight')!;
    const handle = await open(path, 'r');
    try {
      const expected = Buffer.alloc(1000);
      await handle.read(expected, 0, 1000, t.fileOffset + 12345);
      expect(Buffer.from(await file.readTensorRange(t, 12345, 1000))).toEqual(expected);
    } finally {
      await handle.close();
    }
    const chunks: Uint8Array[] = [];
    for await (const chunk of file.tensorChunks(t, 100_000)) chunks.push(chunk);
    expect(chunks.map((c) => c.byteLength).slice(0, 2)).toEqual([100_000, 100_000]);
    expect(Buffer.concat(chunks)).toEqual(Buffer.from(await file.readTensorData(t)));
    await expectGGUFError(file.readTensorRange(t, t.byteLength - 10, 11), 'GGUF_BAD_RANGE', t.fileOffset);
    await expectGGUFError(file.readTensorRange(t, -1, 1), 'GGUF_BAD_RANGE');
    await expectGGUFError(file.readTensorRange({ ...t, byteLength: t.byteLength + 64 }, 0, 1), 'GGUF_BAD_RANGE');
  }, 30_000);

  it('offers typed getters that name the key, the file and the offset on error', () => {
    const { metadata } = file;
    expect(metadata.getString('general.architecture')).toBe('llama');
    expect(metadata.getNumber('llama.embedding_length')).toBe(576);
    expect(metadata.getNumber('llama.rope.freq_base')).toBe(100000);
    expect(metadata.getBigInt('llama.block_count')).toBe(30n);
    expect(metadata.getBoolean('tokenizer.ggml.add_bos_token')).toBe(false);
    const missing = (() => {
      try {
        metadata.getNumber('llama.nope');
      } catch (error) {
        return error;
      }
    })();
    expect(missing).toMatchObject({ code: 'GGUF_MISSING_KEY', details: { path, key: 'llama.nope' } });
    expect(() => metadata.getNumber('general.architecture')).toThrow(/at byte 24: metadata key 'general.architecture': expected a numeric scalar, found STRING/);
    expect(() => metadata.getArray('tokenizer.ggml.tokens', GGUFValueType.INT32)).toThrow(expect.objectContaining({ code: 'GGUF_WRONG_VALUE_TYPE' }));
    expect(() => metadata.getString('tokenizer.ggml.tokens')).toThrow(new RegExp(`^${path}: at byte \\d+: metadata key 'tokenizer.ggml.tokens': expected STRING, found ARRAY<STRING>$`));
  });

  it('fails reads after close, and close is idempotent', async () => {
    const other = await openGGUF(path);
    await other.close();
    await other.close();
    await expectGGUFError(other.readTensorData(other.tensors[0]!), 'GGUF_FILE_CLOSED');
  }, 30_000);
});

describe('openGGUF on a missing file', () => {
  it('throws GGUF_IO_ERROR naming the path', async () => {
    const error = await expectGGUFError(openGGUF('/nonexistent/model.gguf'), 'GGUF_IO_ERROR', 0);
    expect(error.message).toContain('/nonexistent/model.gguf');
    expect(error.details.reason).toBe('ENOENT');
  });
});
