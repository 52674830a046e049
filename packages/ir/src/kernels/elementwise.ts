import type { Kernel, Tensor } from '../interpreter.ts';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_COEF_A = 0.044715;

const FUNCTIONS: Record<string, (x: number) => number> = {
  silu: (x) => x / (1 + Math.exp(-x)),
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * x * (1 + GELU_COEF_A * x * x))),
};

export const activation: Kernel = ({ inputs: [x], attrs }) => map(x!, FUNCTIONS[attrs.fn as string]!);

export const mul: Kernel = ({ inputs: [a, b] }) => zip(a!, b!, (x, y) => x * y);

export const add: Kernel = ({ inputs: [a, b] }) => zip(a!, b!, (x, y) => x + y);

function map(a: Tensor, f: (x: number) => number): Tensor {
  return { shape: a.shape, data: a.data.map(f) };
}

function zip(a: Tensor, b: Tensor, f: (x: number, y: number) => number): Tensor {
  const data = new Float64Array(a.data.length);
  for (let i = 0; i < data.length; i++) data[i] = f(a.data[i]!, b.data[i]!);
  return { shape: a.shape, data };
}
