import type { OpSchema } from '../schema.ts';

/**
 * `%q = rope %x : f32[T,H*D] {head_dim=64, n_rot=64, freq_base=10000}` —
 * ggml_rope_ext at positions 0..T-1, applied to each head of the row.
 */
export const rope: OpSchema = {
  name: 'rope',
  summary:
    'Rotary position embedding of each head (ggml_rope_ext, positions 0..T-1): normal mode rotates pairs (2i, 2i+1), ' +
    'neox mode pairs (i, i + n_rot/2); theta_i = pos * freq_base^(-2i/n_rot), with YaRN / linear scaling and optional frequency factors.',
  operands: [
    { name: 'x', role: 'value', doc: 'Input f32[T, n_heads*head_dim].' },
    { name: 'freq_factors', role: 'weight', optional: true, dtypes: ['float'], doc: 'Per-pair divisors of theta, [n_rot/2] (rope_freqs.weight).' },
  ],
  attrs: {
    head_dim: { type: 'int', doc: 'Size of one head; the row holds row_size/head_dim heads.' },
    n_rot: { type: 'int', doc: 'Rotated dimensions at the start of each head (even, <= head_dim).' },
    freq_base: { type: 'float', default: 10000, doc: 'Base of the geometric frequency sequence.' },
    freq_scale: { type: 'float', default: 1, doc: 'Linear position interpolation factor (1 = none).' },
    mode: { type: { enum: ['normal', 'neox'] }, default: 'normal', doc: 'Pairing: normal (llama) or neox (qwen2, gemma).' },
    ext_factor: { type: 'float', default: 0, doc: 'YaRN extrapolation mix (0 = off).' },
    attn_factor: { type: 'float', default: 1, doc: 'Magnitude scale of cos/sin.' },
    beta_fast: { type: 'float', default: 32, doc: 'YaRN low correction dim parameter.' },
    beta_slow: { type: 'float', default: 1, doc: 'YaRN high correction dim parameter.' },
    n_ctx_orig: { type: 'int', default: 0, doc: 'Training context length, used by YaRN.' },
  },
  infer(ctx) {
    const [t, width] = ctx.rank(0, 2);
    ctx.dtype(0, 'f32');
    const headDim = ctx.int('head_dim');
    const nRot = ctx.int('n_rot');
    ctx.check(headDim > 0, `head_dim > 0 (got ${headDim})`);
    ctx.check(nRot > 0 && nRot % 2 === 0 && nRot <= headDim, `n_rot even and in 2..head_dim=${headDim} (got ${nRot})`);
    ctx.check(typeof width === 'number' && width % headDim === 0, `row size ${width} to be a multiple of head_dim=${headDim}`);
    if (ctx.has(1)) ctx.shape(1, [nRot / 2]);
    return { dtype: 'f32', shape: [t!, width!] };
  },
};
