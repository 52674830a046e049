/**
 * Malformed files built byte by byte. Each case asserts the error code and the
 * exact byte offset reported; offsets are derived from the layout in comments
 * (header: magic 0..4, version 4..8, tensor count 8..16, kv count 16..24).
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { fetchDefaultModel } from '@chess/assets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectGGUFError, makeTempDir, openBytes, type TempDir } from './__fixtures__/files.ts';
import { GGUFByteWriter } from './byte-writer.ts';
import { GGUFError, type GGUFErrorCode } from './errors.ts';
import { resolveLimits, type GGUFLimits } from './limits.ts';
import { ggufValue as v } from './metadata.ts';
import { openGGUF } from './reader.ts';
import { GGMLType, GGUFValueType } from './types.ts';

let dir: TempDir;
beforeAll(async () => {
  dir = await makeTempDir();
});
afterAll(() => dir.remove());

const KV_START = 24;

async function expectError(bytes: Uint8Array, code: GGUFErrorCode, offset: number, limits?: Partial<GGUFLimits>): Promise<GGUFError> {
  return expectGGUFError(openBytes(dir, bytes, { limits }), code, offset);
}

/** A header with `kvCount` records written by `kvs`, no tensors. */
function metadataOnly(kvCount: number, kvs: (w: GGUFByteWriter) => void): Uint8Array {
  const w = new GGUFByteWriter().header(3, 0, kvCount);
  kvs(w);
  return w.bytes().slice();
}

/** A header with tensor infos written by `infos`, then padding and `dataBytes` zero bytes of data. */
function withTensors(count: number, infos: (w: GGUFByteWriter) => void, dataBytes = 4096): Uint8Array {
  const w = new GGUFByteWriter().header(3, count, 0);
  infos(w);
  w.padTo(32).raw(new Uint8Array(dataBytes));
  return w.bytes().slice();
}

/** Offsets inside a single-tensor table starting at 24 with a one-byte name: */
const T_NAME = KV_START + 8; // 32
const T_NDIMS = T_NAME + 1; // 33
const T_DIM0 = T_NDIMS + 4; // 37
const tType = (nDims: number) => T_DIM0 + 8 * nDims;
const tOffset = (nDims: number) => tType(nDims) + 4;

