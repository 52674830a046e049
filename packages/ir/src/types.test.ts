import { describe, expect, it } from 'vitest';
import { DTYPES, formatType, ggmlNeFromShape, isDType, numElements, shapeFromGgmlNe, shapesEqual } from './types.ts';

describe('types', () => {
  it('compares symbolic dims by name only', () => {
    expect(shapesEqual(['T', 576], ['T', 576])).toBe(true);
    expect(shapesEqual(['T', 576], ['S', 576])).toBe(false);
    expect(shapesEqual(['T', 576], [7, 576])).toBe(false);
  });

  it('converts GGUF ne (innermost first) to shapes (outermost first) and back', () => {
    // SmolLM2 ffn_up: ne = [576, 1536] -> 1536 rows of 576
    expect(shapeFromGgmlNe([576n, 1536n])).toEqual([1536, 576]);
    expect(ggmlNeFromShape([1536, 576])).toEqual([576, 1536]);
    expect(() => ggmlNeFromShape(['T', 4])).toThrow(expect.objectContaining({ code: 'IR_SHAPE_UNBOUND_DIM' }));
  });

  it('knows the ggml storage types and their block sizes', () => {
    expect(isDType('q4_K')).toBe(true);
    expect(isDType('Q4_K')).toBe(false);
    expect(DTYPES.q4_1.blockSize).toBe(32);
    expect(DTYPES.q6_K).toEqual({ kind: 'quantized', blockSize: 256 });
    expect(formatType({ dtype: 'f32', shape: ['T', 1536] })).toBe('f32[T,1536]');
    expect(numElements(['T', 4], { T: 3 })).toBe(12);
    expect(() => numElements(['T'])).toThrow(expect.objectContaining({ code: 'IR_SHAPE_UNBOUND_DIM' }));
  });
});
