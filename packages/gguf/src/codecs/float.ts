/**
 * Plain float tensors (block size 1): F32, F16, BF16. Decoding works on bit
 * patterns (Uint32 views of the output) so NaN payloads survive exactly.
 */
import { GGMLType } from '../types.ts';
import { type BlockCodec, readU16, writeU16 } from './codec.ts';
import { fp16ToFp32BitsTable, fp32BitsToBf16Bits, fp32BitsToFp16Bits } from './half.ts';

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function bitsView(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

export const F32: BlockCodec = {
  type: GGMLType.F32,
  blockSize: 1,
  typeSize: 4,
  dequantize(src, srcOffset, dst, dstOffset, count) {
    if (HOST_LITTLE_ENDIAN) {
      // Same byte order on disk and in memory: one memcpy, whatever src's alignment.
      const bytes = new Uint8Array(dst.buffer, dst.byteOffset + dstOffset * 4, count * 4);
      bytes.set(src.subarray(srcOffset, srcOffset + count * 4));
      return;
    }
    const view = new DataView(src.buffer, src.byteOffset + srcOffset, count * 4);
    const bits = bitsView(dst);
    for (let i = 0; i < count; i++) bits[dstOffset + i] = view.getUint32(i * 4, true);
  },
  quantize(src, srcOffset, dst, dstOffset, count) {
    const view = new DataView(dst.buffer, dst.byteOffset + dstOffset, count * 4);
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < count; i++) view.setUint32(i * 4, bits[srcOffset + i]!, true);
  },
};

export const F16: BlockCodec = {
  type: GGMLType.F16,
  blockSize: 1,
  typeSize: 2,
  dequantize(src, srcOffset, dst, dstOffset, count) {
    const table = fp16ToFp32BitsTable();
    const bits = bitsView(dst);
    for (let i = 0; i < count; i++) bits[dstOffset + i] = table[readU16(src, srcOffset + 2 * i)]!;
  },
  quantize(src, srcOffset, dst, dstOffset, count) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < count; i++) writeU16(dst, dstOffset + 2 * i, fp32BitsToFp16Bits(bits[srcOffset + i]!));
  },
};

export const BF16: BlockCodec = {
  type: GGMLType.BF16,
  blockSize: 1,
  typeSize: 2,
  dequantize(src, srcOffset, dst, dstOffset, count) {
    const bits = bitsView(dst);
    for (let i = 0; i < count; i++) bits[dstOffset + i] = readU16(src, srcOffset + 2 * i) << 16;
  },
  quantize(src, srcOffset, dst, dstOffset, count) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < count; i++) writeU16(dst, dstOffset + 2 * i, fp32BitsToBf16Bits(bits[srcOffset + i]!));
  },
};
