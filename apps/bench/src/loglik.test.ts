import { describe, expect, it } from 'vitest';
import { isChessError } from '@chess/core';
import { encodePair, planRequest, type Tokenize } from './loglik.ts';

/** GPT-2-like toy tokenizer: one token per word with its leading whitespace; ids are indices in a growing table. */
function toyTokenizer(): { tokenize: Tokenize; text: (ids: number[]) => string[] } {
  const table: string[] = [];
  const id = (piece: string) => {
    let i = table.indexOf(piece);
    if (i < 0) i = table.push(piece) - 1;
    return i;
  };
  return {
    tokenize: (text) => (text.match(/\s*\S+|\s+$/g) ?? []).map(id),
    text: (ids) => ids.map((i) => table[i]!),
  };
}

describe('encodePair (lm-eval context/continuation split)', () => {
  it('takes the continuation tokens from the whole string after the context tokens', () => {
    const t = toyTokenizer();
    const pair = encodePair(t.tokenize, 'Question: why?\nAnswer:', ' because it is');
    expect(t.text(pair.context)).toEqual(['Question:', ' why?', '\nAnswer:']);
    expect(t.text(pair.continuation)).toEqual([' because', ' it', ' is']);
  });

  it("moves the context's trailing whitespace into the continuation", () => {
    const t = toyTokenizer();
    // Without the move, 'Answer: ' would end in a lone ' ' token and the continuation would lose its space.
    const pair = encodePair(t.tokenize, 'Answer: ', 'yes');
    expect(t.text(pair.context)).toEqual(['Answer:']);
    expect(t.text(pair.continuation)).toEqual([' yes']);
  });

  it('plans the model input with the BOS prefix and the first scored index', () => {
    const t = toyTokenizer();
    const plan = planRequest(t.tokenize, 'A B', ' C D', [1000], undefined);
    expect(plan.input[0]).toBe(1000);
    expect(t.text(plan.input.slice(1))).toEqual(['A', ' B', ' C', ' D']);
    expect(plan.firstTarget).toBe(3);
  });

  it('conditions an empty context on the fallback token (BOS/EOS) like lm-eval', () => {
    const t = toyTokenizer();
    const plan = planRequest(t.tokenize, '', 'hello world', [], 7);
    expect(plan.input[0]).toBe(7);
    expect(plan.firstTarget).toBe(1);
    expect(plan.input.length).toBe(3);
  });

  it('rejects a continuation that adds no token', () => {
    // A tokenizer that merges the whole text into one token leaves nothing after the context.
    const merging: Tokenize = (text) => [text.length];
    const error = (() => {
      try {
        planRequest(merging, 'ab', 'c', [], undefined);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(isChessError(error) && error.code).toBe('EVAL_EMPTY_CONTINUATION');
  });
});