describe('truncation', () => {
  /**
   * Layout of the sectioned file:
   *   24  kv0: key 'general.architecture' (8 + 20), type at 52, string length at 56, 'llama' at 64..69
   *   69  kv1: key 'general.alignment' (8 + 17), type at 94, u32 at 98..102
   *  102  tensor 't': name (8 + 1), n_dims at 111, dim at 115, type at 123, offset at 127..135
   *  160  data (32 x f32 = 128 bytes) .. 288
   */
  function sectioned(): Uint8Array {
    const w = new GGUFByteWriter().header(3, 1, 2);
    w.kv('general.architecture', v.string('llama')).kv('general.alignment', v.u32(32));
    expect(w.length).toBe(102);
    w.tensorInfo('t', [32], GGMLType.F32, 0).padTo(32);
    expect(w.length).toBe(160);
    return w.raw(new Uint8Array(128)).bytes().slice();
  }

  const cases: [cut: number, code: GGUFErrorCode, offset: number, what: string][] = [
    [0, 'GGUF_TRUNCATED', 0, 'empty file'],
    [3, 'GGUF_TRUNCATED', 0, 'inside the magic'],
    [6, 'GGUF_TRUNCATED', 4, 'inside the version'],
    [12, 'GGUF_TRUNCATED', 8, 'inside the tensor count'],
    [20, 'GGUF_TRUNCATED', 8, 'the tensor table (>= 24 bytes) cannot fit in the 4 bytes left'],
    [45, 'GGUF_TRUNCATED', 16, '2 key/value records (>= 26 bytes) cannot fit in the 21 bytes left'],
    [60, 'GGUF_TRUNCATED', 56, 'inside the length of the first string value'],
    [66, 'GGUF_TRUNCATED', 64, 'inside the bytes of the first string value'],
    [82, 'GGUF_TRUNCATED', 77, 'inside the second key'],
    [96, 'GGUF_TRUNCATED', 94, 'inside the second value type'],
    [100, 'GGUF_TRUNCATED', 98, 'inside the alignment value'],
    [113, 'GGUF_TRUNCATED', 111, 'inside the dimension count'],
    [120, 'GGUF_TRUNCATED', 115, 'inside a dimension'],
    [125, 'GGUF_TRUNCATED', 123, 'inside the tensor type'],
    [130, 'GGUF_TRUNCATED', 127, 'inside the tensor offset'],
    [135, 'GGUF_TENSOR_OUT_OF_BOUNDS', 127, 'header complete, no data'],
    [200, 'GGUF_TENSOR_OUT_OF_BOUNDS', 127, 'inside the data'],
    [287, 'GGUF_TENSOR_OUT_OF_BOUNDS', 127, 'one byte short'],
  ];
  for (const [cut, code, offset, what] of cases) {
    it(`cut at ${cut} (${what}) → ${code} at byte ${offset}`, async () => {
      await expectError(sectioned().subarray(0, cut), code, offset);
    });
  }

  it('the complete sectioned file is valid', async () => {
    const file = await openBytes(dir, sectioned());
    expect(file.tensors[0]).toMatchObject({ name: 't', fileOffset: 160, byteLength: 128 });
    await file.close();
  });

  it('cutting the real SmolLM2 header anywhere gives GGUF_TRUNCATED (or OUT_OF_BOUNDS once complete) at or before the cut', async () => {
    const source = await fetchDefaultModel();
    const probe = await openGGUF(source);
    const headerEnd = probe.dataOffset;
    await probe.close();
    const path = join(dir.path, 'cut-smollm2.gguf');
    const handle = await open(source, 'r');
    const header = Buffer.alloc(headerEnd);
    await handle.read(header, 0, headerEnd, 0);
    await handle.close();

    // Every cut in the fixed header and first keys (cheap), then a spread over the
    // string arrays and the tensor table (each a near-full parse, so fewer).
    const cuts = new Set<number>();
    for (let c = 0; c < 600; c++) cuts.add(c);
    for (let k = 1; k < 24; k++) cuts.add(Math.floor((headerEnd * k) / 24) + (k % 7));
    for (let c = headerEnd - 40; c <= headerEnd; c += 5) cuts.add(c);
    // Write once, then shrink: ftruncate is cheap, rewriting 1.8 MB per cut is not.
    const out = await open(path, 'w');
    await out.write(header, 0, headerEnd, 0);
    for (const cut of [...cuts].sort((a, b) => b - a)) {
      await out.truncate(cut);
      const error = await openGGUF(path).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, `cut at ${cut}`).toBeInstanceOf(GGUFError);
      const { code, details } = error as GGUFError;
      // The tensor table ends somewhere in the last alignment (32) bytes before the data section.
      if (cut < headerEnd - 32) expect(code, `cut at ${cut}`).toBe('GGUF_TRUNCATED');
      else if (cut === headerEnd) expect(code).toBe('GGUF_TENSOR_OUT_OF_BOUNDS');
      else expect(['GGUF_TRUNCATED', 'GGUF_TENSOR_OUT_OF_BOUNDS']).toContain(code);
      expect(details.path).toBe(path);
      expect(details.offset).toBeLessThanOrEqual(cut);
    }
    await out.close();
  }, 60_000);
});

