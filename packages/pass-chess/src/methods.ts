/**
 * The methods the pass knows, by name: the rows of the contract table
 * (@chess/contract `SPARSE_GGUF.methods`), plus any registered at run time
 * with `registerMethod` (experiments, and the test that shows a new method
 * needs only its layout: what it thresholds and what it makes input-sparse).
 * Every pass step looks a method up here, never in the contract table itself.
 */
import { ChessError, UsageError } from '@chess/core';
import { METHOD_LAYOUTS, type Method, type MethodLayout, PROJECTIONS } from '@chess/contract';

export {
  BUDGET_METHODS,
  METHODS,
  UNIFORM_METHODS,
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

const registry = new Map<string, MethodLayout>(Object.entries(METHOD_LAYOUTS));

/**
 * Add a method (its name is written as `chess.method`). The rules of the
 * contract hold: every thresholded input is read by the input-sparse kernel,
 * and a gate threshold makes W_down input-sparse. A contract method cannot be
 * redefined. Returns the name, typed as a method.
 */
export function registerMethod(name: string, layout: MethodLayout): Method {
  const bad = (why: string): never => {
    throw new ChessError('CHESS_BAD_METHOD_LAYOUT', `method '${name}': ${why}`, { method: name });
  };
  if (!/^[a-z][a-z0-9+_-]*$/.test(name)) bad('a method name is lower case letters, digits, +, _ and -');
  if (name in METHOD_LAYOUTS) bad('is a method of the contract table and cannot be redefined');
  const known = new Set<string>(PROJECTIONS);
  for (const p of [...layout.inputs, ...layout.inputSparse]) if (!known.has(p)) bad(`'${p}' is not a projection (${PROJECTIONS.join(', ')})`);
  for (const p of layout.inputs) if (!layout.inputSparse.includes(p)) bad(`its thresholded input ${p} must be input-sparse too`);
  if (layout.gate && !layout.inputSparse.includes('ffn_down')) bad('a gate threshold makes ffn_down input-sparse; list it');
  registry.set(name, { ...layout, inputs: [...layout.inputs], inputSparse: [...layout.inputSparse] });
  return name as Method;
}

/** Every known method: the contract's, then the registered ones. */
export function methodNames(): Method[] {
  return [...registry.keys()] as Method[];
}

export function isKnownMethod(name: string): name is Method {
  return registry.has(name);
}

/** What `method` thresholds and makes input-sparse; CHESS_UNKNOWN_METHOD (listing the known ones) if there is no such method. */
export function methodLayout(method: string): MethodLayout {
  const layout = registry.get(method);
  if (!layout) {
    throw new UsageError('CHESS_UNKNOWN_METHOD', `unknown method '${method}'; valid methods: ${methodNames().join(', ')}`, { method, valid: methodNames() });
  }
  return layout;
}

