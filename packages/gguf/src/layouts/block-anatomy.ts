/**
 * Where things sit inside one ggml block, for the layouts that move bytes and
 * bits between blocks without decoding them: the byte offset of each scale
 * field, and for each element c of the block where the bits of its stored
 * unsigned value live (the codecs in ../codecs decode the same bits).
 *
 *   raw     element c occupies `rawBytes` bytes at rawOffset + c * rawBytes
 *           (F32 / F16 / BF16 values, Q8_0 int8 qs)
 *   low     bits 0..3 of element c: (block[lowByte[c]] >> lowShift[c]) & 15
 *   high    bit 4 (Q5_*: one bit) or bits 4..5 (Q6_K: two bits) of element c:
 *           (block[highByte[c]] >> highShift[c]) & (1 | 3)
 */
import { GGMLType, ggmlTypeName } from '../types.ts';

export interface BlockAnatomy {
  /** Byte offset in the block of each scale field, by its ggml struct name. */
  readonly scaleOffsets: Readonly<Record<string, number>>;
  readonly rawOffset: number;
  readonly rawBytes: number;
  readonly lowByte: Int32Array;
  readonly lowShift: Uint8Array;
  readonly highByte: Int32Array;
  readonly highShift: Uint8Array;
}

const QK = 32;
const QK_K = 256;

function build(
  n: number,
  scaleOffsets: Record<string, number>,
  low?: (c: number) => [byte: number, shift: number],
  high?: (c: number) => [byte: number, shift: number],
  raw: { offset: number; bytes: number } = { offset: 0, bytes: 0 },
): BlockAnatomy {
  const lowByte = new Int32Array(n);
  const lowShift = new Uint8Array(n);
  const highByte = new Int32Array(n);
  const highShift = new Uint8Array(n);
  for (let c = 0; c < n; c++) {
    if (low) [lowByte[c], lowShift[c]] = low(c);
    if (high) [highByte[c], highShift[c]] = high(c);
  }
  return { scaleOffsets, rawOffset: raw.offset, rawBytes: raw.bytes, lowByte, lowShift, highByte, highShift };
}

/** Q4_0 / Q4_1 / Q5_* qs[16] at `qs`: byte j holds element j (low nibble) and element j + 16 (high nibble). */
const q4Low = (qs: number) => (c: number): [number, number] => [qs + (c & 15), c < 16 ? 0 : 4];
/** Q5_* qh: a little-endian u32 at `qh` whose bit c is bit 4 of element c. */
const q5High = (qh: number) => (c: number): [number, number] => [qh + (c >> 3), c & 7];
/**
 * Q4_K / Q5_K qs[128] at `qs`: element c is in the 32-byte run of its pair of
 * sub-blocks (c >> 6), low nibbles for the first 32 elements of the pair, high
 * nibbles for the next 32.
 */
const kLow = (qs: number) => (c: number): [number, number] => [qs + 32 * (c >> 6) + (c & 31), c & 32 ? 4 : 0];
/** Q5_K qh[32] at `qh`: bit 4 of element c is bit 2 * (c >> 6) + ((c >> 5) & 1) of qh[c & 31]. */
const q5kHigh = (qh: number) => (c: number): [number, number] => [qh + (c & 31), 2 * (c >> 6) + ((c >> 5) & 1)];
/**
 * Q6_K: two halves of 128 elements; in half h, run k = 0..3 of 32 elements,
 * element l of the run: low nibble of ql[64h + l (+32 for odd k)] (high nibble
 * for k >= 2), bits 4..5 in bits 2k..2k+1 of qh[32h + l].
 */
const q6Low = (c: number): [number, number] => {
  const h = c >> 7;
  const k = (c >> 5) & 3;
  return [64 * h + (k & 1 ? 32 : 0) + (c & 31), k >= 2 ? 4 : 0];
};
const q6High = (c: number): [number, number] => [128 + 32 * (c >> 7) + (c & 31), 2 * ((c >> 5) & 3)];

const ANATOMIES: ReadonlyMap<GGMLType, BlockAnatomy> = new Map([
  [GGMLType.F32, build(1, {}, undefined, undefined, { offset: 0, bytes: 4 })],
  [GGMLType.F16, build(1, {}, undefined, undefined, { offset: 0, bytes: 2 })],
  [GGMLType.BF16, build(1, {}, undefined, undefined, { offset: 0, bytes: 2 })],
  // d: f16 | qs: int8[32]
  [GGMLType.Q8_0, build(QK, { d: 0 }, undefined, undefined, { offset: 2, bytes: 1 })],
  // d: f16 | qs[16]
  [GGMLType.Q4_0, build(QK, { d: 0 }, q4Low(2))],
  // d: f16 | m: f16 | qs[16]
  [GGMLType.Q4_1, build(QK, { d: 0, m: 2 }, q4Low(4))],
  // d: f16 | qh: u32 | qs[16]
  [GGMLType.Q5_0, build(QK, { d: 0 }, q4Low(6), q5High(2))],
  // d: f16 | m: f16 | qh: u32 | qs[16]
  [GGMLType.Q5_1, build(QK, { d: 0, m: 2 }, q4Low(8), q5High(4))],
  // d: f16 | dmin: f16 | scales[12] | qs[128]
  [GGMLType.Q4_K, build(QK_K, { d: 0, dmin: 2, scales: 4 }, kLow(16))],
  // d: f16 | dmin: f16 | scales[12] | qh[32] | qs[128]
  [GGMLType.Q5_K, build(QK_K, { d: 0, dmin: 2, scales: 4 }, kLow(48), q5kHigh(16))],
  // ql[128] | qh[64] | scales: int8[16] | d: f16
  [GGMLType.Q6_K, build(QK_K, { d: 208, scales: 192 }, q6Low, q6High)],
]);

/** The anatomy of a block of `type`; throws a RangeError for a type without one (callers check support first). */
export function blockAnatomy(type: GGMLType): BlockAnatomy {
  const a = ANATOMIES.get(type);
  if (!a) throw new RangeError(`no block anatomy for ggml type ${ggmlTypeName(type)}`);
  return a;
}
