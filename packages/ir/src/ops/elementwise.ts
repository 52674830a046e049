import type { OpSchema } from '../schema.ts';

/** `%g = activation %x : f32[T,F] {fn=silu}` */
export const activation: OpSchema = {
  name: 'activation',
  summary: 'Element-wise activation: silu(x) = x / (1 + exp(-x)); gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).',
  operands: [{ name: 'x', role: 'value', doc: 'Input, any f32 shape.' }],
  attrs: {
    fn: { type: { enum: ['silu', 'gelu_tanh'] }, doc: 'Which function.' },
  },
  infer(ctx) {
    ctx.dtype(0, 'f32');
    return ctx.type(0);
  },
};

function binary(name: string, summary: string): OpSchema {
  return {
    name,
    summary,
    operands: [
      { name: 'a', role: 'value', doc: 'Left operand, f32.' },
      { name: 'b', role: 'value', doc: 'Right operand, same shape.' },
    ],
    attrs: {},
    infer(ctx) {
      ctx.dtype(0, 'f32');
      ctx.dtype(1, 'f32');
      ctx.shape(1, ctx.type(0).shape);
      return ctx.type(0);
    },
  };
}

export const mul = binary('mul', 'Element-wise product of two values of the same shape.');
export const add = binary('add', 'Element-wise sum of two values of the same shape (residual connections).');
