/**
 * Test helpers (not exported from the package): profiles for small IR modules.
 *
 *  - `flatProfile`: a constant profile for golden IR tests (values never show
 *    in the text form, only the structure does);
 *  - `exactProfile`: the statistics of a real run of the reference interpreter
 *    on the module, with exact sample quantiles (sorted values), i.e. what a
 *    calibration of this module on these tokens must produce.
 */
import { type Module, type Node, type WeightResolver, interpret } from '@chess/ir';
import { PROJECTIONS, type Projection, parseProjectionWeight } from './methods.ts';
import type { QuantileSource, ThresholdLayerProfile, ThresholdProfile } from './thresholds.ts';

/** Exact sample quantile: the smallest v with at least p * n values <= v (0 for p = 0 is left to the caller). */
export class ExactQuantiles implements QuantileSource {
  readonly sorted: Float64Array;
  constructor(values: ArrayLike<number>) {
    this.sorted = Float64Array.from(values, Math.abs).sort();
  }
  quantile(p: number): number {
    const n = this.sorted.length;
    return this.sorted[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))]!;
  }
  /** Fraction of values <= v. */
  fractionAtMost(v: number): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.sorted[mid]! <= v) lo = mid + 1;
      else hi = mid;
    }
    return lo / this.sorted.length;
  }
}

const constant = (v: number): QuantileSource => ({ quantile: (p) => v * p });

export function flatProfile(module: Module, overrides: Partial<ThresholdProfile['model']> = {}): ThresholdProfile {
  const nLayer = module.hparams.get('n_layer') as number;
  const nFF = module.hparams.get('n_ff') as number;
  const m = Float64Array.from({ length: nFF }, (_, i) => 1 + i / nFF);
  const inputs = Object.fromEntries(PROJECTIONS.map((p) => [p, constant(1)])) as Record<Projection, QuantileSource>;
  const layer: ThresholdLayerProfile = { upMeanAbs: m, upRms: m, gateAbs: constant(1), score: { rms: constant(1), 'mean-abs': constant(1) }, inputs };
  return {
    model: { arch: module.arch, nLayer, nEmbd: module.hparams.get('n_embd') as number, nFF, file: 'fixture.gguf', ...overrides },
    calibration: { source: 'synthetic', tokens: 0, seed: 0 },
    layers: Array.from({ length: nLayer }, () => layer),
  };
}

/**
 * Run the (dense) module on `tokens` and collect, per layer: E|u_i|, sqrt(E u_i^2),
 * |g|, the scores |g_i| m_i for both statistics, and |x| at each projection input.
 */
export function exactProfile(module: Module, weights: WeightResolver, tokens: readonly number[]): ExactProfile {
  const { values } = interpret(module, { tokens, weights, keepValues: true });
  const nLayer = module.hparams.get('n_layer') as number;
  const nFF = module.hparams.get('n_ff') as number;
  const byName = new Map<string, Node>();
  for (const n of module.nodes) if (n.name) byName.set(n.name, n);
  const val = (name: string) => values!.get(byName.get(name)!)!.data;
  const layers: ExactLayerProfile[] = [];
  for (let il = 0; il < nLayer; il++) {
    const u = val(`ffn_up.${il}`);
    const g = val(`ffn_silu.${il}`);
    const t = u.length / nFF;
    const upMeanAbs = new Float64Array(nFF);
    const upRms = new Float64Array(nFF);
    for (let r = 0; r < t; r++) {
      for (let i = 0; i < nFF; i++) {
        const v = u[r * nFF + i]!;
        upMeanAbs[i]! += Math.abs(v) / t;
        upRms[i]! += (v * v) / t;
      }
    }
    for (let i = 0; i < nFF; i++) upRms[i] = Math.sqrt(upRms[i]!);
    const score = (m: Float64Array) => new ExactQuantiles(Float64Array.from(g, (v, k) => Math.abs(v) * m[k % nFF]!));
    const inputs = {} as Record<Projection, ExactQuantiles>;
    for (const node of module.nodes) {
      const w = node.op === 'linear' ? parseProjectionWeight((node.operands[1] as { name: string }).name) : undefined;
      if (w && w.layer === il) inputs[w.proj] = new ExactQuantiles(values!.get(node.operands[0] as Node)!.data);
    }
    layers.push({ upMeanAbs, upRms, gateAbs: new ExactQuantiles(g), score: { rms: score(upRms), 'mean-abs': score(upMeanAbs) }, inputs });
  }
  return {
    model: { arch: module.arch, nLayer, nEmbd: module.hparams.get('n_embd') as number, nFF },
    calibration: { source: 'interpreter', tokens: tokens.length, seed: 0 },
    layers,
  };
}

export interface ExactProfile extends ThresholdProfile {
  readonly layers: ExactLayerProfile[];
}

export interface ExactLayerProfile extends ThresholdLayerProfile {
  readonly gateAbs: ExactQuantiles;
  readonly score: Record<'rms' | 'mean-abs', ExactQuantiles>;
  readonly inputs: Record<Projection, ExactQuantiles>;
}
