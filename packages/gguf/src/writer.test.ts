import { createHash, randomBytes } from 'node:crypto';
import { copyFile, open, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_MODEL, fetchDefaultModel, sha256File } from '@chess/assets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ggufPyDump, toRefMetadata, toRefTensors } from './__reference__/gguf-py.ts';
import { expectGGUFError, makeTempDir, type TempDir } from './__fixtures__/files.ts';
import { GGUFMetadata, ggufValue as v, type GGUFValue } from './metadata.ts';
import { openGGUF, type GGUFFile } from './reader.ts';
import { GGMLType, GGUFValueType, ggmlRowBytes } from './types.ts';
import { writeGGUF, type GGUFTensorSource, type GGUFWriteSpec, type GGUFWriteTensor } from './writer.ts';

let dir: TempDir;
beforeAll(async () => {
  dir = await makeTempDir();
});
afterAll(() => dir.remove());

/** Stream every tensor of `src` in chunks, checking that at most one source is active at a time. */
function streamedTensors(src: GGUFFile, chunkBytes = 4 << 20): { tensors: GGUFWriteTensor[]; maxActive: () => number } {
  let active = 0;
  let maxActive = 0;
  const tensors = src.tensors.map((t) => ({
    name: t.name,
    shape: t.shape,
    type: t.type,
    byteLength: t.byteLength,
    data: async function* () {
      maxActive = Math.max(maxActive, ++active);
      yield* src.tensorChunks(t, chunkBytes);
      active--;
    },
  }));
  return { tensors, maxActive: () => maxActive };
}

describe('writeGGUF round trip of SmolLM2-135M-Instruct Q4_1', () => {
  it('reproduces the file byte for byte (sha256 equals the pinned one), streaming one tensor at a time', async () => {
    const src = await openGGUF(await fetchDefaultModel());
    const out = join(dir.path, 'roundtrip.gguf');
    try {
      const { tensors, maxActive } = streamedTensors(src);
      await writeGGUF(out, { version: 3, metadata: src.metadata, tensors });
      expect(maxActive()).toBe(1);
    } finally {
      await src.close();
    }
    expect(await sha256File(out)).toBe(DEFAULT_MODEL.sha256);
  }, 60_000);

  it('reads a v2 file (same layout) and writes it as v3 by default, or as v2 on request', async () => {
    const v2 = join(dir.path, 'smollm2-v2.gguf');
    await copyFile(await fetchDefaultModel(), v2);
    const handle = await open(v2, 'r+');
    await handle.write(new Uint8Array([2, 0, 0, 0]), 0, 4, 4);
    await handle.close();

    const src = await openGGUF(v2);
    try {
      expect(src.version).toBe(2);
      const asV3 = join(dir.path, 'from-v2.gguf');
      await writeGGUF(asV3, { metadata: src.metadata, tensors: streamedTensors(src).tensors });
      expect(await sha256File(asV3)).toBe(DEFAULT_MODEL.sha256);
      const asV2 = join(dir.path, 'still-v2.gguf');
      await writeGGUF(asV2, { version: 2, metadata: src.metadata, tensors: streamedTensors(src).tensors });
      expect(await sha256File(asV2)).toBe(await sha256File(v2));
    } finally {
      await src.close();
    }
  }, 60_000);
});

