import { describe, expect, it } from 'vitest';
import { ChannelHistograms, DEFAULT_HISTOGRAM_SPEC, Histogram } from './histogram.ts';
import { Xoshiro128 } from '@chess/models';

/** The exact sample quantile the histogram approximates: the smallest v with >= p*n values <= v. */
function exactQuantile(sorted: Float64Array, p: number): number {
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
}

function lognormal(rng: Xoshiro128, n: number, mu: number, sigma: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = Math.max(rng.nextFloat(), 1e-12);
    const u2 = rng.nextFloat();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = Math.exp(mu + sigma * r * Math.cos(2 * Math.PI * u2));
    if (i + 1 < n) out[i + 1] = Math.exp(mu + sigma * r * Math.sin(2 * Math.PI * u2));
  }
  return out;
}

const PS = [0, 1e-4, 0.01, 0.1, 0.25, 0.3, 0.5, 0.7, 0.9, 0.99, 0.9999, 1];

describe('Histogram', () => {
  it('quantiles agree with exact sorted-array quantiles within one bin (relative 2^-subBits)', () => {
    const rng = new Xoshiro128(12345);
    for (const [mu, sigma] of [
      [0, 1],
      [-6, 3],
      [2, 0.2],
    ] as const) {
      const values = lognormal(rng, 200_001, mu, sigma).map((v) => Math.fround(v));
      const h = new Histogram();
      h.addAll(values);
      expect(h.count).toBe(values.length);
      const sorted = values.slice().sort();
      for (const p of PS) {
        const exact = exactQuantile(sorted, p);
        const approx = h.quantile(p);
        expect(Math.abs(approx - exact)).toBeLessThanOrEqual(exact * h.relativeBinWidth * (1 + 1e-9));
      }
    }
    expect(new Histogram().relativeBinWidth).toBe(2 ** -DEFAULT_HISTOGRAM_SPEC.subBits);
  });

  it('honours exact zeros, underflow and overflow', () => {
    const h = new Histogram({ subBits: 4, minExp: -4, maxExp: 4 });
    const values = [0, 0, 0, 0, 1e-3, 2e-3, 0.5, 1, 2, 3, 100, 200];
    for (const v of values) h.add(-v); // magnitudes: the sign is dropped
    expect([h.zeros, h.underflow, h.overflow, h.count]).toEqual([4, 2, 2, 12]);
    expect(h.quantile(0.25)).toBe(0); // 3 of 12 <= 0
    expect(h.quantile(4 / 12)).toBe(0);
    expect(h.quantile(0.4)).toBeGreaterThan(0);
    expect(h.quantile(0.4)).toBeLessThanOrEqual(2 ** -4);
    expect(h.quantile(1)).toBeCloseTo(200, 4);
    expect(h.quantile(11 / 12)).toBeGreaterThanOrEqual(16);
    expect(h.min).toBeCloseTo(1e-3, 9);
    expect(h.max).toBe(200);
  });

  it('cdf inverts quantile', () => {
    const rng = new Xoshiro128(7);
    const h = new Histogram();
    h.addAll(lognormal(rng, 50_000, -1, 2));
    for (const p of [0.05, 0.2, 0.5, 0.8, 0.95]) expect(h.cdf(h.quantile(p))).toBeCloseTo(p, 3);
  });

  it('merging equals adding everything to one histogram', () => {
    const rng = new Xoshiro128(99);
    const a = lognormal(rng, 10_000, 0, 2);
    const b = lognormal(rng, 7_000, -3, 1);
    const ha = new Histogram();
    const hb = new Histogram();
    const all = new Histogram();
    ha.addAll(a);
    hb.addAll(b);
    all.addAll(a);
    all.addAll(b);
    ha.merge(hb);
    expect(ha.counts).toEqual(all.counts);
    expect([ha.min, ha.max, ha.count]).toEqual([all.min, all.max, all.count]);
    expect(() => ha.merge(new Histogram({ subBits: 4, minExp: -34, maxExp: 14 }))).toThrow(/different specs/);
  });

  it('bins follow the float32 bit layout (edges are exact)', () => {
    const h = new Histogram();
    for (const i of [0, 1, 255, 256, 5000, 12287]) {
      expect(h.binOf(h.edge(i))).toBe(i);
      expect(h.binOf(Math.fround(h.edge(i + 1) * (1 - 2 ** -22)))).toBe(i);
    }
    expect(h.binOf(0)).toBe(-1);
    expect(h.binOf(2 ** -35)).toBe(-2);
    expect(h.binOf(2 ** 14)).toBe(-3);
  });

  it('rejects bad specs, NaN, infinities and bad p', () => {
    expect(() => new Histogram({ subBits: 8, minExp: 3, maxExp: 3 })).toThrow(RangeError);
    const h = new Histogram();
    expect(() => h.add(Number.NaN)).toThrow(/non-finite/);
    expect(() => h.add(Number.POSITIVE_INFINITY)).toThrow(/non-finite/);
    expect(() => h.quantile(0.5)).toThrow(/empty/);
    h.add(1);
    expect(() => h.quantile(1.5)).toThrow(/\[0, 1\]/);
  });
});

