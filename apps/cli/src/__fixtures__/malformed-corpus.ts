/**
 * The malformed-GGUF corpus that every model-reading command must refuse
 * cleanly (malformed-corpus.test.ts): files built byte by byte, one per way a
 * header can lie (counts and lengths far beyond the file or the limits, deep
 * nesting, bad types, bad UTF-8, tensor tables that do not fit), and
 * truncations of the real SmolLM2 file at every section. Each case notes the
 * code our reader gives (packages/gguf/src/malformed.test.ts pins the offsets).
 */
import { execFileSync } from 'node:child_process';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GGMLType, GGUFByteWriter, GGUFValueType, ggufValue as v } from '@chess/gguf';

export interface CorpusCase {
  name: string;
  /** The code `chess inspect` gives (our reader). */
  code: string;
  path: string;
  /** Commands that give another (documented) code for this file, checked before the reader runs. */
  except?: Record<string, string>;
}

const bytes = (w: GGUFByteWriter) => w.bytes().slice();
const meta = (kvCount: number | bigint, kvs: (w: GGUFByteWriter) => void) => {
  const w = new GGUFByteWriter().header(3, 0, kvCount);
  kvs(w);
  return bytes(w);
};
const tensors = (count: number, infos: (w: GGUFByteWriter) => void, dataBytes = 4096) => {
  const w = new GGUFByteWriter().header(3, count, 1).kv('general.architecture', v.string('llama'));
  infos(w);
  return bytes(w.padTo(32).raw(new Uint8Array(dataBytes)));
};

/** name, expected code, bytes. */
const BUILT: [string, string, () => Uint8Array][] = [
  ['empty', 'GGUF_TRUNCATED', () => new Uint8Array(0)],
  ['magic_only', 'GGUF_TRUNCATED', () => new TextEncoder().encode('GGUF')],
  ['bad_magic', 'GGUF_BAD_MAGIC', () => { const b = meta(0, () => undefined); b.set([0x47, 0x47, 0x4d, 0x4c]); return b; }],
  // control bytes in the magic (quoted in the message) and in the file name (below)
  ['nul_magic', 'GGUF_BAD_MAGIC', () => { const b = meta(0, () => undefined); b.set([0, 0x1b, 0x0d, 0]); return b; }],
  ['version_0', 'GGUF_UNSUPPORTED_VERSION', () => bytes(new GGUFByteWriter().header(0, 0, 0))],
  ['version_1', 'GGUF_UNSUPPORTED_VERSION', () => bytes(new GGUFByteWriter().header(1, 0, 0))],
  ['version_4', 'GGUF_UNSUPPORTED_VERSION', () => bytes(new GGUFByteWriter().header(4, 0, 0))],
  ['big_endian', 'GGUF_UNSUPPORTED_BYTE_ORDER', () => { const b = meta(0, () => undefined); new DataView(b.buffer).setUint32(4, 3, false); return b; }],
  ['huge_tensor_count', 'GGUF_LIMIT_EXCEEDED', () => bytes(new GGUFByteWriter().header(3, 2n ** 62n, 0).raw(new Uint8Array(64)))],
  ['huge_kv_count', 'GGUF_LIMIT_EXCEEDED', () => bytes(new GGUFByteWriter().header(3, 0, 2n ** 62n).raw(new Uint8Array(64)))],
  ['kv_count_beyond_file', 'GGUF_TRUNCATED', () => meta(1000, (w) => w.kv('a', v.u8(1)))],
  ['key_len_huge', 'GGUF_LIMIT_EXCEEDED', () => meta(1, (w) => w.u64(2n ** 62n).raw(new Uint8Array(64)))],
  ['string_len_beyond_file', 'GGUF_TRUNCATED', () => meta(1, (w) => w.string('a').u32(GGUFValueType.STRING).u64(100_000).raw(new Uint8Array(16)))],
  ['array_len_huge', 'GGUF_LIMIT_EXCEEDED', () => meta(1, (w) => w.string('a').u32(GGUFValueType.ARRAY).u32(GGUFValueType.UINT32).u64(2n ** 62n).raw(new Uint8Array(64)))],
  ['array_of_strings_huge', 'GGUF_LIMIT_EXCEEDED', () => meta(1, (w) => w.string('a').u32(GGUFValueType.ARRAY).u32(GGUFValueType.STRING).u64(2n ** 62n).raw(new Uint8Array(64)))],
  [
    'nested_array_deep',
    'GGUF_LIMIT_EXCEEDED',
    () =>
      meta(1, (w) => {
        w.string('a').u32(GGUFValueType.ARRAY);
        for (let d = 1; d < 10_000; d++) w.u32(GGUFValueType.ARRAY).u64(1);
        w.u32(GGUFValueType.UINT8).u64(0);
      }),
  ],
  ['unknown_value_type', 'GGUF_UNKNOWN_VALUE_TYPE', () => meta(1, (w) => w.string('a').u32(13).u32(0))],
  ['bad_bool', 'GGUF_BAD_BOOL', () => meta(1, (w) => w.string('a').u32(GGUFValueType.BOOL).u8(2))],
  ['bad_utf8_key', 'GGUF_BAD_UTF8', () => meta(1, (w) => w.rawString(new Uint8Array([0x1b, 0x5b, 0x33, 0x31, 0x6d, 0xff, 0x00])).u32(GGUFValueType.UINT8).u8(0))],
  ['duplicate_key', 'GGUF_DUPLICATE_KEY', () => meta(2, (w) => w.kv('general.architecture', v.string('llama')).kv('general.architecture', v.string('llama')))],
  ['empty_key', 'GGUF_EMPTY_KEY', () => meta(1, (w) => w.kv('', v.u8(1)))],
  ['bad_alignment', 'GGUF_BAD_ALIGNMENT', () => meta(1, (w) => w.kv('general.alignment', v.u32(3)))],
  ['tensor_n_dims_huge', 'GGUF_LIMIT_EXCEEDED', () => tensors(1, (w) => w.string('t').u32(0x7fffffff).raw(new Uint8Array(64)))],
  ['tensor_dim_zero', 'GGUF_BAD_SHAPE', () => tensors(1, (w) => w.tensorInfo('t', [4, 0], GGMLType.F32, 0))],
  ['tensor_dim_negative', 'GGUF_LIMIT_EXCEEDED', () => tensors(1, (w) => w.tensorInfo('t', [2n ** 63n], GGMLType.F32, 0))],
  ['tensor_elements_overflow', 'GGUF_LIMIT_EXCEEDED', () => tensors(1, (w) => w.tensorInfo('t', [2 ** 32, 2 ** 32], GGMLType.F32, 0))],
  ['unknown_tensor_type', 'GGUF_UNKNOWN_TENSOR_TYPE', () => tensors(1, (w) => w.tensorInfo('t', [32], 1000, 0))],
  ['misaligned_tensor', 'GGUF_MISALIGNED_TENSOR', () => tensors(1, (w) => w.tensorInfo('t', [8], GGMLType.F32, 16))],
  ['tensor_out_of_bounds', 'GGUF_TENSOR_OUT_OF_BOUNDS', () => tensors(1, (w) => w.tensorInfo('t', [8], GGMLType.F32, 2n ** 40n))],
  ['tensor_huge_size', 'GGUF_TENSOR_OUT_OF_BOUNDS', () => tensors(1, (w) => w.tensorInfo('t', [2 ** 20, 2 ** 20], GGMLType.F32, 0))],
  ['overlapping_tensors', 'GGUF_TENSOR_OVERLAP', () => tensors(2, (w) => w.tensorInfo('a', [16], GGMLType.F32, 0).tensorInfo('b', [8], GGMLType.F32, 32))],
  ['duplicate_tensor', 'GGUF_DUPLICATE_TENSOR', () => tensors(2, (w) => w.tensorInfo('t', [8], GGMLType.F32, 0).tensorInfo('t', [8], GGMLType.F32, 32))],
  ['tensor_name_too_long', 'GGUF_LIMIT_EXCEEDED', () => tensors(1, (w) => w.tensorInfo('x'.repeat(64), [8], GGMLType.F32, 0))],
];

