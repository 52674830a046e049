import { describe, expect, it } from 'vitest';
import { checkSparseContract, checkThresholdValues, MAX_FORMAT_VERSION, type ContractFileView, type ContractKeyValue, type ContractTensorInfo } from './check.ts';

const Q4_1 = 3;
const F32 = 0;

/** A two-layer chess+ file in column blocks, as the compiler writes it (n_embd 64, n_ff 128). */
function file(edit: { keys?: Record<string, ContractKeyValue | undefined>; tensors?: (t: ContractTensorInfo[]) => ContractTensorInfo[] } = {}): ContractFileView {
  const keys: Record<string, ContractKeyValue | undefined> = {
    'general.architecture': { type: 'string', value: 'chess' },
    'chess.base_architecture': { type: 'string', value: 'llama' },
    'chess.format_version': { type: 'u32', value: 2 },
    'chess.target_sparsity': { type: 'f32', value: 0.5 },
    'chess.method': { type: 'string', value: 'chess+' },
    'llama.block_count': { type: 'u32', value: 2 },
    'llama.feed_forward_length': { type: 'u32', value: 128 },
    ...edit.keys,
  };
  let tensors: ContractTensorInfo[] = [];
  for (let l = 0; l < 2; l++) {
    tensors.push(
      { name: `blk.${l}.attn_q_cb.weight`, ggmlType: Q4_1, shape: [64, 64] },
      { name: `blk.${l}.attn_k.weight`, ggmlType: Q4_1, shape: [64, 64] },
      { name: `blk.${l}.ffn_down_cb.weight`, ggmlType: Q4_1, shape: [128, 64] },
      { name: `blk.${l}.ffn_up.weight`, ggmlType: Q4_1, shape: [64, 128] },
      { name: `blk.${l}.ffn_gate_tau`, ggmlType: F32, shape: [128] },
      { name: `blk.${l}.attn_q_in_tau`, ggmlType: F32, shape: [1] },
      { name: `blk.${l}.attn_norm.weight`, ggmlType: F32, shape: [64] },
    );
  }
  if (edit.tensors) tensors = edit.tensors(tensors);
  return { key: (name) => keys[name], tensors };
}

const messages = (view: ContractFileView) => checkSparseContract(view).map((v) => v.message);

