import type { OpSchema } from '../schema.ts';

/** `%tokens = input : i32[T]` — the token ids of the sequence, positions 0..T-1. */
export const input: OpSchema = {
  name: 'input',
  summary: 'Token ids of the sequence (positions 0..n_tokens-1).',
  operands: [],
  attrs: {
    n_tokens: { type: 'dim', default: 'T', doc: 'Sequence length: a size or a symbol bound when the module runs.' },
  },
  infer: (ctx) => ({ dtype: 'i32', shape: [ctx.attrs.n_tokens as number | string] }),
};

/** `%x = embedding %tokens @token_embd.weight : f32[T,D]` — ggml_get_rows. */
export const embedding: OpSchema = {
  name: 'embedding',
  summary: 'Row lookup in the token embedding table (ggml_get_rows): out[t] = table[ids[t]].',
  operands: [
    { name: 'ids', role: 'value', doc: 'Token ids, i32[T].' },
    { name: 'table', role: 'weight', doc: 'Embedding table [n_vocab, n_embd], any storage type.' },
  ],
  attrs: {},
  infer(ctx) {
    const [t] = ctx.rank(0, 1);
    ctx.dtype(0, 'i32');
    const [, d] = ctx.rank(1, 2);
    return { dtype: 'f32', shape: [t!, d!] };
  },
};

/** `output %logits` — marks the module result; a root for dead-node elimination. */
export const output: OpSchema = {
  name: 'output',
  summary: 'The module result (logits); a graph root.',
  operands: [{ name: 'logits', role: 'value', doc: 'Final value, usually f32[T,n_vocab].' }],
  attrs: {},
  terminator: true,
  infer: () => undefined,
};