describe('fixed header', () => {
  it('bad magic → GGUF_BAD_MAGIC at 0, naming what was found', async () => {
    const bytes = new GGUFByteWriter().header(3, 0, 0).bytes().slice();
    bytes.set([0x47, 0x47, 0x4d, 0x4c]); // "GGML"
    const error = await expectError(bytes, 'GGUF_BAD_MAGIC', 0);
    expect(error.message).toContain('"GGML"');
  });

  for (const version of [0, 1, 4, 0xffffffff]) {
    it(`version ${version} → GGUF_UNSUPPORTED_VERSION at 4`, async () => {
      const error = await expectError(new GGUFByteWriter().header(version, 0, 0).bytes(), 'GGUF_UNSUPPORTED_VERSION', 4);
      expect(error.details.version).toBe(version);
    });
  }

  it('a big-endian v3 file → GGUF_UNSUPPORTED_BYTE_ORDER at 4', async () => {
    await expectError(new GGUFByteWriter().header(0x03000000, 0, 0).bytes(), 'GGUF_UNSUPPORTED_BYTE_ORDER', 4);
  });

  it('v2 and v3 files with nothing but a header are valid', async () => {
    for (const version of [2, 3]) {
      const file = await openBytes(dir, new GGUFByteWriter().header(version, 0, 0).bytes());
      expect({ version: file.version, tensors: file.tensors.length, keys: file.metadata.size, dataOffset: file.dataOffset }).toEqual({
        version,
        tensors: 0,
        keys: 0,
        dataOffset: 32,
      });
      await file.close();
    }
  });
});

describe('absurd counts and lengths fail fast, before allocating', () => {
  it('tensor count 2^62 → GGUF_LIMIT_EXCEEDED at 8 with the exact value', async () => {
    const error = await expectError(new GGUFByteWriter().header(3, 2n ** 62n, 0).bytes(), 'GGUF_LIMIT_EXCEEDED', 8);
    expect(error.details).toMatchObject({ limit: 'maxTensorCount', value: String(2n ** 62n) });
  });

  it('tensor count 2^64-1 → GGUF_LIMIT_EXCEEDED at 8', async () => {
    const error = await expectError(new GGUFByteWriter().header(3, 2n ** 64n - 1n, 0).bytes(), 'GGUF_LIMIT_EXCEEDED', 8);
    expect(error.details.value).toBe('18446744073709551615');
  });

  it('a tensor count within the limit but beyond the file → GGUF_TRUNCATED at 8, even with limits lifted', async () => {
    await expectError(new GGUFByteWriter().header(3, 1000, 0).bytes(), 'GGUF_TRUNCATED', 8);
    await expectError(new GGUFByteWriter().header(3, 2n ** 50n, 0).bytes(), 'GGUF_TRUNCATED', 8, { maxTensorCount: Number.MAX_SAFE_INTEGER });
  });

  it('kv count 2^62 → GGUF_LIMIT_EXCEEDED at 16; beyond the file → GGUF_TRUNCATED at 16', async () => {
    await expectError(new GGUFByteWriter().header(3, 0, 2n ** 62n).bytes(), 'GGUF_LIMIT_EXCEEDED', 16);
    await expectError(new GGUFByteWriter().header(3, 0, 2n ** 40n).bytes(), 'GGUF_TRUNCATED', 16, { maxKvCount: Number.MAX_SAFE_INTEGER });
  });

  it('string length 2^62 → GGUF_LIMIT_EXCEEDED at its length field; 2^50 with the limit lifted → GGUF_TRUNCATED', async () => {
    const huge = (n: bigint) => metadataOnly(1, (w) => w.u64(n).raw(new Uint8Array(16)));
    const error = await expectError(huge(2n ** 62n), 'GGUF_LIMIT_EXCEEDED', KV_START);
    expect(error.details.limit).toBe('maxStringBytes');
    await expectError(huge(2n ** 50n), 'GGUF_TRUNCATED', KV_START + 8, { maxStringBytes: Number.MAX_SAFE_INTEGER });
  });

  it('array length 2^62 → GGUF_LIMIT_EXCEEDED at its length field; lifted → GGUF_TRUNCATED where the items start', async () => {
    // kv at 24: key 'a' (8 + 1), value type at 33, item type at 37, length at 41, items at 49.
    for (const itemType of [GGUFValueType.UINT32, GGUFValueType.STRING, GGUFValueType.ARRAY]) {
      const array = (n: bigint) => metadataOnly(1, (w) => w.string('a').u32(GGUFValueType.ARRAY).u32(itemType).u64(n).raw(new Uint8Array(64)));
      await expectError(array(2n ** 62n), 'GGUF_LIMIT_EXCEEDED', 41);
      await expectError(array(2n ** 40n), 'GGUF_TRUNCATED', 49, { maxArrayLength: Number.MAX_SAFE_INTEGER });
    }
  });

  it('a header larger than maxHeaderBytes → GGUF_LIMIT_EXCEEDED where it crosses the limit', async () => {
    const bytes = metadataOnly(1, (w) => w.kv('a', v.string('x'.repeat(5000))));
    const error = await expectError(bytes, 'GGUF_LIMIT_EXCEEDED', 45, { maxHeaderBytes: 1000 }); // string bytes: 24 + key 9 + type 4 + length 8
    expect(error.details.limit).toBe('maxHeaderBytes');
  });

  it('a header larger than the first read window is read by growing the window', async () => {
    const big = 'é'.repeat(3 << 20); // 6 MiB of UTF-8: more than the initial 4 MiB window
    const w = new GGUFByteWriter().header(3, 1, 1).kv('big', v.string(big)).tensorInfo('t', [8], GGMLType.F32, 0).padTo(32);
    const file = await openBytes(dir, w.raw(new Uint8Array(32)).bytes());
    expect(file.metadata.getString('big')).toBe(big);
    expect(file.tensors[0]!.fileOffset).toBeGreaterThan(6 << 20);
    await file.close();
  }, 30_000);
});