/** Metadata exercising every value type, extremes, empty and unicode values, nested arrays. */
function everyValueType(): [string, GGUFValue][] {
  const nested = v.array(GGUFValueType.ARRAY, [
    v.array(GGUFValueType.UINT32, new Uint32Array([1, 2, 3])),
    v.array(GGUFValueType.UINT32, new Uint32Array([])),
    v.array(GGUFValueType.STRING, ['mixed', 'item types']),
  ]);
  return [
    ['general.architecture', v.string('llama')],
    ['test.u8', v.u8(255)],
    ['test.i8', v.i8(-128)],
    ['test.u16', v.u16(65535)],
    ['test.i16', v.i16(-32768)],
    ['test.u32', v.u32(4294967295)],
    ['test.i32', v.i32(-2147483648)],
    ['test.u64.max', v.u64(2n ** 64n - 1n)],
    ['test.u64.zero', v.u64(0n)],
    ['test.i64.min', v.i64(-(2n ** 63n))],
    ['test.i64.max', v.i64(2n ** 63n - 1n)],
    ['test.f32', v.f32(Math.fround(3.14159))],
    ['test.f32.negzero', v.f32(-0)],
    ['test.f32.inf', v.f32(-Infinity)],
    ['test.f32.nan', v.f32(NaN)],
    ['test.f64', v.f64(Math.PI)],
    ['test.f64.tiny', v.f64(5e-324)],
    ['test.f64.huge', v.f64(1.7976931348623157e308)],
    ['test.bool.true', v.bool(true)],
    ['test.bool.false', v.bool(false)],
    ['test.string.empty', v.string('')],
    ['test.string.unicode', v.string('héllo, 世界 🚀 \u0000 nul and \n newline')],
    ['test.ключ.unicode-key', v.string('value')],
    ['test.array.u8.empty', v.array(GGUFValueType.UINT8, new Uint8Array([]))],
    ['test.array.string.empty', v.strings([])],
    ['test.array.u8', v.array(GGUFValueType.UINT8, new Uint8Array([0, 1, 255]))],
    ['test.array.i8', v.array(GGUFValueType.INT8, new Int8Array([-128, 0, 127]))],
    ['test.array.u16', v.array(GGUFValueType.UINT16, new Uint16Array([0, 65535]))],
    ['test.array.i16', v.array(GGUFValueType.INT16, new Int16Array([-32768, 32767]))],
    ['test.array.u32', v.array(GGUFValueType.UINT32, new Uint32Array([0, 4294967295]))],
    ['test.array.i32', v.array(GGUFValueType.INT32, new Int32Array([-2147483648, 2147483647]))],
    ['test.array.u64', v.array(GGUFValueType.UINT64, new BigUint64Array([0n, 2n ** 64n - 1n]))],
    ['test.array.i64', v.array(GGUFValueType.INT64, new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]))],
    ['test.array.f32', v.array(GGUFValueType.FLOAT32, new Float32Array([1.5, -0, Infinity, NaN, 3.4028234663852886e38]))],
    ['test.array.f64', v.array(GGUFValueType.FLOAT64, new Float64Array([Math.E, -Infinity, 2.2250738585072014e-308]))],
    ['test.array.bool', v.array(GGUFValueType.BOOL, [true, false, true])],
    ['test.array.string', v.strings(['', 'a', 'ünïcödé', '🚀🚀', ' '.repeat(1000)])],
    ['test.array.nested', nested],
    ['test.array.nested.empty', v.array(GGUFValueType.ARRAY, [])],
    ['test.array.nested3', v.array(GGUFValueType.ARRAY, [v.array(GGUFValueType.ARRAY, [v.array(GGUFValueType.INT64, new BigInt64Array([-1n]))])])],
  ];
}

/** Tensors of several ggml types with odd sizes (so padding matters), random contents. */
function someTensors(): { spec: GGUFWriteTensor; bytes: Uint8Array }[] {
  const make = (name: string, shape: number[], type: GGMLType) => {
    const rows = shape.slice(1).reduce((a, b) => a * b, 1);
    const bytes = new Uint8Array(randomBytes(ggmlRowBytes(type, shape[0]!) * rows));
    return { spec: { name, shape, type, byteLength: bytes.byteLength, data: async () => bytes }, bytes };
  };
  return [
    make('f32.weight', [8, 3], GGMLType.F32),
    make('f16.weight', [17], GGMLType.F16),
    make('bf16.weight', [4, 2, 2], GGMLType.BF16),
    make('q8_0.weight', [64, 2], GGMLType.Q8_0),
    make('q4_1.weight', [32], GGMLType.Q4_1),
    make('q4_k.weight', [256, 3], GGMLType.Q4_K),
    make('q6_k.weight', [256], GGMLType.Q6_K),
    make('i8.weight', [7], GGMLType.I8),
    make('i32.weight', [5, 1, 1, 2], GGMLType.I32),
  ];
}

