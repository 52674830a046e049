/**
 * Confidence intervals by seeded bootstrap: paired over documents for task
 * differences, over windows (clusters of correlated positions) for the
 * divergence figures. Percentile intervals, 95 %, a fixed PRNG so that a
 * report is reproducible to the digit.
 */
import { mulberry32 } from '@chess/core';

export const BOOTSTRAP_RESAMPLES = 2000;
export const BOOTSTRAP_SEED = 1234;

/** A small seeded PRNG (uniform in [0, 1)): @chess/core's mulberry32. */
export const seededRandom: (seed: number) => () => number = mulberry32;

/** Quantile with linear interpolation between order statistics (numpy's default 'linear'). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

export interface Interval {
  value: number;
  low: number;
  high: number;
}

/**
 * Bootstrap over clusters: cluster c contributes sums num[c] and den[c]; a
 * resample draws clusters with replacement and evaluates f(sum num / sum den).
 * With one unit per cluster and den = 1 this is the ordinary bootstrap of a mean.
 */
export function clusterBootstrap(
  num: readonly number[],
  den: readonly number[],
  f: (ratio: number) => number = (x) => x,
  options: { resamples?: number; seed?: number } = {},
): Interval {
  const k = num.length;
  const total = (a: readonly number[]) => a.reduce((s, v) => s + v, 0);
  const value = f(total(num) / total(den));
  if (k < 2) return { value, low: Number.NaN, high: Number.NaN };
  const random = seededRandom(options.seed ?? BOOTSTRAP_SEED);
  const resamples = options.resamples ?? BOOTSTRAP_RESAMPLES;
  const stats = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let n = 0;
    let d = 0;
    for (let i = 0; i < k; i++) {
      const c = Math.floor(random() * k);
      n += num[c]!;
      d += den[c]!;
    }
    stats[r] = f(n / d);
  }
  stats.sort();
  return { value, low: quantile(stats, 0.025), high: quantile(stats, 0.975) };
}

/** Whether an interval excludes zero (a difference the data support). */
export function excludesZero(i: { low: number; high: number }): boolean {
  return i.low > 0 || i.high < 0;
}