describe('metadata records', () => {
  /** Nested arrays: each level is item type (4) + length (8); level 1 starts at 37. */
  function nested(depth: number): Uint8Array {
    return metadataOnly(1, (w) => {
      w.string('a').u32(GGUFValueType.ARRAY);
      for (let d = 1; d < depth; d++) w.u32(GGUFValueType.ARRAY).u64(1);
      w.u32(GGUFValueType.UINT8).u64(0);
    });
  }

  it('arrays nested deeper than maxArrayDepth → GGUF_LIMIT_EXCEEDED at the too-deep level', async () => {
    const ok = await openBytes(dir, nested(8));
    await ok.close();
    const error = await expectError(nested(9), 'GGUF_LIMIT_EXCEEDED', 37 + 12 * 8);
    expect(error.details.limit).toBe('maxArrayDepth');
    await expectError(nested(3), 'GGUF_LIMIT_EXCEEDED', 37 + 12 * 2, { maxArrayDepth: 2 });
  });

  it('unknown value type → GGUF_UNKNOWN_VALUE_TYPE at the type field (value and array item)', async () => {
    await expectError(metadataOnly(1, (w) => w.string('a').u32(13).u32(0)), 'GGUF_UNKNOWN_VALUE_TYPE', 33);
    await expectError(metadataOnly(1, (w) => w.string('a').u32(GGUFValueType.ARRAY).u32(0xffffffff).u64(0)), 'GGUF_UNKNOWN_VALUE_TYPE', 37);
  });

  it('duplicate key → GGUF_DUPLICATE_KEY at the second record', async () => {
    const error = await expectError(metadataOnly(2, (w) => w.kv('a', v.u8(1)).kv('a', v.u8(2))), 'GGUF_DUPLICATE_KEY', 38);
    expect(error.details).toMatchObject({ key: 'a', firstOffset: 24 });
  });

  it('empty key → GGUF_EMPTY_KEY', async () => {
    await expectError(metadataOnly(1, (w) => w.kv('', v.u8(1))), 'GGUF_EMPTY_KEY', 24);
  });

  const invalidUtf8: [string, number[]][] = [
    ['stray continuation byte', [0x61, 0x80]],
    ['invalid byte 0xFF', [0xff, 0xfe]],
    ['overlong NUL', [0xc0, 0x80]],
    ['UTF-16 surrogate', [0xed, 0xa0, 0x80]],
    ['truncated sequence', [0x61, 0xe2, 0x82]],
  ];
  for (const [what, bytes] of invalidUtf8) {
    it(`invalid UTF-8 in a key (${what}) → GGUF_BAD_UTF8 at the key's first byte`, async () => {
      await expectError(metadataOnly(1, (w) => w.rawString(new Uint8Array(bytes)).u32(GGUFValueType.UINT8).u8(0)), 'GGUF_BAD_UTF8', 32);
    });
  }

  it('bool other than 0/1 → GGUF_BAD_BOOL at the byte', async () => {
    await expectError(metadataOnly(1, (w) => w.string('a').u32(GGUFValueType.BOOL).u8(2)), 'GGUF_BAD_BOOL', 37);
  });

  // key 'general.alignment' (8 + 17) at 24: value type at 49, value at 53.
  for (const alignment of [0, 3, 48]) {
    it(`general.alignment = ${alignment} → GGUF_BAD_ALIGNMENT at the value`, async () => {
      await expectError(metadataOnly(1, (w) => w.kv('general.alignment', v.u32(alignment))), 'GGUF_BAD_ALIGNMENT', 53);
    });
  }

  it('general.alignment of type UINT64 → GGUF_BAD_ALIGNMENT at the type', async () => {
    await expectError(metadataOnly(1, (w) => w.kv('general.alignment', v.u64(32n))), 'GGUF_BAD_ALIGNMENT', 49);
  });

  it('general.alignment = 64 moves the data section and constrains tensor offsets', async () => {
    const w = new GGUFByteWriter().header(3, 1, 1).kv('general.alignment', v.u32(64)).tensorInfo('t', [8], GGMLType.F32, 0).padTo(64);
    const file = await openBytes(dir, w.raw(new Uint8Array(64)).bytes());
    expect({ alignment: file.alignment, dataOffset: file.dataOffset }).toEqual({ alignment: 64, dataOffset: 128 });
    await file.close();
  });
});

