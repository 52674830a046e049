/**
 * Q8_0: blocks of 32 signed bytes sharing one fp16 scale, x = q * d.
 * Layout (34 bytes): d: f16 | qs: int8[32].
 */
import { GGMLType } from '../types.ts';
import { type BlockCodec, castFloatToInt8, readU16, roundf, writeU16 } from './codec.ts';
import { fp16ToFp32Table, fp32ToFp16 } from './half.ts';

const QK8_0 = 32;
const fround = Math.fround;

export const Q8_0: BlockCodec = {
  type: GGMLType.Q8_0,
  blockSize: QK8_0,
  typeSize: 2 + QK8_0,

  dequantize(src, srcOffset, dst, dstOffset, blockCount) {
    const fp16 = fp16ToFp32Table();
    let s = srcOffset;
    let o = dstOffset;
    for (let b = 0; b < blockCount; b++, s += 34) {
      const d = fp16[readU16(src, s)]!;
      // q * d is exact in float64; the Float32Array store is the single float rounding.
      for (let j = 0; j < QK8_0; j++) dst[o++] = ((src[s + 2 + j]! << 24) >> 24) * d;
    }
  },

  // quantize_row_q8_0_ref: d = amax / 127, q = roundf(x / d) (via x * (1/d)).
  quantize(src, srcOffset, dst, dstOffset, blockCount) {
    for (let b = 0; b < blockCount; b++) {
      const x = srcOffset + b * QK8_0;
      const y = dstOffset + b * 34;
      let amax = 0;
      for (let j = 0; j < QK8_0; j++) {
        const a = Math.abs(src[x + j]!);
        amax = amax > a ? amax : a; // C's MAX(amax, fabsf(v))
      }
      const d = fround(amax / 127);
      const id = d !== 0 ? fround(1 / d) : 0;
      writeU16(dst, y, fp32ToFp16(d));
      for (let j = 0; j < QK8_0; j++) dst[y + 2 + j] = castFloatToInt8(roundf(fround(src[x + j]! * id))) & 0xff;
    }
  },
};
