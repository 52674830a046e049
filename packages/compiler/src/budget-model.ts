/**
 * The `budget` method's inputs to the allocation (@chess/pass-chess allocateBudget,
 * docs/budget.md), from the module and the calibration profile:
 *
 *  - bytes: what a decoded token reads from each site's weights at each level, by
 *    the contract's byte model (docs/gguf-sparse.md §7): a column-block projection
 *    by `columnBlockReadBytes` of @chess/contract; under the gate threshold, W_up's
 *    rows of the surviving channels (1 - s) and W_down's column blocks; a projection
 *    kept in rows (the layout cannot hold it) is read whole. Everything else (the
 *    embedding row, or the whole tied output head; norms; dense projections) is fixed.
 *  - cost: the relative squared error the site's dropped elements put on the output
 *    of the projection they feed, from the calibration histograms: for a projection
 *    input with a tensor-wise threshold, E[x^2; |x| <= tau] / E[x^2] (W's columns
 *    taken as of equal norm: the profile holds no per-channel input statistics); for
 *    the gate, weight-aware (WINA-style): channel i feeds W_down's column i, so its
 *    dropped energy is E[g_i^2; dropped] m_i^2 c_i^2 (m_i = rms of u_i, c_i = |W_down
 *    column i|), over the same sum without the condition; the channels drop in the
 *    order of the scores |g_i| m_i c_i, which is what the thresholds t / (m_i c_i) do.
 */
import { GATE_ACT_SITE, columnBlockReadBytes, contractNames, inputSite, thresholdedSites } from '@chess/contract';
import { ChessError } from '@chess/core';
import { dequantize, ggmlTypeFromName } from '@chess/gguf';
import { type Module, type Weight, weightBytes } from '@chess/ir';
import { type BudgetProblem, type BudgetSite, type Method, type Placement, type Projection, BUDGET_LEVELS, methodLayout } from '@chess/pass-chess';
import { weightByteSize } from './weight-bytes.ts';

/** A histogram of magnitudes as @chess/calibrate's Histogram holds one. */
export interface MagnitudeHistogram {
  readonly counts: ArrayLike<number>;
  readonly zeros: number;
  readonly underflow: number;
  readonly overflow: number;
  readonly max: number;
  readonly spec: { readonly subBits: number; readonly minExp: number; readonly maxExp: number };
  edge(i: number): number;
}

/** Per-channel gate histograms as @chess/calibrate's ChannelHistograms holds them (slot 0 zeros, 1 underflow, 2 overflow, 3.. bins). */
export interface ChannelMagnitudes {
  readonly channels: number;
  readonly slots: number;
  readonly counts: ArrayLike<number>;
  readonly max: ArrayLike<number>;
  readonly spec: { readonly subBits: number; readonly minExp: number; readonly maxExp: number };
}

export interface BudgetLayerProfile {
  readonly upRms: ArrayLike<number>;
  readonly upMeanAbs: ArrayLike<number>;
  readonly gateChannels?: ChannelMagnitudes;
  readonly inputs: Readonly<Record<Projection, MagnitudeHistogram>>;
}

export interface BudgetProfile {
  readonly layers: readonly BudgetLayerProfile[];
}

/** The parts of the module's byte model the allocation needs. */
export interface BudgetBytes {
  readonly denseBytes: number;
  readonly fixedBytes: number;
  /** Per layer, per thresholded site (in `thresholdedSites` order): bytes at each level. */
  readonly sites: readonly { readonly layer: number; readonly site: string; readonly bytes: Float64Array }[];
}

const binEdge = (spec: MagnitudeHistogram['spec'], i: number): number => {
  const s = 2 ** spec.subBits;
  return 2 ** (spec.minExp + Math.floor(i / s)) * (1 + (i % s) / s);
};

/** Relative dropped energy of a magnitude histogram at each level: the lowest `level` of the values dropped. */
export function inputCostCurve(h: MagnitudeHistogram, levels: readonly number[]): Float64Array {
  // items in increasing magnitude: [count, energy per value]
  const items: [number, number][] = [[h.zeros, 0]];
  const lo = 2 ** h.spec.minExp;
  if (h.underflow > 0) items.push([h.underflow, (lo * lo) / 3]);
  for (let i = 0; i < h.counts.length; i++) {
    const c = h.counts[i]!;
    if (c === 0) continue;
    const mid = 0.5 * (h.edge(i) + h.edge(i + 1));
    items.push([c, mid * mid]);
  }
  if (h.overflow > 0) items.push([h.overflow, h.max * h.max]);
  return dropCurve(items, levels);
}