describe('gguf-py reads files written by writeGGUF', () => {
  for (const alignment of [32, 64]) {
    it(`with every value type and several tensor types, alignment ${alignment}`, async () => {
      const metadata = everyValueType();
      const tensors = someTensors();
      const out = join(dir.path, `values-${alignment}.gguf`);
      await writeGGUF(out, { alignment, metadata, tensors: tensors.map((t) => t.spec) });

      const ref = await ggufPyDump(out, { hashData: true });
      const expectedMetadata = alignment === 32 ? metadata : [...metadata, ['general.alignment', v.u32(alignment)] as [string, GGUFValue]];
      expect(ref.metadata).toEqual(toRefMetadata(expectedMetadata));
      expect(ref.alignment).toBe(alignment);
      expect(ref.dataOffset % alignment).toBe(0);
      const hash = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
      expect(ref.tensors.map((t) => [t.name, t.shape, t.type, t.offset % alignment, t.sha256])).toEqual(
        tensors.map(({ spec, bytes }) => [spec.name, spec.shape, spec.type, 0, hash(bytes)]),
      );

      // And our own reader agrees with gguf-py on the same file.
      const file = await openGGUF(out);
      try {
        expect(toRefMetadata(file.metadata)).toEqual(ref.metadata);
        expect(toRefTensors(file.tensors)).toEqual(ref.tensors.map(({ sha256: _, ...info }) => info));
        for (const { spec, bytes } of tensors) expect(Buffer.from(await file.readTensorData(file.tensor(spec.name)!))).toEqual(Buffer.from(bytes));
      } finally {
        await file.close();
      }
    }, 60_000);
  }

  it('writes a metadata-only file (no tensors) that gguf-py and our reader accept', async () => {
    const out = join(dir.path, 'vocab-only.gguf');
    await writeGGUF(out, { metadata: GGUFMetadata.from([['general.name', v.string('vocab')]]), tensors: [] });
    expect((await readFile(out)).byteLength % 32).toBe(0);
    const ref = await ggufPyDump(out);
    expect(ref.metadata).toEqual([['general.name', { type: GGUFValueType.STRING, value: 'vocab' }]]);
    const file = await openGGUF(out);
    expect(file.tensors).toEqual([]);
    await file.close();
  }, 30_000);
});

