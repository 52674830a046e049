/**
 * The budget method's cost curves against the exact figures of the raw samples
 * the histograms were filled with (sorted here, no histogram involved): the
 * relative energy of the lowest s-fraction of an input's magnitudes, and of the
 * gate's values dropped in the order of the weight-aware scores |g_i| w_i, with
 * energy g^2 w_i^2. The histograms bin values (fine: 1/256 relative width;
 * the per-channel gate ones coarse: 1/8), so the curves agree to that.
 */
import { describe, expect, it } from 'vitest';
import { ChannelHistograms, Histogram } from '@chess/calibrate';
import { mulberry32 } from '@chess/core';
import { BUDGET_LEVELS } from '@chess/pass-chess';
import { gateCostCurve, inputCostCurve } from './budget-model.ts';

const r = mulberry32(17);
const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());

/** Exact: sort the (score, energy) pairs, the energy of the lowest level-fraction over the total. */
function exactCurve(pairs: [number, number][], levels: readonly number[]): number[] {
  const sorted = [...pairs].sort((a, b) => a[0] - b[0]);
  const total = sorted.reduce((a, p) => a + p[1], 0);
  return levels.map((s) => {
    const k = Math.floor(s * sorted.length);
    let e = 0;
    for (let i = 0; i < k; i++) e += sorted[i]![1];
    return e / total;
  });
}

describe('budget cost curves', () => {
  it('input: the relative energy of the smallest magnitudes, as the raw samples give it', () => {
    const h = new Histogram();
    const values: number[] = [];
    for (let i = 0; i < 20000; i++) {
      const v = Math.fround(gauss() * (r() < 0.05 ? 6 : 1));
      values.push(v);
      h.add(v);
    }
    const curve = inputCostCurve(h, BUDGET_LEVELS);
    const exact = exactCurve(values.map((v) => [Math.abs(v), v * v]), BUDGET_LEVELS);
    expect(curve[0]).toBe(0);
    for (let j = 1; j < BUDGET_LEVELS.length; j++) {
      expect(curve[j]!).toBeGreaterThanOrEqual(curve[j - 1]!);
      expect(Math.abs(curve[j]! - exact[j]!)).toBeLessThan(0.01 * exact[j]! + 2e-4);
    }
  });

  it('gate: values dropped by weight-aware score, energy weighted by w_i^2, as the raw samples give it', () => {
    const channels = 64;
    const g = new ChannelHistograms({ subBits: 3, minExp: -16, maxExp: 6 }, channels);
    const w = Array.from({ length: channels }, (_, i) => (i % 5 === 0 ? 0.2 : 1 + (i % 3)));
    const pairs: [number, number][] = [];
    for (let i = 0; i < channels; i++) {
      const scale = 0.3 + (i % 7) * 0.2;
      for (let n = 0; n < 400; n++) {
        const v = Math.fround(scale * gauss());
        g.add(i, v);
        pairs.push([Math.abs(v) * w[i]!, v * v * w[i]! * w[i]!]);
      }
    }
    const curve = gateCostCurve(g, w, BUDGET_LEVELS);
    const exact = exactCurve(pairs, BUDGET_LEVELS);
    expect(curve[0]).toBe(0);
    for (let j = 1; j < BUDGET_LEVELS.length; j++) {
      expect(curve[j]!).toBeGreaterThanOrEqual(curve[j - 1]!);
      expect(Math.abs(curve[j]! - exact[j]!)).toBeLessThan(0.1 * exact[j]! + 2e-3);
    }
    // weight-awareness matters: the same histograms with w = 1 give another curve
    const flat = gateCostCurve(g, new Array(channels).fill(1), BUDGET_LEVELS);
    expect(Math.max(...flat.map((v, j) => Math.abs(v - curve[j]!)))).toBeGreaterThan(0.01);
  });
});
