import { describe, expect, it } from 'vitest';
import { clusterBootstrap, excludesZero, quantile, seededRandom } from './intervals.ts';

describe('intervals', () => {
  it('quantile interpolates as numpy.quantile (method linear)', () => {
    const sorted = [3.5, -1.0, 2.25, 7.0, 0.0, 4.75, 1.5].sort((a, b) => a - b);
    // numpy 2.x: np.quantile(sorted, [0, 0.025, 0.5, 0.9, 0.99, 1])
    const numpy = [-1.0, -0.85, 2.25, 5.65, 6.864999999999998, 7.0];
    [0, 0.025, 0.5, 0.9, 0.99, 1].forEach((q, i) => expect(quantile(sorted, q)).toBeCloseTo(numpy[i]!, 12));
  });

  it('bootstrap interval of a mean matches the normal approximation and is reproducible by seed', () => {
    const random = seededRandom(3);
    const values: number[] = Array.from({ length: 2000 }, () => (random() < 0.3 ? 1 : 0));
    const ones = values.map(() => 1);
    const a = clusterBootstrap(values, ones);
    const b = clusterBootstrap(values, ones);
    expect(a).toEqual(b);
    const p = values.reduce((s, v) => s + v, 0) / values.length;
    expect(a.value).toBeCloseTo(p, 12);
    // 1.96 sqrt(p (1 - p) / n): the percentile interval's half width within 10 % of it
    const half = 1.96 * Math.sqrt((p * (1 - p)) / values.length);
    expect((a.high - a.low) / 2 / half).toBeGreaterThan(0.9);
    expect((a.high - a.low) / 2 / half).toBeLessThan(1.1);
    expect(excludesZero({ low: a.low - p, high: a.high - p })).toBe(false);
    expect(excludesZero(a)).toBe(true);
    // clusters: a ratio of sums, not a mean of ratios
    expect(clusterBootstrap([2, 6], [1, 3]).value).toBeCloseTo(2, 12);
    expect(clusterBootstrap([5], [1]).low).toBeNaN();
  });
});
