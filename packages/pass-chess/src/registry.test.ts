/**
 * The passes by name and the methods by name: the pipelines name registered
 * passes; `place-thresholds` is the one way values enter threshold weights
 * (and refuses thresholds of another method); a registered method follows the
 * contract's rules.
 */
import { describe, expect, it } from 'vitest';
import { type Module, buildLlamaModule, runPipeline, weightBytes } from '@chess/ir';
import {
  CHECK_PIPELINE,
  PASSES,
  REFINE_PIPELINE,
  TRANSFORM_PIPELINE,
  computeThresholds,
  methodLayout,
  passByName,
  passSteps,
  placeThresholds,
  registerMethod,
  registerSparseOps,
} from './index.ts';
import { flatProfile } from './testing.ts';

registerSparseOps();
const HP = { n_layer: 2, n_embd: 64, n_ff: 128, n_head: 2, n_head_kv: 1, n_vocab: 32, rms_eps: 1e-5, rope: { freq_base: 10000 } };

function sparsified(method: 'chess' | 'teal'): Module {
  const module = buildLlamaModule(HP, { dtype: 'q4_1' });
  runPipeline(module, passSteps(['sparsify'], { method, layout: 'column-blocks', transposedType: 'q8_0' }));
  return module;
}

describe('passes by name', () => {
  it('every pipeline names registered passes; names are unique', () => {
    const names = PASSES.map((p) => p.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of [...CHECK_PIPELINE, ...TRANSFORM_PIPELINE, ...REFINE_PIPELINE]) expect(names).toContain(name);
    expect(() => passByName('fuse-everything')).toThrow(/unknown pass 'fuse-everything'; passes: check-module, sparsify, place-thresholds/);
  });

  it('a pass that needs the thresholds says so when the context has none', () => {
    const module = sparsified('chess');
    expect(() => runPipeline(module, passSteps(['place-thresholds'], { method: 'chess', layout: 'column-blocks', transposedType: 'q8_0' }))).toThrow(
      /pass 'place-thresholds' needs the thresholds/,
    );
  });
});

describe('place-thresholds', () => {
  it('sparsify makes the threshold weights without values; place-thresholds gives each its values', async () => {
    const module = sparsified('chess');
    await expect(weightBytes(module, 'blk.1.ffn_gate_tau')).rejects.toThrow(/without data/);
    const thresholds = computeThresholds(flatProfile(module), { method: 'chess', sparsity: 0.5 });
    placeThresholds(module, thresholds);
    const bytes = await weightBytes(module, 'blk.1.ffn_gate_tau');
    expect(new Float32Array(bytes.buffer, bytes.byteOffset, 128)).toEqual(thresholds.layers[1]!.gate);
    // the threshold weight keeps its place in the table
    expect([...module.weights.keys()].at(-1)).toBe('blk.1.ffn_gate_tau');
  });

  it('refuses thresholds of another method, both ways', () => {
    const chess = sparsified('chess');
    expect(() => placeThresholds(chess, computeThresholds(flatProfile(chess), { method: 'teal', sparsity: 0.5 }))).toThrow(/no 128 threshold value\(s\) for @blk\.0\.ffn_gate_tau in the teal thresholds/);
    expect(() => placeThresholds(chess, computeThresholds(flatProfile(chess), { method: 'chess+', sparsity: 0.5 }))).toThrow(
      /the chess\+ thresholds hold @blk\.0\.attn_q_in_tau, which the module has no threshold weight for \(4 such\)/,
    );
  });
});

describe('methods by name', () => {
  it('a registered method follows the contract rules', () => {
    const layout = { summary: 'x', gate: null, inputs: [], inputSparse: [] } as const;
    expect(() => registerMethod('chess', layout)).toThrow(/method 'chess': is a method of the contract table/);
    expect(() => registerMethod('Bad Name', layout)).toThrow(/lower case/);
    expect(() => registerMethod('k-only', { ...layout, inputs: ['attn_k'] })).toThrow(/its thresholded input attn_k must be input-sparse too/);
    expect(() => registerMethod('gate-only', { ...layout, gate: 'channel' })).toThrow(/a gate threshold makes ffn_down input-sparse/);
    expect(() => registerMethod('w-x', { ...layout, inputSparse: ['attn_x' as 'attn_q'] })).toThrow(/'attn_x' is not a projection/);
    expect(() => methodLayout('k-only')).toThrow(/unknown method 'k-only'; valid methods: chess, chess\+, cats, teal/);
  });
});
