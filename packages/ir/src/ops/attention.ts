import type { OpSchema } from '../schema.ts';

/** `%o = attention %q %k %v : f32[T,H*D] {n_head=9, n_head_kv=3, head_dim=64, scale=0.125}` */
export const attention: OpSchema = {
  name: 'attention',
  summary:
    'Grouped-query scaled dot-product attention, softmax(scale * q k^T + mask) v per head; ' +
    'query head h reads kv head h / (n_head / n_head_kv). Output heads are concatenated.',
  operands: [
    { name: 'q', role: 'value', doc: 'Queries f32[T, n_head*head_dim].' },
    { name: 'k', role: 'value', doc: 'Keys f32[T, n_head_kv*head_dim].' },
    { name: 'v', role: 'value', doc: 'Values f32[T, n_head_kv*head_dim].' },
  ],
  attrs: {
    n_head: { type: 'int', doc: 'Query heads.' },
    n_head_kv: { type: 'int', doc: 'Key/value heads; divides n_head.' },
    head_dim: { type: 'int', doc: 'Size of one head.' },
    scale: { type: 'float', doc: 'Multiplier of q.k, usually 1/sqrt(head_dim).' },
    causal: { type: 'bool', default: true, doc: 'Position i attends to positions <= i only.' },
  },
  infer(ctx) {
    const nHead = ctx.int('n_head');
    const nHeadKv = ctx.int('n_head_kv');
    const headDim = ctx.int('head_dim');
    ctx.check(nHead > 0 && nHeadKv > 0 && nHead % nHeadKv === 0, `n_head_kv to divide n_head (got n_head=${nHead}, n_head_kv=${nHeadKv})`);
    ctx.check(headDim > 0, `head_dim > 0 (got ${headDim})`);
    const [t] = ctx.rank(0, 2);
    for (const i of [0, 1, 2]) ctx.dtype(i, 'f32');
    ctx.shape(0, [t!, nHead * headDim]);
    ctx.shape(1, [t!, nHeadKv * headDim]);
    ctx.shape(2, [t!, nHeadKv * headDim]);
    return { dtype: 'f32', shape: [t!, nHead * headDim] };
  },
};