/** Write the byte-built cases and truncations of `model` (the real SmolLM2) into `dir`. */
export async function writeMalformedCorpus(dir: string, model: string): Promise<CorpusCase[]> {
  const cases: CorpusCase[] = [];
  for (const [name, code, make] of BUILT) {
    // a control sequence in one file name: messages name the file, and must show it escaped
    const path = join(dir, name === 'nul_magic' ? `${name}\u001b[31m\r.gguf` : `${name}.gguf`);
    await writeFile(path, make());
    cases.push({ name, code, path });
  }
  // a FIFO: open() would wait for a writer forever (no command may hang on it)
  const fifo = join(dir, 'fifo.gguf');
  execFileSync('mkfifo', [fifo]);
  cases.push({ name: 'fifo', code: 'GGUF_IO_ERROR', path: fifo, except: { calibrate: 'CALIBRATE_MODEL_UNREADABLE' } });
  const { openGGUF } = await import('@chess/gguf');
  const file = await openGGUF(model);
  const { dataOffset, fileSize } = file;
  const kvStart = 24;
  const tensorTable = file.tensors.length > 0 ? dataOffset - 64 : dataOffset; // inside the tensor table's end
  await file.close();
  const cuts: [string, number, string][] = [
    ['smollm2_cut_in_magic', 3, 'GGUF_TRUNCATED'],
    ['smollm2_cut_after_counts', kvStart, 'GGUF_TRUNCATED'],
    ['smollm2_cut_in_metadata', 4096, 'GGUF_TRUNCATED'],
    ['smollm2_cut_in_vocabulary', 1 << 20, 'GGUF_TRUNCATED'],
    ['smollm2_cut_in_tensor_table', tensorTable, 'GGUF_TRUNCATED'],
    ['smollm2_cut_after_header', dataOffset, 'GGUF_TENSOR_OUT_OF_BOUNDS'],
    ['smollm2_cut_last_byte', fileSize - 1, 'GGUF_TENSOR_OUT_OF_BOUNDS'],
  ];
  const source = await open(model, 'r');
  try {
    for (const [name, cut, code] of cuts) {
      const path = join(dir, `${name}.gguf`);
      const out = await open(path, 'w');
      try {
        const chunk = Buffer.allocUnsafe(16 << 20);
        for (let at = 0; at < cut; ) {
          const { bytesRead } = await source.read(chunk, 0, Math.min(chunk.length, cut - at), at);
          await out.write(chunk, 0, bytesRead, at);
          at += bytesRead;
        }
      } finally {
        await out.close();
      }
      cases.push({ name, code, path });
    }
  } finally {
    await source.close();
  }
  return cases;
}
