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
import { GATE_ACT_SITE, inputSite } from '@chess/contract';
import { type BudgetAllocation, allocatedSparsity } from './budget.ts';
import { type Method, PROJECTIONS, type Projection, type Statistic, isStatistic, methodLayout, STATISTICS } from './methods.ts';

/** Largest finite float32: the threshold of a channel that never contributes. */
export const FLT_MAX = 3.4028234663852886e38;

export interface QuantileSource {
  quantile(p: number): number;
  /** Fraction of values <= v (optional: used to report what a threshold drops on the measured distribution). */
  cdf?(v: number): number;
}

/** The `budget` method's allocation and, per layer, the weight scale c_i of each gate channel. */
export interface BudgetPlan {
  readonly allocation: BudgetAllocation;
  readonly gateScale: readonly ArrayLike<number>[];
}

/** Per-channel gate histograms: the distribution of the scores |g_i| * scale_i for any per-channel scale. */
export interface ChannelScoreSource {
  mixtureQuantile(scale: ArrayLike<number>, p: number): number;
  mixtureCdf(scale: ArrayLike<number>, t: number): number;
}

export interface ThresholdLayerProfile {
  readonly upMeanAbs: ArrayLike<number>;
  readonly upRms: ArrayLike<number>;
  readonly gateAbs: QuantileSource;
  /** Per-channel |g_i| histograms (the `budget` method's weight-aware scores need them). */
  readonly gateChannels?: ChannelScoreSource;
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
  /** Target fraction of dropped elements per thresholded tensor, in [0, 1) (uniform methods). */
  readonly sparsity: number;
  /**
   * The `budget` method: the allocated target sparsity of every layer and site, and per
   * layer the weight scale c_i of each gate channel (the norm of W_down's column i): the
   * gate scores are |g_i| * m_i * c_i, so tau_i = t / (m_i c_i).
   */
  readonly budgetPlan?: BudgetPlan;
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
  /** Uniform methods: the target; `budget`: the mean of the allocated per-site targets. */
  readonly sparsity: number;
  readonly layers: readonly LayerThresholds[];
  /** The `budget` method's allocation (recorded in the file's chess.budget.* keys). */
  readonly allocation?: BudgetAllocation;
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
  if (layout.allocation === 'budget') return budgetThresholds(profile, options);
  if (options.budgetPlan) {
    throw new UsageError('CHESS_BUDGET_METHOD', `a budget allocation applies only to a budget method, not to '${method}'`, { method });
  }
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

/**
 * The `budget` method's thresholds: per layer and site the quantile at its allocated level;
 * the gate per channel, weight-aware: t = the level-quantile of the scores |g_i| m_i c_i
 * over the layer's channels, tau_i = t / (m_i c_i) (FLT_MAX where m_i c_i = 0).
 */
function budgetThresholds(profile: ThresholdProfile, options: ThresholdOptions): Thresholds {
  const { method } = options;
  const layout = methodLayout(method);
  const statistic = options.statistic ?? 'rms';
  if (!options.budgetPlan) {
    throw new UsageError('CHESS_BUDGET_REQUIRED', `method '${method}' allocates a byte budget: give one (--budget, a fraction of the dense bytes per token in (0, 1])`, { method });
  }
  const { allocation, gateScale } = options.budgetPlan;
  const nFF = profile.model.nFF;
  if (allocation.sparsity.length !== profile.layers.length || gateScale.length !== profile.layers.length) {
    throw new ChessError('CHESS_PROFILE_INVALID', `the budget allocation covers ${allocation.sparsity.length} layers and ${gateScale.length} gate scales, the profile ${profile.layers.length}`, {
      layers: profile.layers.length,
    });
  }
  let sum = 0;
  let count = 0;
  const level = (layer: number, site: string): number => {
    const s = allocatedSparsity(allocation, layer, site);
    sum += s;
    count++;
    return s;
  };
  const layers = profile.layers.map((lp, layer): LayerThresholds => {
    let gate: Float32Array | undefined;
    if (layout.gate === 'channel') {
      const m = statistic === 'rms' ? lp.upRms : lp.upMeanAbs;
      const c = gateScale[layer]!;
      if (m.length !== nFF || c.length !== nFF) throw new ChessError('CHESS_PROFILE_INVALID', `profile layer ${layer}: ${m.length} statistic values and ${c.length} gate scales, expected n_ff = ${nFF}`, { layer });
      if (!lp.gateChannels) throw new ChessError('CHESS_PROFILE_INVALID', `profile layer ${layer}: no per-channel gate histograms (the budget method's gate scores need them)`, { layer });
      const w = Float64Array.from({ length: nFF }, (_, i) => m[i]! * c[i]!);
      const s = level(layer, GATE_ACT_SITE);
      const t = s === 0 ? 0 : lp.gateChannels.mixtureQuantile(w, s);
      gate = new Float32Array(nFF);
      for (let i = 0; i < nFF; i++) gate[i] = t === 0 ? 0 : w[i]! > 0 ? Math.min(t / w[i]!, FLT_MAX) : FLT_MAX;
    } else if (layout.gate === 'layer') {
      const s = level(layer, GATE_ACT_SITE);
      gate = new Float32Array(nFF).fill(s === 0 ? 0 : Math.min(lp.gateAbs.quantile(s), FLT_MAX));
    }
    const inputs: Partial<Record<Projection, number>> = {};
    for (const proj of PROJECTIONS) {
      if (!layout.inputs.includes(proj)) continue;
      const s = level(layer, inputSite(proj));
      inputs[proj] = Math.fround(s === 0 ? 0 : lp.inputs[proj].quantile(s));
    }
    return { layer, ...(gate && { gate }), inputs };
  });
  return { method, statistic: layout.gate === 'channel' ? statistic : 'none', sparsity: count > 0 ? sum / count : 0, layers, allocation };
}