describe('writeGGUF validation', () => {
  const f32 = (name: string, shape = [4], data: GGUFTensorSource = () => Promise.resolve(new Uint8Array(16))): GGUFWriteTensor => ({
    name,
    shape,
    type: GGMLType.F32,
    data,
  });
  const base = (spec: Partial<GGUFWriteSpec>): GGUFWriteSpec => ({ metadata: [], tensors: [], ...spec });

  /** The error must come out, and nothing may be left in the directory (no output, no temp file). */
  async function rejects(spec: GGUFWriteSpec, code: Parameters<typeof expectGGUFError>[1], offset?: number) {
    const sub = await makeTempDir('chess-gguf-w-');
    try {
      await expectGGUFError(writeGGUF(join(sub.path, 'out.gguf'), spec), code, offset);
      expect(await readdir(sub.path)).toEqual([]);
    } finally {
      await sub.remove();
    }
  }

  it('rejects duplicate tensor names, bad shapes, unknown types, long names', async () => {
    await rejects(base({ tensors: [f32('a'), f32('a')] }), 'GGUF_DUPLICATE_TENSOR');
    await rejects(base({ tensors: [f32('a', [4, 0])] }), 'GGUF_BAD_SHAPE');
    await rejects(base({ tensors: [f32('a', [1.5])] }), 'GGUF_BAD_SHAPE');
    await rejects(base({ tensors: [f32('a', [1, 1, 1, 1, 1])] }), 'GGUF_LIMIT_EXCEEDED');
    await rejects(base({ tensors: [{ ...f32('a', [33]), type: GGMLType.Q4_0 }] }), 'GGUF_BAD_SHAPE');
    await rejects(base({ tensors: [{ ...f32('a'), type: 4 as GGMLType }] }), 'GGUF_UNKNOWN_TENSOR_TYPE');
    await rejects(base({ tensors: [f32('x'.repeat(64))] }), 'GGUF_LIMIT_EXCEEDED');
    await rejects(base({ tensors: [{ ...f32('a'), byteLength: 12 }] }), 'GGUF_TENSOR_SIZE_MISMATCH');
  });

  it('rejects data sources that supply the wrong number of bytes, leaving no file behind', async () => {
    // Header: 24 + tensor info (8 + 1 + 4 + 8 + 4 + 8 = 33) = 57, padded to 64: data starts at byte 64.
    await rejects(base({ tensors: [f32('a', [4], () => Promise.resolve(new Uint8Array(15)))] }), 'GGUF_TENSOR_SIZE_MISMATCH', 64);
    const chunks = (sizes: number[]) => async function* () {
      for (const n of sizes) yield new Uint8Array(n);
    };
    await rejects(base({ tensors: [f32('a', [4], chunks([8, 4]))] }), 'GGUF_TENSOR_SIZE_MISMATCH', 64);
    await rejects(base({ tensors: [f32('a', [4], chunks([8, 8, 8]))] }), 'GGUF_TENSOR_SIZE_MISMATCH', 64);
  });

  it('keeps an existing output untouched when a data source fails midway', async () => {
    const out = join(dir.path, 'existing.gguf');
    await writeFile(out, 'previous content');
    const failing = async function* () {
      yield new Uint8Array(8);
      throw new Error('source exploded');
    };
    await expect(writeGGUF(out, base({ tensors: [f32('a', [4], failing)] }))).rejects.toThrow('source exploded');
    expect(await readFile(out, 'utf8')).toBe('previous content');
    expect((await readdir(dir.path)).filter((name) => name.includes('existing') && name.endsWith('.tmp'))).toEqual([]);
  });

  it('rejects metadata values that would not read back identically', async () => {
    const bad: [string, GGUFValue][] = [
      ['u8', v.u8(256)],
      ['u32', v.u32(-1)],
      ['i32', v.i32(1.5)],
      ['u64', { type: GGUFValueType.UINT64, value: 5 as unknown as bigint }],
      ['i64', v.i64(2n ** 63n)],
      ['surrogate', v.string('\uD800x')],
      ['typed', { type: GGUFValueType.ARRAY, itemType: GGUFValueType.UINT32, items: new Uint8Array(2) } as unknown as GGUFValue],
      ['bools', v.array(GGUFValueType.BOOL, [true, 1 as unknown as boolean])],
      ['type', { type: 13, value: 0 } as unknown as GGUFValue],
    ];
    for (const entry of bad) await rejects(base({ metadata: [entry] }), 'GGUF_INVALID_VALUE');
  });

  it('rejects duplicate or empty keys, and bad or conflicting alignment', async () => {
    await rejects(base({ metadata: [['k', v.u8(1)], ['k', v.u8(2)]] }), 'GGUF_DUPLICATE_KEY');
    await rejects(base({ metadata: [['', v.u8(1)]] }), 'GGUF_EMPTY_KEY');
    await rejects(base({ alignment: 48 }), 'GGUF_BAD_ALIGNMENT');
    await rejects(base({ alignment: 0 }), 'GGUF_BAD_ALIGNMENT');
    await rejects(base({ metadata: [['general.alignment', v.u64(32n)]] }), 'GGUF_BAD_ALIGNMENT');
    await rejects(base({ alignment: 64, metadata: [['general.alignment', v.u32(32)]] }), 'GGUF_BAD_ALIGNMENT');
    await rejects(base({ version: 1 as 3 }), 'GGUF_UNSUPPORTED_VERSION');
  });
});