/** Cost at each level from items sorted by magnitude: the energy of the lowest level-fraction of the count, over the total. */
function dropCurve(items: readonly (readonly [number, number])[], levels: readonly number[]): Float64Array {
  let total = 0;
  let energy = 0;
  for (const [c, e] of items) (total += c), (energy += c * e);
  const out = new Float64Array(levels.length);
  if (total === 0 || energy === 0) return out;
  let k = 0;
  let cum = 0;
  let cumE = 0;
  for (let j = 0; j < levels.length; j++) {
    const rank = levels[j]! * total;
    while (k < items.length && cum + items[k]![0] <= rank) (cum += items[k]![0]), (cumE += items[k]![0] * items[k]![1]), k++;
    const partial = k < items.length ? (rank - cum) * items[k]![1] : 0;
    out[j] = Math.min(1, (cumE + partial) / energy);
  }
  return out;
}

/**
 * Relative dropped energy of the gate at each level with weight-aware scores |g_i| w_i
 * (w_i = m_i c_i): the channels' histogram bins sorted by score, the lowest level-fraction
 * of all (channel, token) values dropped, energy g^2 w_i^2.
 */
export function gateCostCurve(g: ChannelMagnitudes, w: ArrayLike<number>, levels: readonly number[]): Float64Array {
  const bins = g.slots - 3;
  const mid = new Float64Array(bins);
  for (let k = 0; k < bins; k++) mid[k] = 0.5 * (binEdge(g.spec, k) + binEdge(g.spec, k + 1));
  const lo = 2 ** g.spec.minExp;
  const score: number[] = [];
  const count: number[] = [];
  let zeroCount = 0;
  for (let i = 0; i < g.channels; i++) {
    const o = i * g.slots;
    const wi = Math.max(0, w[i]!);
    zeroCount += g.counts[o]!;
    const add = (n: number, v: number) => {
      if (n === 0) return;
      if (wi === 0) zeroCount += n;
      else score.push(v * wi), count.push(n);
    };
    add(g.counts[o + 1]!, lo / Math.SQRT2);
    for (let k = 0; k < bins; k++) add(g.counts[o + 3 + k]!, mid[k]!);
    add(g.counts[o + 2]!, g.max[i]!);
  }
  const order = Array.from(score.keys()).sort((a, b) => score[a]! - score[b]! || a - b);
  const items: [number, number][] = [[zeroCount, 0], ...order.map((j): [number, number] => [count[j]!, score[j]! * score[j]!])];
  return dropCurve(items, levels);
}

/** |W_down column i| of every layer (the weight-aware gate scale c_i), from the module's dense W_down. */
export async function downColumnNorms(module: Module, nLayer: number): Promise<Float64Array[]> {
  const out: Float64Array[] = [];
  for (let il = 0; il < nLayer; il++) {
    const w = module.weight(contractNames.weight(il, 'ffn_down'));
    if (!w) throw new ChessError('CHESS_NO_GATED_FFN', `layer ${il}: no @${contractNames.weight(il, 'ffn_down')} for the budget method's gate scores`, { layer: il });
    const [nOut, nIn] = w.shape as [number, number];
    const type = ggmlTypeFromName(w.dtype);
    if (type === undefined) throw new ChessError('CHESS_UNSUPPORTED_WEIGHT', `@${w.name} has dtype ${w.dtype}, which has no ggml type`, { dtype: w.dtype });
    const values = dequantize(type, await weightBytes(module, w), nOut * nIn);
    const sq = new Float64Array(nIn);
    for (let r = 0; r < nOut; r++) {
      const row = r * nIn;
      for (let i = 0; i < nIn; i++) sq[i]! += values[row + i]! ** 2;
    }
    out.push(sq.map(Math.sqrt));
  }
  return out;
}

/**
 * Bytes a decoded token reads, per site and level, and the rest (fixed), for `method` on
 * the module as imported (dense), with each input-sparse projection where `placements` put it.
 */
