/**
 * K-quants: 256-element super-blocks with per-sub-block scales that are
 * themselves quantized against fp16 super-block scales. Decoding only: the
 * llama.cpp quantizers for these types run an iterative scale search and are
 * not needed by the toolchain yet.
 *
 *   Q4_K (144 bytes): d: f16 | dmin: f16 | scales[12] | qs[128]
 *     8 sub-blocks of 32; x = (d * sc) * q - (dmin * m), q in 0..15
 *   Q5_K (176 bytes): d: f16 | dmin: f16 | scales[12] | qh[32] | qs[128]
 *     as Q4_K with a fifth bit per element from qh, q in 0..31
 *   Q6_K (210 bytes): ql[128] | qh[64] | scales: int8[16] | d: f16
 *     16 sub-blocks of 16; x = (d * sc) * q, q in -32..31
 *
 * Arithmetic follows dequantize_row_q*_K's float32 evaluation order (which
 * gguf-py's numpy code shares). The products of an fp16 scale and small integers
 * are exact in float32, so the only rounding is the final subtraction (or the
 * last product for Q6_K), done by the Float32Array store; the fround calls mark
 * where C rounds so the code stays right for wider scales.
 */
import { GGMLType } from '../types.ts';
import type { BlockCodec } from './codec.ts';
import { readU16 } from './codec.ts';
import { fp16ToFp32Table } from './half.ts';

const QK_K = 256;
const K_SCALE_SIZE = 12;
const fround = Math.fround;

/**
 * The 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes at
 * `p`: j < 4 are the low 6 bits of bytes j and j + 4; j >= 4 take their low
 * nibbles from byte j + 4 and their top two bits from bytes j - 4 and j.
 * Returns scale | (min << 8) so the caller needs no scratch object.
 */
function scaleMinK4(src: Uint8Array, p: number, j: number): number {
  if (j < 4) return (src[p + j]! & 63) | ((src[p + j + 4]! & 63) << 8);
  const sc = (src[p + j + 4]! & 0x0f) | ((src[p + j - 4]! >>> 6) << 4);
  const m = (src[p + j + 4]! >>> 4) | ((src[p + j]! >>> 6) << 4);
  return sc | (m << 8);
}

export const Q4_K: BlockCodec = {
  type: GGMLType.Q4_K,
  blockSize: QK_K,
  typeSize: 4 + K_SCALE_SIZE + QK_K / 2,

  dequantize(src, srcOffset, dst, dstOffset, blockCount) {
    const fp16 = fp16ToFp32Table();
    for (let b = 0; b < blockCount; b++) {
      const s = srcOffset + b * 144;
      let o = dstOffset + b * QK_K;
      const d = fp16[readU16(src, s)]!;
      const dmin = fp16[readU16(src, s + 2)]!;
      const scales = s + 4;
      let q = s + 4 + K_SCALE_SIZE;
      // Each 32 bytes of qs hold two sub-blocks: low nibbles, then high nibbles.
      for (let pair = 0; pair < 8; pair += 2, q += 32) {
        const sm1 = scaleMinK4(src, scales, pair);
        const sm2 = scaleMinK4(src, scales, pair + 1);
        const d1 = fround(d * (sm1 & 0xff));
        const m1 = fround(dmin * (sm1 >>> 8));
        const d2 = fround(d * (sm2 & 0xff));
        const m2 = fround(dmin * (sm2 >>> 8));
        for (let l = 0; l < 32; l++) dst[o++] = fround(d1 * (src[q + l]! & 0x0f)) - m1;
        for (let l = 0; l < 32; l++) dst[o++] = fround(d2 * (src[q + l]! >>> 4)) - m2;
      }
    }
  },
};

export const Q5_K: BlockCodec = {
  type: GGMLType.Q5_K,
  blockSize: QK_K,
  typeSize: 4 + K_SCALE_SIZE + QK_K / 8 + QK_K / 2,

  dequantize(src, srcOffset, dst, dstOffset, blockCount) {
    const fp16 = fp16ToFp32Table();
    for (let b = 0; b < blockCount; b++) {
      const s = srcOffset + b * 176;
      let o = dstOffset + b * QK_K;
      const d = fp16[readU16(src, s)]!;
      const dmin = fp16[readU16(src, s + 2)]!;
      const scales = s + 4;
      const qh = s + 4 + K_SCALE_SIZE;
      let ql = qh + QK_K / 8;
      // Sub-block pair p takes its fifth bits from bits 2p and 2p + 1 of qh[l].
      for (let pair = 0, u1 = 1, u2 = 2; pair < 8; pair += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
        const sm1 = scaleMinK4(src, scales, pair);
        const sm2 = scaleMinK4(src, scales, pair + 1);
        const d1 = fround(d * (sm1 & 0xff));
        const m1 = fround(dmin * (sm1 >>> 8));
        const d2 = fround(d * (sm2 & 0xff));
        const m2 = fround(dmin * (sm2 >>> 8));
        for (let l = 0; l < 32; l++) {
          dst[o++] = fround(d1 * ((src[ql + l]! & 0x0f) + (src[qh + l]! & u1 ? 16 : 0))) - m1;
        }
        for (let l = 0; l < 32; l++) {
          dst[o++] = fround(d2 * ((src[ql + l]! >>> 4) + (src[qh + l]! & u2 ? 16 : 0))) - m2;
        }
      }
    }
  },
};

export const Q6_K: BlockCodec = {
  type: GGMLType.Q6_K,
  blockSize: QK_K,
  typeSize: QK_K / 2 + QK_K / 4 + QK_K / 16 + 2,

  dequantize(src, srcOffset, dst, dstOffset, blockCount) {
    const fp16 = fp16ToFp32Table();
    for (let b = 0; b < blockCount; b++) {
      const s = srcOffset + b * 210;
      const d = fp16[readU16(src, s + 208)]!;
      // Two halves of 128 elements; in each, 64 ql bytes and 32 qh bytes feed four
      // runs of 32 outputs (ql low/high nibble x two 32-byte ql rows, qh bit pairs).
      for (let half = 0; half < 2; half++) {
        const ql = s + half * 64;
        const qh = s + 128 + half * 32;
        const sc = s + 192 + half * 8;
        const o = dstOffset + b * QK_K + half * 128;
        for (let l = 0; l < 32; l++) {
          const is = l >>> 4;
          const lo = src[ql + l]!;
          const hi = src[ql + l + 32]!;
          const h = src[qh + l]!;
          const q1 = ((lo & 0x0f) | ((h & 3) << 4)) - 32;
          const q2 = ((hi & 0x0f) | (((h >>> 2) & 3) << 4)) - 32;
          const q3 = ((lo >>> 4) | (((h >>> 4) & 3) << 4)) - 32;
          const q4 = ((hi >>> 4) | (((h >>> 6) & 3) << 4)) - 32;
          dst[o + l] = fround(d * ((src[sc + is]! << 24) >> 24)) * q1;
          dst[o + l + 32] = fround(d * ((src[sc + is + 2]! << 24) >> 24)) * q2;
          dst[o + l + 64] = fround(d * ((src[sc + is + 4]! << 24) >> 24)) * q3;
          dst[o + l + 96] = fround(d * ((src[sc + is + 6]! << 24) >> 24)) * q4;
        }
      }
    }
  },
};
