/**
 * Q5_0 and Q5_1: blocks of 32 five-bit quants. The low nibbles are packed as in
 * Q4 (element j low, j + 16 high); bit j of the little-endian uint32 qh is the
 * fifth bit of element j.
 *   Q5_0 (22 bytes): d: f16 | qh: u32 | qs[16]           x = (q - 16) * d
 *   Q5_1 (24 bytes): d: f16 | m: f16 | qh: u32 | qs[16]  x = q * d + m
 * Quantizers mirror quantize_row_q5_{0,1}_ref in float32 (see q4.ts).
 */
import { GGMLType } from '../types.ts';
import { type BlockCodec, FLT_MAX, castFloatToInt8, readU16, readU32, writeU16, writeU32 } from './codec.ts';
import { fp16ToFp32Table, fp32ToFp16 } from './half.ts';

const QK = 32;
const HALF = QK / 2;
const fround = Math.fround;

export const Q5_0: BlockCodec = {
  type: GGMLType.Q5_0,
  blockSize: QK,
  typeSize: 2 + 4 + HALF,

  dequantize(src, srcOffset, dst, dstOffset, blockCount) {
    const fp16 = fp16ToFp32Table();
    for (let b = 0; b < blockCount; b++) {
      const s = srcOffset + b * 22;
      const o = dstOffset + b * QK;
      const d = fp16[readU16(src, s)]!;
      const qh = readU32(src, s + 2);
      for (let j = 0; j < HALF; j++) {
        const q = src[s + 6 + j]!;
        const h0 = ((qh >>> j) << 4) & 0x10;
        const h1 = (qh >>> (j + 12)) & 0x10;
        dst[o + j] = (((q & 0x0f) | h0) - 16) * d;
        dst[o + j + HALF] = (((q >>> 4) | h1) - 16) * d;
      }
    }
  },

  quantize(src, srcOffset, dst, dstOffset, blockCount) {
    for (let b = 0; b < blockCount; b++) {
      const x = srcOffset + b * QK;
      const y = dstOffset + b * 22;
      let amax = 0;
      let max = 0;
      for (let j = 0; j < QK; j++) {
        const v = src[x + j]!;
        if (amax < Math.abs(v)) {
          amax = Math.abs(v);
          max = v;
        }
      }
      const d = fround(max / -16);
      const id = d !== 0 ? fround(1 / d) : 0;
      writeU16(dst, y, fp32ToFp16(d));
      let qh = 0;
      for (let j = 0; j < HALF; j++) {
        const xi0 = Math.min(31, castFloatToInt8(fround(fround(src[x + j]! * id) + 16.5))) & 0xff;
        const xi1 = Math.min(31, castFloatToInt8(fround(fround(src[x + j + HALF]! * id) + 16.5))) & 0xff;
        dst[y + 6 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
        qh |= ((xi0 & 0x10) >>> 4) << j;
        qh |= ((xi1 & 0x10) >>> 4) << (j + HALF);
      }
      writeU32(dst, y + 2, qh);
    }
  },
};

export const Q5_1: BlockCodec = {
  type: GGMLType.Q5_1,
  blockSize: QK,
  typeSize: 2 + 2 + 4 + HALF,

  dequantize(src, srcOffset, dst, dstOffset, blockCount) {
    const fp16 = fp16ToFp32Table();
    for (let b = 0; b < blockCount; b++) {
      const s = srcOffset + b * 24;
      const o = dstOffset + b * QK;
      const d = fp16[readU16(src, s)]!;
      const m = fp16[readU16(src, s + 2)]!;
      const qh = readU32(src, s + 4);
      for (let j = 0; j < HALF; j++) {
        const q = src[s + 8 + j]!;
        const h0 = ((qh >>> j) << 4) & 0x10;
        const h1 = (qh >>> (j + 12)) & 0x10;
        dst[o + j] = fround(((q & 0x0f) | h0) * d) + m;
        dst[o + j + HALF] = fround(((q >>> 4) | h1) * d) + m;
      }
    }
  },

  // Unlike Q4_1 the reference does not clamp to 31: a quant that rounds to 32 wraps.
  quantize(src, srcOffset, dst, dstOffset, blockCount) {
    for (let b = 0; b < blockCount; b++) {
      const x = srcOffset + b * QK;
      const y = dstOffset + b * 24;
      let min = FLT_MAX;
      let max = -FLT_MAX;
      for (let j = 0; j < QK; j++) {
        const v = src[x + j]!;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const d = fround(fround(max - min) / 31);
      const id = d !== 0 ? fround(1 / d) : 0;
      writeU16(dst, y, fp32ToFp16(d));
      writeU16(dst, y + 2, fp32ToFp16(min));
      let qh = 0;
      for (let j = 0; j < HALF; j++) {
        const xi0 = castFloatToInt8(fround(fround(fround(src[x + j]! - min) * id) + 0.5)) & 0xff;
        const xi1 = castFloatToInt8(fround(fround(fround(src[x + j + HALF]! - min) * id) + 0.5)) & 0xff;
        dst[y + 8 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
        qh |= ((xi0 & 0x10) >>> 4) << j;
        qh |= ((xi1 & 0x10) >>> 4) << (j + HALF);
      }
      writeU32(dst, y + 4, qh);
    }
  },
};
