/**
 * Golden IR-in / IR-out tests of the CHESS passes (Babel style): each folder of
 * __fixtures__/passes holds input.ir, options.json (method, statistic,
 * sparsity, layout, transposedType, profile overrides; cascading from the
 * suite root) and output.ir, or a `throws` for an expected error. The outputs were reviewed
 * by hand; thresholds are memory weights, so only the graph structure, the
 * weight table and the metadata show in the text.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type DType, buildLlamaModule, parse, print, verify } from '@chess/ir';
import { runFixtures } from '@chess/ir/testing';
import type { Layout } from '@chess/contract';
import { type Method, type Statistic, applyChess, checkTransposedType, layoutWeights, registerSparseOps } from './index.ts';
import { flatProfile } from './testing.ts';

registerSparseOps();

interface PassOptions {
  method: Method;
  statistic?: Statistic;
  sparsity: number;
  layout?: Layout;
  transposedType?: DType;
  profile?: Record<string, unknown>;
}

runFixtures('CHESS passes', join(import.meta.dirname, '__fixtures__', 'passes'), {
  transform({ input, options }) {
    const o = options as unknown as PassOptions;
    const module = parse(input!, { filename: 'input.ir' });
    verify(module);
    applyChess(module, flatProfile(module, o.profile ?? {}), {
      method: o.method,
      sparsity: o.sparsity,
      ...(o.statistic !== undefined && { statistic: o.statistic }),
      ...(o.layout !== undefined && { layout: o.layout }),
      ...(o.transposedType !== undefined && { transposedType: o.transposedType }),
      pipeline: { debug: {} },
    });
    return print(module);
  },
  check(actual) {
    // the text form of a rewritten module parses back to the same text
    expect(print(parse(actual, { filename: 'output.ir' }))).toBe(actual);
  },
});

describe('transposed type checks', () => {
  const hp = { n_layer: 1, n_embd: 64, n_ff: 128, n_head: 4, n_head_kv: 1, n_vocab: 32, rms_eps: 1e-5, rope: { freq_base: 10000 } };
  it('rejects a type whose block does not divide n_out of a transposed projection, naming the tensor', () => {
    // head_dim 16, one kv head: attn_k / attn_v have n_out = 16, not a multiple of 32
    const module = buildLlamaModule(hp, { dtype: 'q4_1' });
    expect(() => checkTransposedType(module, 'teal', 'q8_0')).toThrow(/blk\.0\.attn_k\.weight \[16,64\].*multiple of the block size 32/);
    // chess+ does not transpose attn_k / attn_v
    expect(() => checkTransposedType(module, 'chess+', 'q8_0')).not.toThrow();
    expect(() => checkTransposedType(module, 'teal', 'f16')).not.toThrow();
  });
});

describe('weight layout', () => {
  it('refuses a module that would hold both layouts of a projection', () => {
    registerSparseOps();
    const module = buildLlamaModule({ n_layer: 1, n_embd: 32, n_ff: 64, n_head: 1, n_head_kv: 1, n_vocab: 8, rms_eps: 1e-5, rope: { freq_base: 10000 } });
    module.addWeight({ name: 'blk.0.ffn_down_t.weight', dtype: 'f32', shape: [64, 32], source: { kind: 'memory' }, keep: true });
    expect(() => layoutWeights(module)).toThrow(/@blk\.0\.ffn_down\.weight is still in the weight table/);
  });
});
