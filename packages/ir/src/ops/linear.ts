import type { OpSchema } from '../schema.ts';

/** `%y = linear %x @blk.N.ffn_up.weight : f32[T,N]` — ggml_mul_mat (+ ggml_add of the bias). */
export const linear: OpSchema = {
  name: 'linear',
  summary: 'Dense projection y = x W^T (+ b): W is [n_out, n_in], n_out rows of n_in (ggml_mul_mat).',
  operands: [
    { name: 'x', role: 'value', doc: 'Input f32[T,n_in].' },
    { name: 'weight', role: 'weight', doc: 'Weight [n_out, n_in], any storage type.' },
    { name: 'bias', role: 'weight', optional: true, dtypes: ['float'], doc: 'Bias [n_out] (qwen2 q/k/v).' },
  ],
  attrs: {},
  infer(ctx) {
    const [t, nIn] = ctx.rank(0, 2);
    ctx.dtype(0, 'f32');
    const [nOut] = ctx.rank(1, 2);
    ctx.shape(1, [nOut!, nIn!]);
    if (ctx.has(2)) ctx.shape(2, [nOut!]);
    return { dtype: 'f32', shape: [t!, nOut!] };
  },
};
