import type { OpSchema } from '../schema.ts';

/** `%y = rms_norm %x @blk.N.attn_norm.weight : f32[T,D] {eps=1e-05}` — ggml_rms_norm then ggml_mul. */
export const rmsNorm: OpSchema = {
  name: 'rms_norm',
  summary: 'Row-wise RMS normalisation with a learned scale: y = x / sqrt(mean(x^2) + eps) * w.',
  operands: [
    { name: 'x', role: 'value', doc: 'Input f32[T,D].' },
    { name: 'weight', role: 'weight', dtypes: ['float'], doc: 'Scale, [D].' },
  ],
  attrs: {
    eps: { type: 'float', doc: 'Added to the mean square before the square root.' },
  },
  infer(ctx) {
    const [t, d] = ctx.rank(0, 2);
    ctx.dtype(0, 'f32');
    ctx.shape(1, [d!]);
    ctx.check(ctx.float('eps') >= 0, `eps >= 0 (got ${ctx.float('eps')})`);
    return { dtype: 'f32', shape: [t!, d!] };
  },
};
