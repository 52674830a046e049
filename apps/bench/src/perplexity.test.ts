import { describe, expect, it } from 'vitest';
import { isChessError } from '@chess/core';
import { perplexityWindows, summarisePerplexity } from './perplexity.ts';

describe('perplexity windows (llama-perplexity layout)', () => {
  const tokens = Array.from({ length: 11 }, (_, i) => i);

  it('cuts floor(n/ctx) non-overlapping windows, BOS replacing each first token', () => {
    const w = perplexityWindows(tokens, 4, 99);
    expect(w.map((x) => x.tokens)).toEqual([
      [99, 1, 2, 3],
      [99, 5, 6, 7],
    ]);
    expect(w.map((x) => x.start)).toEqual([0, 4]);
    // first = ctx/2 = 2: the distribution after position 2 scores token 3, i.e. ctx - first - 1 = 1 token per window.
    expect(w.every((x) => x.firstScored === 2)).toBe(true);
  });

  it('keeps the first token without BOS and honours maxWindows', () => {
    expect(perplexityWindows(tokens, 4, undefined).map((x) => x.tokens[0])).toEqual([0, 4]);
    expect(perplexityWindows(tokens, 4, undefined, 1)).toHaveLength(1);
    expect(perplexityWindows(tokens, 5, undefined)[0]!.firstScored).toBe(2);
  });

  it('refuses a text shorter than one window', () => {
    try {
      perplexityWindows(tokens, 16, undefined);
      expect.unreachable();
    } catch (error) {
      expect(isChessError(error) && error.code).toBe('EVAL_TEXT_TOO_SHORT');
    }
  });

  it('summarises like llama-perplexity (checked with Python)', () => {
    // math.exp(2) = 7.38905609893065; sqrt(((1+4+9)/3 - 4) / 2) * e^2 = 4.266073527774858
    const s = summarisePerplexity([1, 2, 3]);
    expect(s.perplexity).toBeCloseTo(7.38905609893065, 12);
    expect(s.perplexityStderr).toBeCloseTo(4.266073527774858, 12);
  });
});
