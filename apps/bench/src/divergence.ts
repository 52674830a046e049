import { clusterBootstrap, quantile, type Interval } from './intervals.ts';
import type { DivergencePositions } from './native-scorer.ts';
import { summarisePerplexity } from './perplexity.ts';

/**
 * Divergence of a model from its dense reference on held-out text, the measure
 * the llama.cpp community judges quantizations by: per scored position
 * KL(reference || model) of the next-token distributions, whether the most
 * likely tokens agree, and both negative log-likelihoods. Positions of one
 * window are correlated (same passage), so the intervals resample windows.
 */
export interface DivergenceSummary {
  windows: number;
  positions: number;
  /** Mean KL (nats) with its 95 % interval (bootstrap over windows). */
  meanKl: Interval;
  /** sd / sqrt(positions): the ± llama-perplexity prints (it treats positions as independent). */
  meanKlStderr: number;
  p99Kl: number;
  maxKl: number;
  /** Share of positions whose most likely token is the reference's, with its interval. */
  sameTop: Interval;
  /** PPL(model) / PPL(reference) = exp(mean NLL difference), with its interval. */
  pplRatio: Interval;
  perplexity: { value: number; stderr: number; meanNll: number };
  referencePerplexity: { value: number; stderr: number; meanNll: number };
}

export function summariseDivergence(p: DivergencePositions, options: { seed?: number; resamples?: number } = {}): DivergenceSummary {
  const n = p.kl.length;
  const windows = new Map<number, number>();
  for (const w of p.window) if (!windows.has(w)) windows.set(w, windows.size);
  const k = windows.size;
  const count = new Array<number>(k).fill(0);
  const kl = new Array<number>(k).fill(0);
  const same = new Array<number>(k).fill(0);
  const dNll = new Array<number>(k).fill(0);
  let sum = 0;
  let sum2 = 0;
  for (let i = 0; i < n; i++) {
    const c = windows.get(p.window[i]!)!;
    count[c]!++;
    kl[c]! += p.kl[i]!;
    same[c]! += p.sameTop[i]!;
    dNll[c]! += p.nllModel[i]! - p.nllReference[i]!;
    sum += p.kl[i]!;
    sum2 += p.kl[i]! ** 2;
  }
  const mean = sum / n;
  const sorted = Float64Array.from(p.kl).sort();
  const ppl = (nll: number[]) => {
    const s = summarisePerplexity(nll);
    return { value: s.perplexity, stderr: s.perplexityStderr, meanNll: s.meanNll };
  };
  return {
    windows: k,
    positions: n,
    meanKl: clusterBootstrap(kl, count, undefined, options),
    meanKlStderr: n > 1 ? Math.sqrt(Math.max(0, sum2 / n - mean * mean) / (n - 1)) : Number.NaN,
    p99Kl: quantile(sorted, 0.99),
    maxKl: sorted[n - 1]!,
    sameTop: clusterBootstrap(same, count, undefined, options),
    pplRatio: clusterBootstrap(dNll, count, Math.exp, options),
    perplexity: ppl(Array.from(p.nllModel)),
    referencePerplexity: ppl(Array.from(p.nllReference)),
  };
}