export function budgetBytes(module: Module, method: Method, placements: readonly Placement[], levels: readonly number[] = BUDGET_LEVELS): BudgetBytes {
  const layout = methodLayout(method);
  const tied = !module.weights.has('output.weight');
  const size = (w: Weight) => weightByteSize(w.dtype, w.shape);
  let denseBytes = 0;
  for (const w of module.weights.values()) denseBytes += w.name === 'token_embd.weight' && !tied ? size(w) / (w.shape[0] ?? 1) : size(w);
  const placed = new Map(placements.map((p) => [p.weight, p]));
  const nLayer = Number(module.hparams.get('n_layer'));
  const variable = new Set<string>();
  /** Bytes of a projection read through its input's sparsity s (column blocks), or whole (rows). */
  const inputRead = (il: number, proj: Projection, s: number): number => {
    const w = module.weight(contractNames.weight(il, proj))!;
    variable.add(w.name);
    const [nOut, nIn] = w.shape as [number, number];
    if (placed.get(w.name)?.layout !== 'column-blocks') return size(w);
    return columnBlockReadBytes(w.dtype, nIn, nOut, s) ?? size(w);
  };
  const sites: { layer: number; site: string; bytes: Float64Array }[] = [];
  for (let il = 0; il < nLayer; il++) {
    for (const site of thresholdedSites(method)) {
      const bytes = new Float64Array(levels.length);
      for (const [j, s] of levels.entries()) {
        if (site === GATE_ACT_SITE) {
          if (layout.gate !== 'channel' && layout.gate !== 'layer') continue;
          const up = module.weight(contractNames.weight(il, 'ffn_up'))!;
          variable.add(up.name);
          bytes[j] = size(up) * (1 - s) + inputRead(il, 'ffn_down', s);
        } else {
          const proj = layout.inputs.find((p) => inputSite(p) === site)!;
          bytes[j] = inputRead(il, proj, s);
        }
      }
      sites.push({ layer: il, site, bytes });
    }
  }
  let fixedBytes = denseBytes;
  for (const name of variable) fixedBytes -= size(module.weight(name)!);
  return { denseBytes, fixedBytes, sites };
}

/** The allocation problem: the byte model's curves and the profile's cost curves. */
export function budgetProblem(
  bytes: BudgetBytes,
  profile: BudgetProfile,
  method: Method,
  gateScale: readonly ArrayLike<number>[],
  budget: number,
  statistic: 'rms' | 'mean-abs' = 'rms',
  levels: readonly number[] = BUDGET_LEVELS,
): BudgetProblem {
  const layout = methodLayout(method);
  const inputCurves = new Map<MagnitudeHistogram, Float64Array>(); // q, k, v share one histogram
  const sites: BudgetSite[] = bytes.sites.map(({ layer, site, bytes: b }) => {
    const lp = profile.layers[layer]!;
    let cost: Float64Array;
    if (site === GATE_ACT_SITE) {
      if (!lp.gateChannels) throw new ChessError('CHESS_PROFILE_INVALID', `profile layer ${layer}: no per-channel gate histograms (the budget method's gate scores need them)`, { layer });
      const m = statistic === 'rms' ? lp.upRms : lp.upMeanAbs;
      const c = gateScale[layer]!;
      cost = gateCostCurve(lp.gateChannels, Float64Array.from({ length: m.length }, (_, i) => m[i]! * c[i]!), levels);
    } else {
      const proj = layout.inputs.find((p) => inputSite(p) === site)!;
      const h = lp.inputs[proj];
      cost = inputCurves.get(h) ?? inputCostCurve(h, levels);
      inputCurves.set(h, cost);
    }
    return { layer, site, bytes: b, cost };
  });
  return { budget, denseBytes: bytes.denseBytes, fixedBytes: bytes.fixedBytes, levels, sites };
}

/**
 * The profile as the budget method reads it: @chess/calibrate's histograms (counts and
 * bins), not only their quantiles. CHESS_PROFILE_INVALID if a calibrator gave less.
 */
export function asBudgetProfile(profile: { readonly layers: readonly unknown[] }): BudgetProfile {
  profile.layers.forEach((l, layer) => {
    const lp = l as Partial<BudgetLayerProfile>;
    const histogram = (h: unknown) => h !== null && typeof h === 'object' && 'counts' in h && 'edge' in h && 'spec' in h;
    const channels = lp.gateChannels as unknown;
    if (!(channels !== null && typeof channels === 'object' && 'slots' in channels && 'counts' in channels) || !lp.inputs || !Object.values(lp.inputs).every(histogram)) {
      throw new ChessError('CHESS_PROFILE_INVALID', `profile layer ${layer}: the budget method needs the calibration histograms (per-channel gate, projection inputs), not only their quantiles`, { layer });
    }
  });
  return profile as unknown as BudgetProfile;
}
