/**
 * The methods, the projections and the contract's tensor names live in
 * @chess/contract (one home for the sparse GGUF contract); re-exported here
 * for the importers of this package.
 */
export {
  METHODS,
  METHOD_LAYOUTS,
  PROJECTIONS,
  STATISTICS,
  contractNames,
  isMethod,
  isStatistic,
  parseProjectionWeight,
  usesStatistic,
  type Method,
  type MethodLayout,
  type Projection,
  type Statistic,
} from '@chess/contract';
