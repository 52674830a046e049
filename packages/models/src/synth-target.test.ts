import { describe, expect, it } from 'vitest';
import { isChessError } from '@chess/core';
import { GGMLType } from '@chess/gguf';
import { parseSynthTarget, synthFileType } from './synth-target.ts';

describe('synth targets', () => {
  it('generates single types directly and asks llama-quantize for the mixes', () => {
    expect(parseSynthTarget('q4_0')).toEqual({ name: 'q4_0', kind: 'direct', type: GGMLType.Q4_0 });
    expect(parseSynthTarget('Q4_K_M')).toEqual({ name: 'q4_k_m', kind: 'quantized', preset: 'q4_k_m' });
    expect(parseSynthTarget('q6_k')).toEqual({ name: 'q6_k', kind: 'quantized', preset: 'q6_k' });
    // q8_0 stays generated directly (no F16 detour)
    expect(parseSynthTarget('q8_0').kind).toBe('direct');
  });

  it('gives the general.file_type llama.cpp writes (enum llama_ftype in include/llama.h)', () => {
    expect(synthFileType(parseSynthTarget('f16'))).toBe(1);
    expect(synthFileType(parseSynthTarget('q4_0'))).toBe(2);
    expect(synthFileType(parseSynthTarget('q8_0'))).toBe(7);
    expect(synthFileType(parseSynthTarget('q4_k_m'))).toBe(15);
    expect(synthFileType(parseSynthTarget('q6_k'))).toBe(18);
  });

  it('refuses other types with the list of supported ones', () => {
    let error: unknown;
    try {
      parseSynthTarget('q3_k_m');
    } catch (e) {
      error = e;
    }
    expect(isChessError(error) && error.code).toBe('SYNTH_BAD_TYPE');
    expect((error as Error).message).toMatch(/expected one of f32, f16, bf16, q8_0, q4_0, q4_1, q4_k_m, q5_k_m, q6_k/);
  });
});
