/**
 * Mutation fuzzing of the header reader: whatever the bytes, openGGUF either
 * returns a file whose tensors all lie inside it, or throws a GGUFError with a
 * code, the path and an offset inside the file — never another exception, never
 * a hang. Time-bounded (CHESS_FUZZ_SECONDS, default 15 in total) and
 * reproducible (fixed seed unless CHESS_FUZZ_SEED is set).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { fetchDefaultModel } from '@chess/assets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir } from './__fixtures__/files.ts';
import { GGUFByteWriter } from './byte-writer.ts';
import { GGUFError } from './errors.ts';
import { ggufValue as v } from './metadata.ts';
import { openGGUF } from './reader.ts';
import { GGMLType, GGUFValueType } from './types.ts';

const SECONDS = Number(process.env.CHESS_FUZZ_SECONDS ?? 15);
const SEED = Number(process.env.CHESS_FUZZ_SEED ?? 0x6775_6666);
const REAL_SHARE = 0.6; // of the time budget; the rest goes to small synthetic files

let dir: TempDir;
beforeAll(async () => {
  dir = await makeTempDir();
});
afterAll(() => dir.remove());

/** The property: a clean GGUFError, or a valid file whose tensors are readable. */
async function openCleanly(path: string, fileSize: number): Promise<'error' | 'valid'> {
  let file;
  try {
    file = await openGGUF(path);
  } catch (error) {
    if (!(error instanceof GGUFError)) throw error;
    const { code, details } = error;
    if (!/^GGUF_[A-Z0-9_]+$/.test(code) || details.path !== path) throw error;
    const { offset } = details;
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0 || offset > fileSize) throw error;
    return 'error';
  }
  try {
    const names = new Set<string>();
    for (const t of file.tensors) {
      expect(names.has(t.name)).toBe(false);
      names.add(t.name);
      expect(t.offset % file.alignment).toBe(0);
      expect(t.fileOffset).toBe(file.dataOffset + t.offset);
      expect(t.fileOffset + t.byteLength).toBeLessThanOrEqual(fileSize);
    }
    const last = file.tensors.at(-1);
    if (last) expect((await file.readTensorRange(last, 0, Math.min(64, last.byteLength))).byteLength).toBe(Math.min(64, last.byteLength));
    return 'valid';
  } finally {
    await file.close();
  }
}

/** Overwrite (or, with `xor`, flip bits of) `bytes.length` bytes at `at`. */
type Mutation = { at: number; bytes: Uint8Array; xor?: boolean };

const INTERESTING_U32 = [0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 63, 64, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];
const INTERESTING_U64 = [0n, 1n, 8n, 31n, 32n, 2n ** 31n, 2n ** 32n, 2n ** 32n + 1n, 2n ** 53n, 2n ** 62n, 2n ** 63n, 2n ** 64n - 1n];

/** Byte flips, and u32 / u64 fields overwritten with boundary values, at positions drawn from `position`. */
function mutationArb(position: fc.Arbitrary<number>, size: number): fc.Arbitrary<Mutation> {
  const le = (n: number, value: bigint) => {
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = Number((value >> BigInt(8 * i)) & 0xffn);
    return bytes;
  };
  const fit = (at: number, n: number) => Math.max(0, Math.min(at, size - n));
  return fc.oneof(
    fc.tuple(position, fc.integer({ min: 0, max: 255 })).map(([at, b]) => ({ at: fit(at, 1), bytes: new Uint8Array([b]) })),
    fc.tuple(position, fc.integer({ min: 0, max: 7 })).map(([at, bit]): Mutation => ({ at: fit(at, 1), bytes: new Uint8Array([1 << bit]), xor: true })),
    fc.tuple(position, fc.constantFrom(...INTERESTING_U32)).map(([at, x]) => ({ at: fit(at, 4), bytes: le(4, BigInt(x)) })),
    fc.tuple(position, fc.oneof(fc.constantFrom(...INTERESTING_U64), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }))).map(([at, x]) => ({
      at: fit(at, 8),
      bytes: le(8, x),
    })),
  );
}

function apply(base: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  const out = new Uint8Array(base); // a copy (Buffer#slice would be a view)
  for (const m of mutations) {
    if (m.xor) out[m.at] = out[m.at]! ^ m.bytes[0]!;
    else out.set(m.bytes, m.at);
  }
  return out;
}

async function run<Ts>(property: fc.IAsyncProperty<Ts>, seconds: number): Promise<void> {
  const details = await fc.check(property, {
    seed: SEED,
    numRuns: 1_000_000,
    endOnFailure: true,
    plugins: [fc.interruptAfterTimeLimit(seconds * 1000)],
  });
  if (details.failed) {
    const cause = details.errorInstance;
    throw new Error(`${fc.defaultReportMessage(details)}\n${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}`, { cause });
  }
  expect(details.numRuns).toBeGreaterThan(0);
}

