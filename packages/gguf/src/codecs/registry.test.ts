// The public entry points: codec table consistency, supported-type queries,
// and the stable error codes.
import { ChessError } from '@chess/core';
import { describe, expect, it } from 'vitest';
import { GGMLType, ggmlTypeTraits } from '../types.ts';
import { blockCodec, canDequantize, canQuantize, dequantizableTypes, dequantize, quantizableTypes, quantize } from './registry.ts';

function thrown(f: () => unknown): ChessError {
  try {
    f();
  } catch (error) {
    if (error instanceof ChessError) return error;
    throw error;
  }
  throw new Error('expected a ChessError');
}

describe('codec table', () => {
  it('agrees with the ggml layout table for every registered type', () => {
    for (const type of dequantizableTypes()) {
      const { blockSize, typeSize } = ggmlTypeTraits(type);
      expect({ type, blockSize: blockCodec(type).blockSize, typeSize: blockCodec(type).typeSize }).toEqual({ type, blockSize, typeSize });
    }
  });

  it('decodes the promised types and encodes the reference-quantizer ones', () => {
    const all = [GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1];
    for (const type of [...all, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K]) expect(canDequantize(type)).toBe(true);
    for (const type of all) expect(canQuantize(type)).toBe(true);
    expect(canQuantize(GGMLType.Q4_K)).toBe(false);
    expect(canDequantize(GGMLType.IQ2_XXS)).toBe(false);
    expect(quantizableTypes()).toHaveLength(all.length);
  });
});

describe('errors', () => {
  it('GGUF_CODEC_UNSUPPORTED names the type and the supported ones', () => {
    const error = thrown(() => dequantize(GGMLType.Q2_K, new Uint8Array(84), 256));
    expect(error.code).toBe('GGUF_CODEC_UNSUPPORTED');
    expect(error.message).toContain('q2_K');
    expect(error.message).toContain('q6_K');
    expect(error.details).toMatchObject({ typeName: 'q2_K', direction: 'dequantize' });
    const encode = thrown(() => quantize(GGMLType.Q6_K, new Float32Array(256)));
    expect(encode.code).toBe('GGUF_CODEC_UNSUPPORTED');
    expect(encode.details.supported).not.toContain('q6_K');
  });

  it('GGUF_BAD_ROW_LENGTH when the element count is not a multiple of the block size', () => {
    const error = thrown(() => quantize(GGMLType.Q4_0, new Float32Array(48)));
    expect(error.code).toBe('GGUF_BAD_ROW_LENGTH');
    expect(error.message).toMatch(/48 elements of q4_0.*block size 32/);
    expect(error.details).toMatchObject({ typeName: 'q4_0', elementCount: 48, blockSize: 32 });
    expect(thrown(() => dequantize(GGMLType.Q6_K, new Uint8Array(210), 255)).code).toBe('GGUF_BAD_ROW_LENGTH');
    expect(thrown(() => dequantize(GGMLType.F16, new Uint8Array(4), -2)).code).toBe('GGUF_BAD_ROW_LENGTH');
  });

  it('GGUF_CODEC_BUFFER_TOO_SMALL for short inputs and outputs', () => {
    expect(thrown(() => dequantize(GGMLType.Q8_0, new Uint8Array(33), 32)).details).toMatchObject({ buffer: 'input', needed: 34, actual: 33 });
    expect(thrown(() => dequantize(GGMLType.Q8_0, new Uint8Array(34), 32, new Float32Array(31))).code).toBe('GGUF_CODEC_BUFFER_TOO_SMALL');
    expect(thrown(() => quantize(GGMLType.Q4_1, new Float32Array(32), new Uint8Array(19))).details).toMatchObject({ buffer: 'output', needed: 20 });
  });
});

describe('buffers', () => {
  it('writes into a caller-supplied output and returns a view of exactly the result', () => {
    const out = new Uint8Array(100).fill(0xaa);
    const bytes = quantize(GGMLType.Q8_0, new Float32Array(64).fill(1), out);
    expect(bytes.buffer).toBe(out.buffer);
    expect(bytes.length).toBe(68);
    expect(out[68]).toBe(0xaa);
    expect(dequantize(GGMLType.Q8_0, new Uint8Array(0), 0)).toHaveLength(0);
  });
});
