/**
 * Thresholds from a calibration profile (method.md §2-3):
 *
 *  - CHESS (`chess`, `chess+`), per layer: t = the s-quantile of the layer's
 *    calibration scores |g_i| * m_i; tau_i = t / m_i, with m_i = sqrt(E u_i^2)
 *    (`rms`) or E|u_i| (`mean-abs`). The first release takes t on squared
 *    scores; the s-quantile of squares is the square of the s-quantile, so t on
 *    unsquared scores gives the same tau_i.
 *  - CATS: one t per layer, the s-quantile of |g| (written as n_ff copies).
 *  - tensor-wise thresholds (chess+ on the W_q / W_o inputs, TEAL on all seven
 *    projection inputs): the s-quantile of |x|.
 *
 * Guards (documented in docs/transposed-weights.md §Thresholds):
 *  - m_i = 0 (channel i's up output was exactly zero on every calibration
 *    token, e.g. an all-zero W_up row): its contribution g_i * u_i is zero, so
 *    dropping it is free. tau_i = FLT_MAX, the largest finite f32: the channel
 *    is never kept (for any finite g) and the file holds no infinities.
 *  - sparsity 0: every threshold is exactly 0, so only exact zeros are dropped
 *    and the model computes the dense function (histogram quantiles at p = 0
 *    would return the smallest observed magnitude instead).
 *
 * The profile type is structural (a subset of @chess/calibrate's
 * CalibrationProfile), so this package does not depend on how profiles are made.
 */
import { ChessError, UsageError } from '@chess/core';
import { type Method, PROJECTIONS, type Projection, type Statistic, isStatistic, methodLayout, STATISTICS } from './methods.ts';

/** Largest finite float32: the threshold of a channel that never contributes. */
export const FLT_MAX = 3.4028234663852886e38;

export interface QuantileSource {
  quantile(p: number): number;
  /** Fraction of values <= v (optional: used to report what a threshold drops on the measured distribution). */
  cdf?(v: number): number;
}

export interface ThresholdLayerProfile {
  readonly upMeanAbs: ArrayLike<number>;
  readonly upRms: ArrayLike<number>;
  readonly gateAbs: QuantileSource;
  readonly score: Readonly<Record<Statistic, QuantileSource>>;
  readonly inputs: Readonly<Record<Projection, QuantileSource>>;
}

/** What the pass reads from a calibration profile (@chess/calibrate's CalibrationProfile fits). */
export interface ThresholdProfile {
  readonly model: { readonly sha256?: string; readonly file?: string; readonly arch: string; readonly nLayer: number; readonly nEmbd: number; readonly nFF: number };
  readonly calibration: { readonly source: string; readonly tokens: number; readonly seed: number; readonly tool?: string };
  readonly layers: readonly ThresholdLayerProfile[];
}

export interface ThresholdOptions {
  readonly method: Method;
  /** Per-channel statistic (chess, chess+); ignored by cats and teal. Default `rms`. */
  readonly statistic?: Statistic;
  /** Target fraction of dropped elements per thresholded tensor, in [0, 1). */
  readonly sparsity: number;
}

export interface LayerThresholds {
  readonly layer: number;
  /** [n_ff] thresholds on |act(W_gate x)| (chess, chess+, cats). */
  readonly gate?: Float32Array;
  /** One threshold per thresholded projection input (chess+: attn_q, attn_output; teal: all seven). */
  readonly inputs: Partial<Record<Projection, number>>;
}

export interface Thresholds {
  readonly method: Method;
  /** `none` for methods without a per-channel statistic. */
  readonly statistic: Statistic | 'none';
  readonly sparsity: number;
  readonly layers: readonly LayerThresholds[];
}

/** Check method / statistic / sparsity; UsageError naming the option and the valid values. */
export function checkThresholdOptions(options: { method: string; statistic?: string | undefined; sparsity: number }): void {
  methodLayout(options.method); // CHESS_UNKNOWN_METHOD, listing the known methods
  if (options.statistic !== undefined && !isStatistic(options.statistic)) {
    throw new UsageError('CHESS_UNKNOWN_STATISTIC', `unknown statistic '${options.statistic}'; valid statistics: ${STATISTICS.join(', ')}`, {
      statistic: options.statistic,
      valid: STATISTICS,
    });
  }
  if (typeof options.sparsity !== 'number' || !(options.sparsity >= 0 && options.sparsity < 1)) {
    throw new UsageError('CHESS_BAD_SPARSITY', `sparsity ${String(options.sparsity)} is outside [0, 1)`, { sparsity: options.sparsity });
  }
}

export function computeThresholds(profile: ThresholdProfile, options: ThresholdOptions): Thresholds {
  checkThresholdOptions(options);
  const { method, sparsity } = options;
  const layout = methodLayout(method);
  const statistic = options.statistic ?? 'rms';
  const nFF = profile.model.nFF;
  if (profile.layers.length !== profile.model.nLayer) {
    throw new ChessError('CHESS_PROFILE_INVALID', `profile has ${profile.layers.length} layers, its model identity says ${profile.model.nLayer}`, {
      layers: profile.layers.length,
      nLayer: profile.model.nLayer,
    });
  }
  const q = (source: QuantileSource): number => (sparsity === 0 ? 0 : source.quantile(sparsity));
  const layers = profile.layers.map((lp, layer): LayerThresholds => {
    let gate: Float32Array | undefined;
    if (layout.gate === 'channel') {
      const m = statistic === 'rms' ? lp.upRms : lp.upMeanAbs;
      if (m.length !== nFF) {
        throw new ChessError('CHESS_PROFILE_INVALID', `profile layer ${layer}: ${statistic} statistic has ${m.length} channels, expected n_ff = ${nFF}`, { layer });
      }
      const t = q(lp.score[statistic]);
      gate = new Float32Array(nFF);
      for (let i = 0; i < nFF; i++) {
        const mi = m[i]!;
        gate[i] = t === 0 ? 0 : mi > 0 ? Math.min(t / mi, FLT_MAX) : FLT_MAX;
      }
    } else if (layout.gate === 'layer') {
      gate = new Float32Array(nFF).fill(Math.min(q(lp.gateAbs), FLT_MAX));
    }
    const inputs: Partial<Record<Projection, number>> = {};
    for (const proj of PROJECTIONS) if (layout.inputs.includes(proj)) inputs[proj] = Math.fround(q(lp.inputs[proj]));
    return { layer, ...(gate && { gate }), inputs };
  });
  return { method, statistic: layout.gate === 'channel' ? statistic : 'none', sparsity, layers };
}
