import type { Kernel } from '../interpreter.ts';

/** ggml_mul_mat(W, x) (+ bias): y[t, n] = sum_k x[t, k] * W[n, k] + b[n]. */
export const linear: Kernel = ({ inputs: [x, w, bias] }) => {
  const [t, nIn] = x!.shape as [number, number];
  const nOut = w!.shape[0]!;
  const out = new Float64Array(t * nOut);
  const xd = x!.data;
  const wd = w!.data;
  for (let i = 0; i < t; i++) {
    for (let n = 0; n < nOut; n++) {
      let acc = 0;
      const xr = i * nIn;
      const wr = n * nIn;
      for (let k = 0; k < nIn; k++) acc += xd[xr + k]! * wd[wr + k]!;
      out[i * nOut + n] = bias ? acc + bias.data[n]! : acc;
    }
  }
  return { shape: [t, nOut], data: out };
};
