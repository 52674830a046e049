import { describe, expect, it } from 'vitest';
import { isChessError } from '@chess/core';
import { parseShape, SHAPES } from './shapes.ts';

describe('parseShape', () => {
  it('resolves named shapes', () => {
    expect(parseShape('llama2-7b')).toBe(SHAPES['llama2-7b']);
    expect(parseShape('llama3-8b').nHeadKV).toBe(8);
  });

  it('applies inline JSON overrides on a named base', () => {
    const shape = parseShape('{"base": "llama3-8b", "nLayer": 2, "name": "tiny"}');
    expect(shape).toMatchObject({ name: 'tiny', nLayer: 2, nEmbd: 4096, nFF: 14336, nHeadKV: 8 });
  });

  it.each([
    ['{"base": "gpt5"}', /unknown base 'gpt5'/],
    ['{"base": "smollm2", "nLayer": 0}', /'nLayer' must be a positive integer/],
    ['{"base": "smollm2", "nHead": 7}', /not divisible by nHead 7/],
    ['{"base": "smollm2", "nHeadKV": 2}', /not a multiple of nHeadKV 2/],
    ['{not json', /nor valid JSON/],
    ['no-such-shape', /not a known shape .*llama2-7b/],
  ])('rejects %s with a clear error', (arg, message) => {
    let error: unknown;
    try {
      parseShape(arg);
    } catch (e) {
      error = e;
    }
    expect(isChessError(error) && error.code).toBe('SYNTH_BAD_SHAPE');
    expect((error as Error).message).toMatch(message);
  });
});
