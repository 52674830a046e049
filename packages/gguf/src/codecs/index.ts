export { dequantize, quantize, canDequantize, canQuantize, dequantizableTypes, quantizableTypes, blockCodec, type CodecErrorCode } from './registry.ts';
export type { BlockCodec } from './codec.ts';
export { fp16ToFp32, fp32ToFp16, bf16ToFp32, fp32ToBf16 } from './half.ts';