describe('ChannelHistograms: CHESS score thresholds from per-channel histograms', () => {
  const SPEC = { subBits: 3, minExp: -16, maxExp: 6 };

  it('the mixture quantile matches the exact quantile of the scores |v_i| * m_i (sorted array), for any scale', () => {
    const rng = new Xoshiro128(7);
    const nCh = 64;
    const perChannel = 2000;
    const h = new ChannelHistograms(SPEC, nCh);
    const values: Float64Array[] = [];
    for (let i = 0; i < nCh; i++) {
      // channels of very different scales; 3 % exact zeros
      const v = lognormal(rng, perChannel, -4 + (8 * i) / nCh, 1 + (i % 3) * 0.5).map((x) => (rng.nextFloat() < 0.03 ? 0 : Math.fround(x)));
      values.push(v);
      for (const x of v) h.add(i, x);
    }
    for (const scale of [Float64Array.from({ length: nCh }, (_, i) => 1 + i), Float64Array.from({ length: nCh }, () => 0.1 + rng.nextFloat()), Float64Array.from({ length: nCh }, (_, i) => (i === 5 ? 0 : 1))]) {
      const scores = new Float64Array(nCh * perChannel);
      for (let i = 0; i < nCh; i++) for (let k = 0; k < perChannel; k++) scores[i * perChannel + k] = values[i]![k]! * scale[i]!;
      scores.sort();
      for (const p of [0.1, 0.3, 0.5, 0.7, 0.9]) {
        const t = h.mixtureQuantile(scale, p);
        // in probability: the fraction of exact scores <= t is p within 0.5 point
        let below = 0;
        while (below < scores.length && scores[below]! <= t) below++;
        expect(Math.abs(below / scores.length - p), `p ${p}`).toBeLessThan(0.005);
        expect(Math.abs(h.mixtureCdf(scale, t) - p)).toBeLessThan(1e-6);
        // in value: within one coarse bin (12.5 %) of the exact sample quantile
        const exact = scores[Math.ceil(p * scores.length) - 1]!;
        expect(Math.abs(t - exact) / exact, `p ${p}`).toBeLessThan(2 ** -SPEC.subBits);
      }
    }
  });

  it('channel i is an ordinary Histogram; zeros, min and max are per channel', () => {
    const h = new ChannelHistograms(SPEC, 3);
    for (const v of [0, 0, 0.5, 1, 2]) h.add(1, v);
    h.add(2, 100); // overflow
    expect(h.count(0)).toBe(0);
    expect(h.count(1)).toBe(5);
    const c = h.channel(1);
    expect([c.zeros, c.min, c.max, c.count]).toEqual([2, 0.5, 2, 5]);
    expect(h.countAtMost(1, 0)).toBe(2);
    expect(h.countAtMost(1, 2)).toBe(5);
    expect(h.countAtMost(2, 99)).toBe(0);
    expect(h.countAtMost(2, 100)).toBe(1);
    // a channel with scale 0 scores 0: always dropped
    expect(h.mixtureCdf([1, 0, 1], 0)).toBeCloseTo(5 / 6, 12);
    expect(h.mixtureQuantile([1, 1, 1], 0.2)).toBe(0); // 2 of 6 values are exact zeros
    expect(() => h.add(0, Number.NaN)).toThrow(/non-finite/);
    expect(() => h.mixtureQuantile([1, 1, 1], 2)).toThrow(/\[0, 1\]/);
  });
});
