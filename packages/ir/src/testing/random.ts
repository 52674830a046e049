/** Seeded random weights for numerical tests (the same seed gives the same bytes everywhere). */
import type { Module } from '../module.ts';

import { mulberry32 } from '@chess/core';

/** mulberry32 (@chess/core): a small 32-bit PRNG; returns floats in [0, 1). */
export { mulberry32 };

/**
 * Values for every weight of the module, uniform in [-scale, scale); norm
 * scales (names ending in `norm.weight`) are 1 + uniform noise so the
 * activations keep a sane magnitude through many layers.
 */
export function randomWeights(module: Module, seed: number, scale = 0.5): Map<string, Float64Array> {
  const rand = mulberry32(seed);
  const out = new Map<string, Float64Array>();
  for (const w of module.weights.values()) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(n);
    const isNorm = w.name.endsWith('norm.weight');
    const isFreq = w.name === 'rope_freqs.weight';
    for (let i = 0; i < n; i++) {
      const u = rand() * 2 - 1;
      data[i] = isNorm ? 1 + 0.2 * u : isFreq ? 1 + 3 * rand() : scale * u;
    }
    out.set(w.name, data);
  }
  return out;
}
