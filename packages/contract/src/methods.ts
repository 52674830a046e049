/**
 * The methods and statistics of `chess.method` / `chess.statistic`, typed views
 * of the contract table: what each method thresholds and which projections it
 * makes input-sparse.
 */
import { SPARSE_GGUF } from './contract.ts';
import type { Projection } from './projections.ts';

export type Method = keyof typeof SPARSE_GGUF.methods;
export const METHODS = Object.keys(SPARSE_GGUF.methods) as readonly Method[];

export type Statistic = keyof typeof SPARSE_GGUF.statistics;
export const STATISTICS = Object.keys(SPARSE_GGUF.statistics) as readonly Statistic[];
/** `chess.statistic` of the methods without a per-channel statistic. */
export const NO_STATISTIC = SPARSE_GGUF.noStatistic;

export interface MethodLayout {
  /** One line for `--help` and error messages. */
  readonly summary: string;
  /**
   * Threshold on the gate after its activation (`blk.N.ffn_gate_tau`):
   * `channel` = CHESS per-channel `t / m_i`; `layer` = CATS, one value per layer.
   */
  readonly gate: 'channel' | 'layer' | null;
  /** Projections whose input gets one tensor-wise threshold (`blk.N.<proj>_in_tau`). */
  readonly inputs: readonly Projection[];
  /** Projections read by the input-sparse kernel, stored in the chosen storage layout (`_cb` or `_t`). */
  readonly inputSparse: readonly Projection[];
  /**
   * How the targets are chosen (absent: `uniform`): `uniform` = one target sparsity
   * (`--sparsity`) for every thresholded site; `budget` = a byte budget (`--budget`)
   * allocated per layer and site (`chess.budget.*` keys).
   */
  readonly allocation?: 'uniform' | 'budget';
}

export const METHOD_LAYOUTS: Readonly<Record<Method, MethodLayout>> = SPARSE_GGUF.methods;

/** The methods with one target sparsity for every site (`--sparsity`). */
export const UNIFORM_METHODS = METHODS.filter((m) => (METHOD_LAYOUTS[m].allocation ?? 'uniform') === 'uniform');
/** The methods that take a byte budget (`--budget`) and allocate it per layer and site. */
export const BUDGET_METHODS = METHODS.filter((m) => METHOD_LAYOUTS[m].allocation === 'budget');

export function isMethod(name: string): name is Method {
  return (METHODS as readonly string[]).includes(name);
}

export function isStatistic(name: string): name is Statistic {
  return (STATISTICS as readonly string[]).includes(name);
}

/** Whether the method uses a per-channel statistic m_i (the others record `none`). */
export function usesStatistic(method: Method): boolean {
  return METHOD_LAYOUTS[method].gate === 'channel';
}
