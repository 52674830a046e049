/**
 * Test inputs of the driver: a small synthetic llama GGUF (2 layers, the
 * SmolLM2 tokenizer, Q4_1; head_dim 32, one KV head, so every projection fits
 * the column-block layout) and profiles whose quantile functions are written
 * down, so each threshold follows from its definition by hand:
 * per-channel t / m_i with t = quantile(s), tensor-wise quantile(s).
 */
import { GGMLType } from '@chess/gguf';
import { parseShape, synthesizeModel } from '@chess/models';
import { PROJECTIONS, type Projection, type QuantileSource, type ThresholdProfile } from '@chess/pass-chess';

export const TINY = { nLayer: 2, nEmbd: 64, nFF: 128, nHead: 2, nHeadKV: 1 } as const;

export async function tinyModel(out: string, seed = 3): Promise<string> {
  await synthesizeModel({ shape: parseShape(JSON.stringify({ base: 'smollm2', ...TINY })), type: GGMLType.Q4_1, out, seed });
  return out;
}

/** quantile(p) = scale * p (uniform on [0, scale]); cdf its inverse. */
export const uniform = (scale: number): Required<QuantileSource> => ({ quantile: (p) => scale * p, cdf: (v) => Math.min(1, Math.max(0, v / scale)) });

/** Input of projection p in layer l: uniform on [0, inputScale(l, p)]. */
export const inputScale = (layer: number, proj: Projection): number => (layer + 1) * (PROJECTIONS.indexOf(proj) + 2);
/** Scores |g_i| m_i of layer l: uniform on [0, scoreScale(l)] (both statistics); m_i = 1 + i / n_ff (rms), 2 + i / n_ff (mean-abs). */
export const scoreScale = (layer: number): number => 4 * (layer + 1);
export const rmsOf = (i: number): number => 1 + i / TINY.nFF;
export const meanAbsOf = (i: number): number => 2 + i / TINY.nFF;

/** A profile of the tiny model whose distributions are `uniform` times `k` (k = 1: the dense profile; others: "measurements"). */
export function tinyProfile(k = 1, calibration = { source: 'synthetic-test', tokens: 1234, seed: 42 }): ThresholdProfile {
  return {
    model: { arch: 'llama', nLayer: TINY.nLayer, nEmbd: TINY.nEmbd, nFF: TINY.nFF, file: 'tiny.gguf' },
    calibration,
    layers: Array.from({ length: TINY.nLayer }, (_, il) => ({
      upRms: Float64Array.from({ length: TINY.nFF }, (_, i) => rmsOf(i)),
      upMeanAbs: Float64Array.from({ length: TINY.nFF }, (_, i) => meanAbsOf(i)),
      gateAbs: uniform(k * (il + 1)),
      score: { rms: uniform(k * scoreScale(il)), 'mean-abs': uniform(k * scoreScale(il)) },
      inputs: Object.fromEntries(PROJECTIONS.map((p) => [p, uniform(k * inputScale(il, p))])) as Record<Projection, QuantileSource>,
    })),
  };
}