describe('checkSparseContract', () => {
  it('accepts a file that keeps the contract (column blocks, format 2; transposed, format 1)', () => {
    expect(messages(file())).toEqual([]);
    const transposed = file({
      keys: { 'chess.format_version': { type: 'u32', value: 1 } },
      tensors: (ts) => ts.map((t) => ({ ...t, name: t.name.replace('_cb.weight', '_t.weight') })),
    });
    expect(messages(transposed)).toEqual([]);
    expect(MAX_FORMAT_VERSION).toBe(2);
  });

  it('refuses missing or mistyped required keys, naming the key', () => {
    expect(messages(file({ keys: { 'chess.target_sparsity': undefined } }))).toEqual(['chess.target_sparsity: missing (required: f32 in [0, 1))']);
    expect(messages(file({ keys: { 'chess.format_version': undefined } }))).toEqual(['chess.format_version: missing (required: u32, 1 to 2)']);
    expect(messages(file({ keys: { 'chess.base_architecture': undefined } }))[0]).toMatch(/^chess\.base_architecture: missing/);
    expect(messages(file({ keys: { 'chess.target_sparsity': { type: 'f64', value: 0.5 } } }))).toEqual(['chess.target_sparsity: has type f64, expected f32']);
    expect(messages(file({ keys: { 'chess.format_version': { type: 'u64', value: 2n } } }))).toEqual(['chess.format_version: has type u64, expected u32']);
    for (const s of [Number.NaN, 1, -0.1, Number.POSITIVE_INFINITY]) {
      expect(messages(file({ keys: { 'chess.target_sparsity': { type: 'f32', value: s } } }))).toEqual([`chess.target_sparsity: is ${s}, expected a number in [0, 1)`]);
    }
    expect(messages(file({ keys: { 'chess.format_version': { type: 'u32', value: 3 } } }))).toEqual(['chess.format_version: 3 is not a format this toolchain reads (1 to 2)']);
  });

  it('refuses thresholds of the wrong type or shape, naming the tensor', () => {
    const retyped = file({ tensors: (ts) => ts.map((t) => (t.name === 'blk.1.ffn_gate_tau' ? { ...t, ggmlType: 1 } : t)) });
    expect(messages(retyped)).toEqual(['blk.1.ffn_gate_tau: ggml type 1, expected f32 (0): thresholds are read as floats']);
    const short = file({ tensors: (ts) => ts.map((t) => (t.name === 'blk.0.ffn_gate_tau' ? { ...t, shape: [96] } : t)) });
    expect(messages(short)).toEqual(['blk.0.ffn_gate_tau: shape [96], expected [128] (llama.feed_forward_length)']);
    const wide = file({ tensors: (ts) => ts.map((t) => (t.name === 'blk.0.attn_q_in_tau' ? { ...t, shape: [2] } : t)) });
    expect(messages(wide)).toEqual(['blk.0.attn_q_in_tau: shape [2], expected [1]']);
    // trailing 1s are ggml padding, not a dimension
    expect(messages(file({ tensors: (ts) => ts.map((t) => (t.name === 'blk.0.attn_q_in_tau' ? { ...t, shape: [1, 1] } : t)) }))).toEqual([]);
  });

  it('refuses layouts inconsistent with the tensors or the format, naming the tensor or key', () => {
    // a _cb tensor in a file declaring format 1
    expect(messages(file({ keys: { 'chess.format_version': { type: 'u32', value: 1 } } }))).toEqual(['chess.format_version: 1, but blk.0.attn_q_cb.weight needs format 2']);
    // format 2 without a _cb tensor
    const noCb = file({ tensors: (ts) => ts.map((t) => ({ ...t, name: t.name.replace('_cb.weight', '_t.weight') })) });
    expect(messages(noCb)).toEqual(["chess.format_version: 2, but the tensors' layouts are format 1 (the largest of the layouts present)"]);
    // a projection stored twice
    const twice = file({ tensors: (ts) => [...ts, { name: 'blk.1.ffn_down.weight', ggmlType: Q4_1, shape: [128, 64] }] });
    expect(messages(twice)).toEqual(['blk.1.ffn_down is stored 2 times (blk.1.ffn_down_cb.weight, blk.1.ffn_down.weight); a sparse GGUF stores one of them']);
    // a column-block tensor that cannot be in column blocks
    const misfit = file({ tensors: (ts) => ts.map((t) => (t.name === 'blk.0.ffn_down_cb.weight' ? { ...t, shape: [128, 48] } : t)) });
    expect(messages(misfit)).toEqual(['blk.0.ffn_down_cb.weight: cannot be in column-block layout: n_out = 48 is not a positive multiple of 32 (q4_1 planes come in 32-row units)']);
    // a layer the model does not have
    const stray = file({ tensors: (ts) => [...ts, { name: 'blk.7.attn_q_in_tau', ggmlType: F32, shape: [1] }] });
    expect(messages(stray)).toEqual(['blk.7.attn_q_in_tau: layer 7 does not exist (llama.block_count = 2)']);
  });
});

describe('checkThresholdValues', () => {
  it('accepts finite thresholds >= 0 (and -0), refuses NaN, infinities and negatives at their index', () => {
    expect(checkThresholdValues('t', Float32Array.of(0, -0, 1e-30, 3e38))).toBeUndefined();
    expect(checkThresholdValues('blk.3.ffn_gate_tau', Float32Array.of(0.5, Number.NaN))?.message).toBe('blk.3.ffn_gate_tau[1] = NaN: a threshold must be finite and >= 0');
    expect(checkThresholdValues('t', Float32Array.of(Number.POSITIVE_INFINITY))?.tensor).toBe('t');
    expect(checkThresholdValues('t', Float32Array.of(1, 2, Number.NEGATIVE_INFINITY))?.message).toMatch(/^t\[2\] = -Infinity/);
    expect(checkThresholdValues('t', Float32Array.of(1, -1e-40))?.message).toMatch(/^t\[1\] = -9\.9999\d*e-41: /); // a negative subnormal
  });
});
