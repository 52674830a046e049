/**
 * The `budget` method's allocation as a file records it (docs/gguf-sparse.md §2,
 * `chess.budget.*`): read back from a file's metadata, for `chess inspect` and
 * the tests.
 */
import { SPARSE_GGUF } from './contract.ts';

export interface RecordedBudget {
  /** Fraction of the dense model's weight bytes per decoded token allowed. */
  readonly budget: number;
  /** What the allocation's byte model expects at the allocated levels. */
  readonly estimate: number;
  /** The sites of a layer (§5 names), the columns of `sparsity`. */
  readonly sites: readonly string[];
  /** [layer][site] allocated target sparsity. */
  readonly sparsity: readonly (readonly number[])[];
}

/**
 * The recorded allocation, from a metadata getter (a scalar's value, an array's items);
 * null when the file records none; a string saying what is wrong when the keys are
 * present but inconsistent.
 */
export function recordedBudget(get: (key: string) => unknown): RecordedBudget | null | string {
  const k = SPARSE_GGUF.keys;
  const budget = get(k.budget);
  if (budget === undefined) return null;
  const estimate = get(k.budgetEstimate);
  const sites = get(k.budgetSites);
  const flat = get(k.budgetSparsity);
  if (typeof budget !== 'number' || typeof estimate !== 'number') return `${k.budget} and ${k.budgetEstimate} must be numbers`;
  if (!Array.isArray(sites) || sites.length === 0 || !sites.every((s) => typeof s === 'string')) return `${k.budgetSites} must be a non-empty array of site names`;
  const values = flat !== null && typeof flat === 'object' && 'length' in (flat as object) ? Array.from(flat as ArrayLike<unknown>) : undefined;
  if (!values || values.length % sites.length !== 0 || !values.every((v) => typeof v === 'number' && v >= 0 && v < 1)) {
    return `${k.budgetSparsity} must hold n_layer x ${sites.length} sparsities in [0, 1)`;
  }
  const sparsity: number[][] = [];
  for (let i = 0; i < values.length; i += sites.length) sparsity.push(values.slice(i, i + sites.length) as number[]);
  return { budget, estimate, sites: sites as string[], sparsity };
}
