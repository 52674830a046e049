/**
 * The codec table and the public entry points. Adding a type (Q2_K, Q3_K,
 * IQ*) means writing one BlockCodec and listing it here; nothing else switches
 * on the type.
 */
import { ChessError } from '@chess/core';
import { type GGMLType, ggmlTypeName } from '../types.ts';
import type { BlockCodec } from './codec.ts';
import { BF16, F16, F32 } from './float.ts';
import { Q4_K, Q5_K, Q6_K } from './k-quants.ts';
import { Q4_0, Q4_1 } from './q4.ts';
import { Q5_0, Q5_1 } from './q5.ts';
import { Q8_0 } from './q8.ts';

/** Stable codes of the codecs (docs/errors.md). */
export type CodecErrorCode = 'GGUF_CODEC_UNSUPPORTED' | 'GGUF_BAD_ROW_LENGTH' | 'GGUF_CODEC_BUFFER_TOO_SMALL';

const CODECS: ReadonlyMap<GGMLType, BlockCodec> = new Map(
  [F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K].map((codec) => [codec.type, codec]),
);

export function canDequantize(type: GGMLType): boolean {
  return CODECS.has(type);
}

export function canQuantize(type: GGMLType): boolean {
  return CODECS.get(type)?.quantize !== undefined;
}

export function dequantizableTypes(): GGMLType[] {
  return [...CODECS.keys()];
}

export function quantizableTypes(): GGMLType[] {
  return [...CODECS.values()].filter((codec) => codec.quantize).map((codec) => codec.type);
}

/** The codec of `type`; throws GGUF_CODEC_UNSUPPORTED naming the supported types. */
export function blockCodec(type: GGMLType, direction: 'dequantize' | 'quantize' = 'dequantize'): BlockCodec {
  const codec = CODECS.get(type);
  if (codec && (direction === 'dequantize' || codec.quantize)) return codec;
  const supported = direction === 'dequantize' ? dequantizableTypes() : quantizableTypes();
  throw new ChessError(
    'GGUF_CODEC_UNSUPPORTED',
    `cannot ${direction} ggml type ${ggmlTypeName(type)} (id ${type}); supported: ${supported.map(ggmlTypeName).join(', ')}`,
    { type, typeName: ggmlTypeName(type), direction, supported: supported.map(ggmlTypeName) },
  );
}

function blockCountOf(codec: BlockCodec, elementCount: number): number {
  if (!Number.isSafeInteger(elementCount) || elementCount < 0 || elementCount % codec.blockSize !== 0) {
    throw new ChessError(
      'GGUF_BAD_ROW_LENGTH',
      `${elementCount} elements of ${ggmlTypeName(codec.type)}: expected a non-negative multiple of its block size ${codec.blockSize}`,
      { type: codec.type, typeName: ggmlTypeName(codec.type), elementCount, blockSize: codec.blockSize },
    );
  }
  return elementCount / codec.blockSize;
}

function bufferTooSmall(codec: BlockCodec, buffer: 'input' | 'output', unit: 'bytes' | 'elements', needed: number, actual: number) {
  return new ChessError(
    'GGUF_CODEC_BUFFER_TOO_SMALL',
    `${ggmlTypeName(codec.type)} ${buffer} buffer holds ${actual} ${unit}, expected at least ${needed}`,
    { type: codec.type, typeName: ggmlTypeName(codec.type), buffer, unit, needed, actual },
  );
}

/**
 * Decode `elementCount` values of `type` from the blocks at the start of `src`
 * into `out` (allocated when absent). Returns the decoded values: `out` itself
 * when it has exactly `elementCount` elements, otherwise a view of its prefix.
 */
export function dequantize(type: GGMLType, src: Uint8Array, elementCount: number, out?: Float32Array): Float32Array {
  const codec = blockCodec(type, 'dequantize');
  const blocks = blockCountOf(codec, elementCount);
  const bytes = blocks * codec.typeSize;
  if (src.length < bytes) throw bufferTooSmall(codec, 'input', 'bytes', bytes, src.length);
  const dst = out ?? new Float32Array(elementCount);
  if (dst.length < elementCount) throw bufferTooSmall(codec, 'output', 'elements', elementCount, dst.length);
  codec.dequantize(src, 0, dst, 0, blocks);
  return dst.length === elementCount ? dst : dst.subarray(0, elementCount);
}

/**
 * Encode all of `src` as `type` blocks, bit-identical to llama.cpp's reference
 * quantizers (quantize_row_*_ref, ggml_fp32_to_fp16_row, ggml_fp32_to_bf16_row_ref).
 * Returns the block bytes: `out` itself when it has exactly the needed length,
 * otherwise a view of its prefix.
 */
export function quantize(type: GGMLType, src: Float32Array, out?: Uint8Array): Uint8Array {
  const codec = blockCodec(type, 'quantize');
  const blocks = blockCountOf(codec, src.length);
  const bytes = blocks * codec.typeSize;
  const dst = out ?? new Uint8Array(bytes);
  if (dst.length < bytes) throw bufferTooSmall(codec, 'output', 'bytes', bytes, dst.length);
  codec.quantize?.(src, 0, dst, 0, blocks); // present: blockCodec checked the direction
  return dst.length === bytes ? dst : dst.subarray(0, bytes);
}
