/**
 * The defaults of the compile options (one home: the schema fills them in,
 * the command line shows them in its help). Loads nothing but the contract,
 * so `chess --help` stays fast.
 */
import { DEFAULT_LAYOUT, DEFAULT_TRANSPOSED_TYPE } from '@chess/contract';

export const COMPILE_DEFAULTS = {
  method: 'chess+',
  statistic: 'rms',
  sparsity: 0.5,
  layout: DEFAULT_LAYOUT,
  transposedType: DEFAULT_TRANSPOSED_TYPE,
  /** Calibration and one refinement in about a minute on 2 cores (benchmarks/transform). */
  calibrationTokens: 6144,
  refineTokens: 4096,
  refineIterations: 1,
} as const;
