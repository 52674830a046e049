/**
 * The `budget` method's allocation (docs/budget.md): given, for every layer and
 * thresholded site, the weight bytes a decoded token reads and an estimated
 * divergence cost at each of a grid of target sparsities, choose one level per
 * site so that the model reads at most `budget` x the dense model's bytes, at
 * the least total estimated cost.
 *
 * Greedy by marginal cost per byte saved: every site starts at level 0 (dense);
 * each step moves the one site whose cheapest jump to a higher level (the jump
 * with the least added cost per byte saved, over all higher levels, so that a
 * non-convex cost curve cannot stall it) is cheapest overall; ties go to the
 * lower layer, then the earlier site. It stops as soon as the bytes fit the
 * budget. No randomness: the same curves give the same allocation, bit for
 * bit. The curves come from the driver (@chess/compiler budget-model.ts): bytes
 * from the contract's byte model, costs from the calibration profile.
 */
import { ChessError, UsageError } from '@chess/core';

/** The default grid of target sparsities a site may take: 0, 0.025, ..., 0.95. */
export const BUDGET_LEVELS: readonly number[] = Array.from({ length: 39 }, (_, i) => i / 40);

/** One thresholded site of one layer: bytes read and estimated cost at each level of the grid. */
export interface BudgetSite {
  readonly layer: number;
  /** Counter site name (docs/gguf-sparse.md §5): `ffn_gate_act`, `attn_q_in`, ... */
  readonly site: string;
  /** Bytes a decoded token reads from the site's weights at each level (non-increasing). */
  readonly bytes: ArrayLike<number>;
  /** Estimated divergence added at each level (cost[0] = 0, non-decreasing). */
  readonly cost: ArrayLike<number>;
}

export interface BudgetProblem {
  /** Fraction of the dense model's bytes a decoded token may read, in (0, 1]. */
  readonly budget: number;
  /** Bytes a decoded token of the dense model reads (the tied output head included). */
  readonly denseBytes: number;
  /** Bytes read whatever the thresholds (embedding row or head, norms, thresholds, dense projections). */
  readonly fixedBytes: number;
  /** The target sparsities the sites may take, increasing, the first 0. */
  readonly levels: readonly number[];
  readonly sites: readonly BudgetSite[];
}

/** The chosen levels, as recorded in the file (`chess.budget.*`) and shown by `chess inspect`. */
export interface BudgetAllocation {
  readonly budget: number;
  /** The byte model's fraction of the dense bytes at the chosen levels (<= budget). */
  readonly estimate: number;
  /** The sites of a layer, in the order of each row of `sparsity`. */
  readonly sites: readonly string[];
  /** [layer][site] the allocated target sparsity. */
  readonly sparsity: readonly (readonly number[])[];
  /** Total estimated cost at the chosen levels. */
  readonly cost: number;
}

/** The smallest fraction of the dense bytes the problem can reach (every site at its highest level). */
export function minimumBudget(problem: Pick<BudgetProblem, 'denseBytes' | 'fixedBytes'> & { readonly sites: readonly { readonly bytes: ArrayLike<number> }[] }): number {
  let bytes = problem.fixedBytes;
  for (const s of problem.sites) bytes += s.bytes[s.bytes.length - 1]!;
  return bytes / problem.denseBytes;
}

/** Check a budget value: a number in (0, 1]. */
export function checkBudget(budget: unknown, option = 'budget'): number {
  if (typeof budget !== 'number' || !Number.isFinite(budget) || !(budget > 0 && budget <= 1)) {
    throw new UsageError('CHESS_BAD_BUDGET', `${option}: expected a fraction of the dense model's bytes per token in (0, 1], got '${String(budget)}'`, { option, value: budget });
  }
  return budget;
}

export function allocateBudget(problem: BudgetProblem): BudgetAllocation {
  const { levels, sites, denseBytes, fixedBytes } = problem;
  const budget = checkBudget(problem.budget);
  if (levels.length < 2 || levels[0] !== 0 || levels.some((l, i) => i > 0 && !(l > levels[i - 1]! && l < 1))) {
    throw new ChessError('CHESS_BUDGET_LEVELS', `budget levels must start at 0 and increase below 1, got ${levels.join(', ')}`, { levels });
  }
  for (const s of sites) {
    if (s.bytes.length !== levels.length || s.cost.length !== levels.length) {
      throw new ChessError('CHESS_BUDGET_LEVELS', `site ${s.site} of layer ${s.layer}: ${s.bytes.length} byte and ${s.cost.length} cost values for ${levels.length} levels`, { layer: s.layer, site: s.site });
    }
  }
  const minimum = minimumBudget(problem);
  if (budget < minimum) {
    throw new UsageError(
      'CHESS_BUDGET_UNREACHABLE',
      `budget ${budget} is below what this method can reach on this model: ${minimum.toFixed(4)} of the dense bytes per token with every site at sparsity ${levels[levels.length - 1]} (the tied output head and the dense tensors are read whole)`,
      { budget, minimum },
    );
  }
  const target = budget * denseBytes;
  const at = new Int32Array(sites.length);
  let bytes = fixedBytes;
  for (const s of sites) bytes += s.bytes[0]!;
  // the best jump of each site from its current level: [ratio, to]
  const best = (i: number): [number, number] => {
    const s = sites[i]!;
    const j = at[i]!;
    let ratio = Number.POSITIVE_INFINITY;
    let to = -1;
    for (let k = j + 1; k < levels.length; k++) {
      const saved = s.bytes[j]! - s.bytes[k]!;
      if (!(saved > 0)) continue;
      const r = Math.max(0, s.cost[k]! - s.cost[j]!) / saved;
      if (r < ratio) (ratio = r), (to = k);
    }
    return [ratio, to];
  };
  const jumps = sites.map((_, i) => best(i));
  while (bytes > target) {
    let pick = -1;
    for (let i = 0; i < sites.length; i++) {
      const [r, to] = jumps[i]!;
      if (to < 0) continue;
      if (pick < 0 || r < jumps[pick]![0]) pick = i; // sites are in (layer, site) order: ties keep the first
    }
    if (pick < 0) break; // cannot happen above the minimum
    const s = sites[pick]!;
    const to = jumps[pick]![1];
    bytes -= s.bytes[at[pick]!]! - s.bytes[to]!;
    at[pick] = to;
    jumps[pick] = best(pick);
  }
  const names = [...new Set(sites.map((s) => s.site))];
  const nLayer = sites.reduce((n, s) => Math.max(n, s.layer + 1), 0);
  const sparsity = Array.from({ length: nLayer }, () => new Array<number>(names.length).fill(0));
  let cost = 0;
  sites.forEach((s, i) => {
    sparsity[s.layer]![names.indexOf(s.site)] = levels[at[i]!]!;
    cost += s.cost[at[i]!]!;
  });
  return { budget, estimate: bytes / denseBytes, sites: names, sparsity, cost };
}

/** The allocated level of a site (0 when the allocation does not name it). */
export function allocatedSparsity(allocation: BudgetAllocation, layer: number, site: string): number {
  const k = allocation.sites.indexOf(site);
  return k < 0 ? 0 : (allocation.sparsity[layer]?.[k] ?? 0);
}
