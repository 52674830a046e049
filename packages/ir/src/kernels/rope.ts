import type { Kernel } from '../interpreter.ts';

/**
 * ggml_rope_ext (forward) at positions 0..T-1, as in ggml-cpu ops.cpp:
 * theta(pos, i0) = pos * freq_base^(-i0/n_rot) / freq_factors[i0/2], then
 * rope_yarn mixes interpolated (freq_scale * theta) and extrapolated theta by
 * the YaRN ramp when ext_factor != 0, and scales cos/sin by attn_factor
 * (times 1 + 0.1 ln(1/freq_scale) under YaRN). Normal mode rotates pairs
 * (i0, i0+1); neox mode pairs (i0/2, i0/2 + n_rot/2). Dims past n_rot are copied.
 */
export const rope: Kernel = ({ inputs: [x, freqFactors], attrs }) => {
  const [t, width] = x!.shape as [number, number];
  const headDim = attrs.head_dim as number;
  const nRot = attrs.n_rot as number;
  const freqBase = attrs.freq_base as number;
  const freqScale = attrs.freq_scale as number;
  const extFactor = attrs.ext_factor as number;
  const attnFactor = attrs.attn_factor as number;
  const neox = attrs.mode === 'neox';
  const [corrLow, corrHigh] = yarnCorrDims(nRot, attrs.n_ctx_orig as number, freqBase, attrs.beta_fast as number, attrs.beta_slow as number);
  const nHeads = width / headDim;
  const out = Float64Array.from(x!.data);
  const cos = new Float64Array(nRot / 2);
  const sin = new Float64Array(nRot / 2);
  for (let pos = 0; pos < t; pos++) {
    for (let i0 = 0; i0 < nRot; i0 += 2) {
      const ff = freqFactors ? freqFactors.data[i0 / 2]! : 1;
      const thetaExtrap = (pos * Math.pow(freqBase, -i0 / nRot)) / ff;
      const thetaInterp = freqScale * thetaExtrap;
      let theta = thetaInterp;
      let mscale = attnFactor;
      if (extFactor !== 0) {
        const y = (Math.trunc(i0 / 2) - corrLow) / Math.max(0.001, corrHigh - corrLow);
        const rampMix = (1 - Math.min(1, Math.max(0, y))) * extFactor;
        theta = thetaInterp * (1 - rampMix) + thetaExtrap * rampMix;
        mscale *= 1 + 0.1 * Math.log(1 / freqScale);
      }
      cos[i0 / 2] = Math.cos(theta) * mscale;
      sin[i0 / 2] = Math.sin(theta) * mscale;
    }
    for (let h = 0; h < nHeads; h++) {
      const base = pos * width + h * headDim;
      for (let i0 = 0; i0 < nRot; i0 += 2) {
        const a = base + (neox ? i0 / 2 : i0);
        const b = a + (neox ? nRot / 2 : 1);
        const x0 = x!.data[a]!;
        const x1 = x!.data[b]!;
        const c = cos[i0 / 2]!;
        const s = sin[i0 / 2]!;
        out[a] = x0 * c - x1 * s;
        out[b] = x0 * s + x1 * c;
      }
    }
  }
  return { shape: [t, width], data: out };
};

/** ggml_rope_yarn_corr_dims: the dims where the YaRN ramp starts and ends. */
function yarnCorrDims(nDims: number, nCtxOrig: number, freqBase: number, betaFast: number, betaSlow: number): [number, number] {
  const corrDim = (nRot: number) => (nDims * Math.log(nCtxOrig / (nRot * 2 * Math.PI))) / (2 * Math.log(freqBase));
  const start = Math.floor(corrDim(betaFast));
  const end = Math.ceil(corrDim(betaSlow));
  return [Math.max(0, start), Math.min(nDims - 1, end)];
}
