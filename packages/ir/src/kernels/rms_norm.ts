import type { Kernel } from '../interpreter.ts';

/**
 * ggml_rms_norm followed by ggml_mul: the sum of squares is accumulated in
 * double (ggml_float), scale = 1/sqrt(mean + eps), y = (x * scale) * w.
 */
export const rmsNorm: Kernel = ({ inputs: [x, w], attrs, round }) => {
  const [t, d] = x!.shape as [number, number];
  const eps = attrs.eps as number;
  const out = new Float64Array(t * d);
  for (let i = 0; i < t; i++) {
    const row = i * d;
    let sum = 0;
    for (let j = 0; j < d; j++) sum += x!.data[row + j]! * x!.data[row + j]!;
    const scale = round(1 / Math.sqrt(round(round(sum / d) + eps)));
    for (let j = 0; j < d; j++) out[row + j] = round(x!.data[row + j]! * scale) * w!.data[j]!;
  }
  return { shape: [t, d], data: out };
};
