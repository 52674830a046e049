/**
 * The budget allocation on hand-made curves: it fits the budget (bytes recomputed
 * here from the curves and the chosen levels), it is optimal where the answer is
 * known independently (an exhaustive search over every combination of levels of
 * a small problem), deterministic, and refuses what it cannot do.
 */
import { mulberry32 } from '@chess/core';
import { describe, expect, it } from 'vitest';
import { type BudgetProblem, type BudgetSite, allocateBudget, allocatedSparsity, minimumBudget } from './budget.ts';

const LEVELS = [0, 0.25, 0.5, 0.75];

/** A random problem: per site a linear byte curve and a convex cost curve with a random weight. */
function randomProblem(seed: number, nLayer: number, siteNames: string[], budget: number): BudgetProblem {
  const r = mulberry32(seed);
  const sites: BudgetSite[] = [];
  let variable = 0;
  for (let layer = 0; layer < nLayer; layer++) {
    for (const site of siteNames) {
      const size = 100 + Math.floor(r() * 900);
      const weight = 0.1 + r();
      const power = 1.5 + r() * 2;
      variable += size;
      sites.push({ layer, site, bytes: LEVELS.map((s) => size * (1 - s)), cost: LEVELS.map((s) => weight * s ** power) });
    }
  }
  const fixedBytes = 1000;
  return { budget, denseBytes: fixedBytes + variable, fixedBytes, levels: LEVELS, sites };
}

/** Bytes and cost of an allocation, recomputed from the problem's curves (the level index of each chosen sparsity). */
function evaluate(p: BudgetProblem, sparsity: readonly (readonly number[])[], sites: readonly string[]): { bytes: number; cost: number } {
  let bytes = p.fixedBytes;
  let cost = 0;
  for (const s of p.sites) {
    const j = LEVELS.indexOf(sparsity[s.layer]![sites.indexOf(s.site)]!);
    expect(j).toBeGreaterThanOrEqual(0);
    bytes += s.bytes[j]!;
    cost += s.cost[j]!;
  }
  return { bytes, cost };
}

describe('allocateBudget', () => {
  it('fits the budget, records the fraction it reaches, and is exactly reproducible', () => {
    for (const budget of [0.95, 0.8, 0.6, 0.45]) {
      const p = randomProblem(7, 6, ['ffn_gate_act', 'attn_q_in', 'attn_output_in'], budget);
      const a = allocateBudget(p);
      const { bytes, cost } = evaluate(p, a.sparsity, a.sites);
      expect(bytes / p.denseBytes).toBeLessThanOrEqual(budget);
      expect(a.estimate).toBeCloseTo(bytes / p.denseBytes, 12);
      expect(a.cost).toBeCloseTo(cost, 12);
      expect(a.sites).toEqual(['ffn_gate_act', 'attn_q_in', 'attn_output_in']);
      expect(a.sparsity).toHaveLength(6);
      expect(JSON.stringify(allocateBudget(randomProblem(7, 6, ['ffn_gate_act', 'attn_q_in', 'attn_output_in'], budget)))).toBe(JSON.stringify(a));
    }
  });

  it('a budget of 1 keeps everything dense; tighter budgets never cost less', () => {
    const dense = allocateBudget(randomProblem(3, 4, ['a', 'b'], 1));
    expect(dense.sparsity.flat().every((s) => s === 0)).toBe(true);
    expect(dense.cost).toBe(0);
    let last = 0;
    for (const budget of [0.9, 0.8, 0.7, 0.6]) {
      const a = allocateBudget(randomProblem(3, 4, ['a', 'b'], budget));
      expect(a.cost).toBeGreaterThanOrEqual(last);
      last = a.cost;
    }
  });

  it('on convex curves it is within one step of the exhaustive optimum (every combination of levels)', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const p = randomProblem(seed, 2, ['a', 'b', 'c'], 0.7);
      const a = allocateBudget(p);
      const got = evaluate(p, a.sparsity, a.sites).cost;
      // exhaustive: 4^6 combinations
      let best = Number.POSITIVE_INFINITY;
      const n = p.sites.length;
      for (let code = 0; code < LEVELS.length ** n; code++) {
        let bytes = p.fixedBytes;
        let cost = 0;
        for (let i = 0, c = code; i < n; i++, c = Math.floor(c / LEVELS.length)) {
          bytes += p.sites[i]!.bytes[c % LEVELS.length]!;
          cost += p.sites[i]!.cost[c % LEVELS.length]!;
        }
        if (bytes <= 0.7 * p.denseBytes) best = Math.min(best, cost);
      }
      // the greedy may overshoot by its last step; it is never worse than the optimum plus that step's cost
      const largestStep = Math.max(...p.sites.flatMap((s) => LEVELS.slice(1).map((_, j) => s.cost[j + 1]! - s.cost[j]!)));
      expect(got).toBeGreaterThanOrEqual(best - 1e-12);
      expect(got).toBeLessThanOrEqual(best + largestStep);
    }
  });

  it('spends sparsity where it is cheap: of two equal sites the one whose cost is 10x lower goes further', () => {
    const sites: BudgetSite[] = [
      { layer: 0, site: 'x', bytes: LEVELS.map((s) => 1000 * (1 - s)), cost: LEVELS.map((s) => 10 * s * s) },
      { layer: 1, site: 'x', bytes: LEVELS.map((s) => 1000 * (1 - s)), cost: LEVELS.map((s) => s * s) },
    ];
    const a = allocateBudget({ budget: 0.75, denseBytes: 2000, fixedBytes: 0, levels: LEVELS, sites });
    expect(allocatedSparsity(a, 1, 'x')).toBeGreaterThan(allocatedSparsity(a, 0, 'x'));
    expect(allocatedSparsity(a, 0, 'y')).toBe(0);
  });

  it('refuses a budget outside (0, 1] and one below the reachable minimum, naming it', () => {
    const p = randomProblem(9, 2, ['a'], 0.5);
    for (const budget of [0, -0.1, 1.01, Number.NaN]) expect(() => allocateBudget({ ...p, budget })).toThrow(/CHESS_BAD_BUDGET|\(0, 1\]/);
    const minimum = minimumBudget(p);
    expect(minimum).toBeCloseTo((p.fixedBytes + p.sites.reduce((a, s) => a + s.bytes[LEVELS.length - 1]!, 0)) / p.denseBytes, 12);
    expect(() => allocateBudget({ ...p, budget: minimum * 0.99 })).toThrow(/below what this method can reach/);
    expect(() => allocateBudget({ ...p, budget: minimum })).not.toThrow();
  });
});
