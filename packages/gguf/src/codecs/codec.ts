import type { GGMLType } from '../types.ts';

/**
 * One ggml block format. Kernels work on whole blocks: `blockCount` blocks of
 * `typeSize` bytes starting at `src[srcOffset]` decode to `blockCount * blockSize`
 * floats starting at `dst[dstOffset]` (and the reverse for quantizers).
 * Offsets and counts are validated by the caller (registry.ts), never here, so
 * the loops stay branch-free.
 */
export interface BlockCodec {
  readonly type: GGMLType;
  readonly blockSize: number;
  readonly typeSize: number;
  dequantize(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, blockCount: number): void;
  /** Absent when only decoding is supported (e.g. k-quants, whose reference quantizers search). */
  quantize?(src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, blockCount: number): void;
}

/** C's FLT_MAX, the initial min/max of the affine (Q4_1, Q5_1) quantizers. */
export const FLT_MAX = 3.4028234663852886e38;

/** Little-endian fp16 / uint32 fields of a block, read byte-wise (any alignment, any host). */
export function readU16(src: Uint8Array, offset: number): number {
  return src[offset]! | (src[offset + 1]! << 8);
}

export function readU32(src: Uint8Array, offset: number): number {
  return (src[offset]! | (src[offset + 1]! << 8) | (src[offset + 2]! << 16) | (src[offset + 3]! << 24)) >>> 0;
}

export function writeU16(dst: Uint8Array, offset: number, value: number): void {
  dst[offset] = value & 0xff;
  dst[offset + 1] = (value >>> 8) & 0xff;
}

export function writeU32(dst: Uint8Array, offset: number, value: number): void {
  dst[offset] = value & 0xff;
  dst[offset + 1] = (value >>> 8) & 0xff;
  dst[offset + 2] = (value >>> 16) & 0xff;
  dst[offset + 3] = (value >>> 24) & 0xff;
}

/**
 * C's `(int8_t)f` / `(uint8_t)f` as compiled for x86-64 (cvttss2si to 32 bits,
 * keep the low byte): truncation toward zero, and NaN or out-of-int32-range
 * values give INT32_MIN, whose low byte is 0. ISO C leaves those cases undefined;
 * the reference quantizers reach them only for blocks near float overflow or
 * underflow (e.g. a subnormal scale whose reciprocal is infinite).
 * Returns the low 8 bits as a signed value.
 */
export function castFloatToInt8(value: number): number {
  const t = value >= -2147483648 && value < 2147483648 ? Math.trunc(value) : -2147483648;
  return (t << 24) >> 24;
}

/** C's roundf: nearest integer, ties away from zero (exact for every float input). */
export function roundf(value: number): number {
  return value < 0 ? -Math.floor(-value + 0.5) : Math.floor(value + 0.5);
}