describe('tensor infos', () => {
  const one = (shape: (number | bigint)[], type: number = GGMLType.F32, offset: number | bigint = 0) =>
    withTensors(1, (w) => w.tensorInfo('t', shape, type, offset));

  it('n_dims = 5 → GGUF_LIMIT_EXCEEDED (maxDims) at the dimension count', async () => {
    const error = await expectError(one([1, 1, 1, 1, 1]), 'GGUF_LIMIT_EXCEEDED', T_NDIMS);
    expect(error.details.limit).toBe('maxDims');
  });

  it('a dimension of 0 → GGUF_BAD_SHAPE at that dimension', async () => {
    await expectError(one([4, 0]), 'GGUF_BAD_SHAPE', T_DIM0 + 8);
  });

  it('a dimension >= 2^63 (negative in ggml) → GGUF_LIMIT_EXCEEDED at that dimension', async () => {
    await expectError(one([2n ** 63n]), 'GGUF_LIMIT_EXCEEDED', T_DIM0);
    await expectError(one([2n ** 64n - 1n, 1]), 'GGUF_LIMIT_EXCEEDED', T_DIM0);
  });

  it('an element count overflowing 64 bits → GGUF_LIMIT_EXCEEDED at the dimension that overflows', async () => {
    const error = await expectError(one([2 ** 32, 2 ** 32]), 'GGUF_LIMIT_EXCEEDED', T_DIM0 + 8);
    expect(error.details.limit).toBe('maxTensorElements');
    await expectError(one([2 ** 16, 2 ** 16, 2 ** 16, 2 ** 16]), 'GGUF_LIMIT_EXCEEDED', T_DIM0 + 24);
  });

  it('a row length that is not a multiple of the block size → GGUF_BAD_SHAPE at the type', async () => {
    await expectError(one([33], GGMLType.Q4_0), 'GGUF_BAD_SHAPE', tType(1));
  });

  for (const type of [4, 5, 31, 1000, 0xffffffff]) {
    it(`unknown tensor type ${type} → GGUF_UNKNOWN_TENSOR_TYPE at the type`, async () => {
      await expectError(one([32], type), 'GGUF_UNKNOWN_TENSOR_TYPE', tType(1));
    });
  }

  it('misaligned offset → GGUF_MISALIGNED_TENSOR at the offset field', async () => {
    await expectError(one([8], GGMLType.F32, 16), 'GGUF_MISALIGNED_TENSOR', tOffset(1));
  });

  it('offset past the end of the file → GGUF_TENSOR_OUT_OF_BOUNDS at the offset field', async () => {
    await expectError(one([8], GGMLType.F32, 1 << 20), 'GGUF_TENSOR_OUT_OF_BOUNDS', tOffset(1));
  });

  it('duplicate tensor name → GGUF_DUPLICATE_TENSOR at the second info', async () => {
    const bytes = withTensors(2, (w) => w.tensorInfo('t', [8], GGMLType.F32, 0).tensorInfo('t', [8], GGMLType.F32, 32));
    await expectError(bytes, 'GGUF_DUPLICATE_TENSOR', 24 + 33); // first info: name 9 + n_dims 4 + dim 8 + type 4 + offset 8
  });

  it('overlapping tensors → GGUF_TENSOR_OVERLAP at the later one', async () => {
    const bytes = withTensors(2, (w) => w.tensorInfo('a', [16], GGMLType.F32, 0).tensorInfo('b', [8], GGMLType.F32, 32));
    await expectError(bytes, 'GGUF_TENSOR_OVERLAP', 57 + 9 + 4 + 8 + 4);
  });

  it('a 64-byte tensor name (llama.cpp allows 63) → GGUF_LIMIT_EXCEEDED at its length', async () => {
    await expectError(withTensors(1, (w) => w.tensorInfo('x'.repeat(64), [8], GGMLType.F32, 0)), 'GGUF_LIMIT_EXCEEDED', 24);
  });

  it('invalid UTF-8 in a tensor name → GGUF_BAD_UTF8 at the name', async () => {
    const bytes = withTensors(1, (w) => w.rawString(new Uint8Array([0xff])).u32(1).u64(8).u32(GGMLType.F32).u64(0));
    await expectError(bytes, 'GGUF_BAD_UTF8', T_NAME);
  });

  it('accepts 0 dimensions (a scalar, as ggml does)', async () => {
    const file = await openBytes(dir, one([]));
    expect(file.tensors[0]).toMatchObject({ shape: [], elementCount: 1, byteLength: 4 });
    await file.close();
  });
});

describe('limits', () => {
  it('rejects unknown or invalid limit overrides with a UsageError', () => {
    expect(() => resolveLimits({ maxDims: 5 })).toThrow(expect.objectContaining({ code: 'GGUF_BAD_LIMIT' }));
    expect(() => resolveLimits({ maxTensorCount: -1 })).toThrow(expect.objectContaining({ code: 'GGUF_BAD_LIMIT' }));
    expect(() => resolveLimits({ nope: 1 } as Partial<GGUFLimits>)).toThrow(expect.objectContaining({ code: 'GGUF_BAD_LIMIT' }));
    expect(resolveLimits({ maxKvCount: 10 }).maxKvCount).toBe(10);
  });

  it('the real header respects the default limits and fails tightened ones', async () => {
    const path = await fetchDefaultModel();
    await expectGGUFError(openGGUF(path, { limits: { maxArrayLength: 1000 } }), 'GGUF_LIMIT_EXCEEDED');
    await expectGGUFError(openGGUF(path, { limits: { maxTensorCount: 100 } }), 'GGUF_LIMIT_EXCEEDED', 8);
  }, 30_000);
});
