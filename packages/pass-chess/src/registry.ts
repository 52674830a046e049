/**
 * The passes by name, and the pipelines made of them (tinygrad's straight
 * list of named rewrites; Babel's plugins by name). A pass is a name, one line
 * of what it does, and the IR step it makes for a context; `runPipeline` of
 * @chess/ir runs the steps with the verifier before the first and after each.
 *
 * The compiler driver (@chess/compiler) runs CHECK_PIPELINE before
 * calibration, TRANSFORM_PIPELINE once the thresholds are known, and
 * REFINE_PIPELINE after each refinement measurement.
 */
import { ChessError } from '@chess/core';
import type { Layout, Method } from '@chess/contract';
import type { DType, Step } from '@chess/ir';
import type { LayoutEncoder } from './encoder.ts';
import { type CalibrationInfo, checkModule, inputSparseRules, layoutWeights, placeThresholds, sparseGgufMeta, sparsifyRules } from './passes.ts';
import type { Thresholds } from './thresholds.ts';

export interface PassContext {
  readonly method: Method;
  /** Storage layout of the input-sparse projections. */
  readonly layout: Layout;
  /** Storage type of transposed projections (layout `transposed`). */
  readonly transposedType: DType;
  /** Known once the profile is: every pass after calibration needs them. */
  readonly thresholds?: Thresholds;
  /** `chess.calibration.*` */
  readonly calibration?: CalibrationInfo;
  /** `chess.tool`; default TOOL. */
  readonly tool?: string;
  /** Bytes of the projections in their storage layout (see encoder.ts); none: weights without data. */
  readonly encoder?: LayoutEncoder;
}

export interface PassDefinition {
  readonly name: string;
  /** One line: what the pass does (the `--list-passes` listing). */
  readonly summary: string;
  /** The IR step for a context (its name shows in reports and CHESS_DEBUG_IR). */
  readonly step: (context: PassContext) => Step;
}

function need<K extends 'thresholds' | 'calibration'>(context: PassContext, key: K, pass: string): NonNullable<PassContext[K]> {
  const value = context[key];
  if (value === undefined) throw new ChessError('CHESS_PASS_CONTEXT', `pass '${pass}' needs the ${key}, which the context does not hold yet`, { pass, key });
  return value!;
}

export const PASSES: readonly PassDefinition[] = [
  {
    name: 'check-module',
    summary: 'llama base architecture, a gated FFN in every layer, the transposed type fits each projection stored transposed',
    step: (c) => ({ name: 'check-module', run: (m) => checkModule(m, c) }),
  },
  {
    name: 'sparsify',
    summary: "rewrite the method's sites: the gated FFN -> sparse_linear_out over the gate thresholds, linear(x, W) -> linear(threshold(x, input threshold), W)",
    step: (c) => ({ name: `sparsify-${c.method}`, rules: sparsifyRules(c.method) }),
  },
  {
    name: 'place-thresholds',
    summary: 'put the threshold values into every threshold weight (again after each refinement measurement)',
    step: (c) => ({ name: 'place-thresholds', run: (m) => placeThresholds(m, need(c, 'thresholds', 'place-thresholds')) }),
  },
  {
    name: 'input-sparse-layout',
    summary: 'linear(x, W) -> sparse_linear_in(x, W\') for the input-sparse projections, W\' in the storage layout (column blocks or transposed); a projection the layout cannot hold stays in row layout',
    step: (c) => ({ name: 'input-sparse-layout', rules: inputSparseRules(c.method, c.layout, c.transposedType, c.encoder) }),
  },
  {
    name: 'sparse-gguf-layout',
    summary: "order the weight table (each layer's thresholds after its tensors); refuse two layouts of one projection",
    step: () => ({ name: 'sparse-gguf-layout', run: layoutWeights }),
  },
  {
    name: 'sparse-gguf-meta',
    summary: 'the chess architecture wrapper and the chess.* metadata keys',
    step: (c) => ({
      name: 'sparse-gguf-meta',
      run: (m) => sparseGgufMeta(m, { thresholds: need(c, 'thresholds', 'sparse-gguf-meta'), calibration: need(c, 'calibration', 'sparse-gguf-meta'), tool: c.tool }),
    }),
  },
];

/** Before calibration: the module can be made sparse with these options. */
export const CHECK_PIPELINE: readonly string[] = ['check-module'];
/** Once the thresholds are known: the module rewritten into the sparse GGUF contract. */
export const TRANSFORM_PIPELINE: readonly string[] = ['sparsify', 'place-thresholds', 'input-sparse-layout', 'sparse-gguf-layout', 'sparse-gguf-meta'];
/** After each refinement measurement: the new thresholds put in. */
export const REFINE_PIPELINE: readonly string[] = ['place-thresholds'];

export function passByName(name: string): PassDefinition {
  const pass = PASSES.find((p) => p.name === name);
  if (!pass) throw new ChessError('CHESS_UNKNOWN_PASS', `unknown pass '${name}'; passes: ${PASSES.map((p) => p.name).join(', ')}`, { pass: name });
  return pass;
}

/** The IR steps of the named passes, in order, for `context`. */
export function passSteps(names: readonly string[], context: PassContext): Step[] {
  return names.map((name) => passByName(name).step(context));
}
