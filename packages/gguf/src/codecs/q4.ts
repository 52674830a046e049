/**
 * Q4_0 and Q4_1: blocks of 32 four-bit quants. Byte j of qs holds element j in
 * its low nibble and element j + 16 in its high nibble.
 *   Q4_0 (18 bytes): d: f16 | qs[16]           x = (q - 8) * d
 *   Q4_1 (20 bytes): d: f16 | m: f16 | qs[16]  x = q * d + m
 * The quantizers follow quantize_row_q4_{0,1}_ref step by step in float32
 * (Math.fround after every operation) so their bytes match llama.cpp's exactly.
 */
import { GGMLType } from '../types.ts';
import { type BlockCodec, FLT_MAX, castFloatToInt8, readU16, writeU16 } from './codec.ts';
import { fp16ToFp32Table, fp32ToFp16 } from './half.ts';

const QK = 32;
const HALF = QK / 2;
const fround = Math.fround;

export const Q4_0: BlockCodec = {
  type: GGMLType.Q4_0,
  blockSize: QK,
  typeSize: 2 + HALF,

  dequantize(src, srcOffset, dst, dstOffset, blockCount) {
    const fp16 = fp16ToFp32Table();
    for (let b = 0; b < blockCount; b++) {
      const s = srcOffset + b * 18;
      const o = dstOffset + b * QK;
      const d = fp16[readU16(src, s)]!;
      for (let j = 0; j < HALF; j++) {
        const q = src[s + 2 + j]!;
        dst[o + j] = ((q & 0x0f) - 8) * d;
        dst[o + j + HALF] = ((q >>> 4) - 8) * d;
      }
    }
  },

  // Scale from the signed value of largest magnitude, so it maps to -8 exactly.
  quantize(src, srcOffset, dst, dstOffset, blockCount) {
    for (let b = 0; b < blockCount; b++) {
      const x = srcOffset + b * QK;
      const y = dstOffset + b * 18;
      let amax = 0;
      let max = 0;
      for (let j = 0; j < QK; j++) {
        const v = src[x + j]!;
        if (amax < Math.abs(v)) {
          amax = Math.abs(v);
          max = v;
        }
      }
      const d = fround(max / -8);
      const id = d !== 0 ? fround(1 / d) : 0;
      writeU16(dst, y, fp32ToFp16(d));
      for (let j = 0; j < HALF; j++) {
        const xi0 = Math.min(15, castFloatToInt8(fround(fround(src[x + j]! * id) + 8.5))) & 0xff;
        const xi1 = Math.min(15, castFloatToInt8(fround(fround(src[x + j + HALF]! * id) + 8.5))) & 0xff;
        dst[y + 2 + j] = xi0 | (xi1 << 4);
      }
    }
  },
};

export const Q4_1: BlockCodec = {
  type: GGMLType.Q4_1,
  blockSize: QK,
  typeSize: 4 + HALF,

  dequantize(src, srcOffset, dst, dstOffset, blockCount) {
    const fp16 = fp16ToFp32Table();
    for (let b = 0; b < blockCount; b++) {
      const s = srcOffset + b * 20;
      const o = dstOffset + b * QK;
      const d = fp16[readU16(src, s)]!;
      const m = fp16[readU16(src, s + 2)]!;
      for (let j = 0; j < HALF; j++) {
        const q = src[s + 4 + j]!;
        dst[o + j] = fround((q & 0x0f) * d) + m;
        dst[o + j + HALF] = fround((q >>> 4) * d) + m;
      }
    }
  },

  quantize(src, srcOffset, dst, dstOffset, blockCount) {
    for (let b = 0; b < blockCount; b++) {
      const x = srcOffset + b * QK;
      const y = dstOffset + b * 20;
      let min = FLT_MAX;
      let max = -FLT_MAX;
      for (let j = 0; j < QK; j++) {
        const v = src[x + j]!;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const d = fround(fround(max - min) / 15);
      const id = d !== 0 ? fround(1 / d) : 0;
      writeU16(dst, y, fp32ToFp16(d));
      writeU16(dst, y + 2, fp32ToFp16(min));
      for (let j = 0; j < HALF; j++) {
        const xi0 = Math.min(15, castFloatToInt8(fround(fround(fround(src[x + j]! - min) * id) + 0.5))) & 0xff;
        const xi1 = Math.min(15, castFloatToInt8(fround(fround(fround(src[x + j + HALF]! - min) * id) + 0.5))) & 0xff;
        dst[y + 4 + j] = xi0 | (xi1 << 4);
      }
    }
  },
};
