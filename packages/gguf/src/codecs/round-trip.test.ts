// quantize -> dequantize stays within the type's quantization step (a property
// of the formats, not a golden): half a step where rounding is to nearest, one
// step for Q4_0/Q5_0 (the most negative code is clamped), plus the error of
// storing the scale and min as fp16.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GGMLType, ggmlTypeName } from '../types.ts';
import { dequantize, quantize } from './registry.ts';

const FP16_REL = 2 ** -11;
const FP16_ABS = 2 ** -25; // half the smallest fp16 subnormal

interface Bound {
  readonly type: GGMLType;
  /** Largest allowed |x - x'| for one block of 32 values. */
  bound(block: Float32Array): number;
}

function stats(block: Float32Array) {
  let min = Infinity;
  let max = -Infinity;
  for (const v of block) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  return { min, max, amax: Math.max(-min, max) };
}

const fp16Error = (v: number) => Math.abs(v) * FP16_REL + FP16_ABS;
const symmetric = (type: GGMLType, levels: number, steps: number): Bound => ({
  type,
  bound: (block) => {
    const { amax } = stats(block);
    return steps * (amax / levels) + levels * fp16Error(amax / levels);
  },
});
const affine = (type: GGMLType, levels: number): Bound => ({
  type,
  bound: (block) => {
    const { min, max } = stats(block);
    const d = (max - min) / levels;
    return d / 2 + levels * fp16Error(d) + fp16Error(min);
  },
});

const BOUNDS: Bound[] = [
  symmetric(GGMLType.Q8_0, 127, 0.5),
  symmetric(GGMLType.Q4_0, 8, 1),
  symmetric(GGMLType.Q5_0, 16, 1),
  affine(GGMLType.Q4_1, 15),
  affine(GGMLType.Q5_1, 31),
];

const blocksOf32 = fc
  .integer({ min: 1, max: 8 })
  .chain((blocks) => fc.float32Array({ minLength: 32 * blocks, maxLength: 32 * blocks, noNaN: true, noDefaultInfinity: true, min: -1e4, max: 1e4 }));

describe('round trip error is bounded by the quantization step', () => {
  it.each(BOUNDS.map((b) => ({ name: ggmlTypeName(b.type), b })))('$name', ({ b }) => {
    fc.assert(
      fc.property(blocksOf32, (values) => {
        const decoded = dequantize(b.type, quantize(b.type, values), values.length);
        for (let start = 0; start < values.length; start += 32) {
          const block = values.subarray(start, start + 32);
          const limit = b.bound(block) * (1 + 1e-6);
          for (let j = 0; j < 32; j++) {
            const error = Math.abs(decoded[start + j]! - block[j]!);
            if (error > limit) return false;
          }
        }
        return true;
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('f16 and bf16 keep values to their relative precision', () => {
    fc.assert(
      fc.property(fc.float32Array({ minLength: 1, maxLength: 64, noNaN: true, noDefaultInfinity: true, min: -6e4, max: 6e4 }), (values) => {
        const f16 = dequantize(GGMLType.F16, quantize(GGMLType.F16, values), values.length);
        const bf16 = dequantize(GGMLType.BF16, quantize(GGMLType.BF16, values), values.length);
        return values.every((v, i) => Math.abs(f16[i]! - v) <= fp16Error(v) && Math.abs(bf16[i]! - v) <= Math.abs(v) * 2 ** -8 + 2 ** -134);
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('f32 is the identity', () => {
    const values = new Float32Array([0, -0, 1.5, -3e38, 1e-45]);
    expect(new Uint32Array(dequantize(GGMLType.F32, quantize(GGMLType.F32, values), values.length).buffer)).toEqual(new Uint32Array(values.buffer));
  });
});