describe(`fuzzing openGGUF (seed ${SEED}, ${SECONDS} s; CHESS_FUZZ_SEED / CHESS_FUZZ_SECONDS)`, () => {
  it(
    'mutated SmolLM2 header (first 2 MiB, in a sparse file of the real size): clean GGUFError or valid',
    async () => {
      const source = await fetchDefaultModel();
      const probe = await openGGUF(source);
      const { fileSize, dataOffset } = probe;
      const keyOffsets = [...probe.metadata.keyOffsets.values()];
      await probe.close();

      const prefix = Buffer.alloc(2 << 20);
      const input = await open(source, 'r');
      await input.read(prefix, 0, prefix.length, 0);
      await input.close();
      const path = join(dir.path, 'smollm2-mutated.gguf');
      const out: FileHandle = await open(path, 'w+');
      await out.write(prefix, 0, prefix.length, 0);
      await out.truncate(fileSize); // sparse: tensors stay in bounds, so valid mutations stay valid
      expect(await openCleanly(path, fileSize)).toBe('valid');

      const position = fc.oneof(
        fc.integer({ min: 0, max: 63 }), // fixed header and first key
        fc.constantFrom(...keyOffsets).chain((o) => fc.integer({ min: o, max: o + 48 })), // key lengths, value types, array headers
        fc.integer({ min: dataOffset - 16_000, max: dataOffset - 1 }), // tensor table
        fc.integer({ min: 0, max: prefix.length - 1 }),
      );
      const outcomes = { error: 0, valid: 0 };
      const property = fc.asyncProperty(fc.array(mutationArb(position, prefix.length), { minLength: 1, maxLength: 4 }), async (mutations) => {
        // Write only the mutated bytes, and restore them afterwards: no 2 MB rewrite per run.
        const mutated = apply(prefix, mutations);
        for (const m of mutations) await out.write(mutated, m.at, m.bytes.length, m.at);
        try {
          outcomes[await openCleanly(path, fileSize)]++;
        } finally {
          for (const m of mutations) await out.write(prefix, m.at, m.bytes.length, m.at);
        }
      });
      try {
        await run(property, SECONDS * REAL_SHARE);
      } finally {
        await out.close();
      }
      expect(outcomes.error).toBeGreaterThan(0);
    },
    SECONDS * 1000 + 60_000,
  );

  it(
    'mutated, truncated and spliced small synthetic files: clean GGUFError or valid',
    async () => {
      const w = new GGUFByteWriter()
        .header(3, 3, 7)
        .kv('general.architecture', v.string('llama'))
        .kv('general.alignment', v.u32(32))
        .kv('a.bool', v.bool(true))
        .kv('a.f32', v.f32(1.5))
        .kv('a.u64', v.u64(7n))
        .kv('a.tokens', v.strings(['<s>', '</s>', 'héllo']))
        .kv('a.nested', v.array(GGUFValueType.ARRAY, [v.array(GGUFValueType.INT32, new Int32Array([1, -1])), v.strings(['x'])]))
        .tensorInfo('a', [4, 2], GGMLType.F32, 0)
        .tensorInfo('b', [32], GGMLType.Q8_0, 32)
        .tensorInfo('c', [3], GGMLType.F16, 96)
        .padTo(32);
      const base = w.raw(new Uint8Array(128).map((_, i) => i)).bytes().slice();
      const position = fc.integer({ min: 0, max: base.length - 1 });
      type Edit = { cut: number } | { splice: [at: number, remove: number, insert: Uint8Array] } | { mutations: Mutation[] };
      const edit: fc.Arbitrary<Edit> = fc.oneof(
        { weight: 4, arbitrary: fc.record({ mutations: fc.array(mutationArb(position, base.length), { minLength: 1, maxLength: 4 }) }) },
        { weight: 1, arbitrary: fc.record({ cut: position }) },
        { weight: 1, arbitrary: fc.record({ splice: fc.tuple(position, fc.integer({ min: 0, max: 16 }), fc.uint8Array({ maxLength: 16 })) }) },
      );
      const applyEdit = (b: Uint8Array, e: Edit): Uint8Array => {
        if ('cut' in e) return b.subarray(0, e.cut);
        if ('splice' in e) {
          const [at, remove, insert] = e.splice;
          return Buffer.concat([b.subarray(0, at), insert, b.subarray(Math.min(b.length, at + remove))]);
        }
        // Positions were drawn for the unedited file: clamp them to this one.
        return apply(b, e.mutations.filter((m) => m.at + m.bytes.length <= b.length));
      };
      const path = join(dir.path, 'synthetic-mutated.gguf');
      expect(await openCleanly(await dir.file(base, 'synthetic-base.gguf'), base.length)).toBe('valid');
      const property = fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 3 }), async (edits) => {
        const bytes = edits.reduce(applyEdit, base as Uint8Array);
        await dir.file(bytes, 'synthetic-mutated.gguf');
        await openCleanly(path, bytes.length);
      });
      await run(property, SECONDS * (1 - REAL_SHARE));
    },
    SECONDS * 1000 + 60_000,
  );
});
