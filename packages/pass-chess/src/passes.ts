/**
 * The CHESS-family passes as a straight list of named steps (tinygrad style);
 * `CHESS_DEBUG_IR=1` prints the module after each one:
 *
 *   1. `check-gated-ffn`        every layer's FFN is mul(act(linear(x, W_gate)), linear(x, W_up)) -> linear(., W_down)
 *   2. `sparsify-<method>`      rewrite rules: the gated FFN -> sparse_linear_out over ffn_gate_tau;
 *                               linear(x, W_p) -> linear(threshold(x, <p>_in_tau), W_p) for the method's projections
 *   3. `input-sparse-layout`    linear(x, W_p) -> sparse_linear_in(x, W_p') for the method's input-sparse projections,
 *                               W_p' in the storage layout (column blocks: the source's blocks re-arranged; or
 *                               transposed and re-quantized); a projection the layout cannot hold stays a linear
 *   4. `sparse-gguf-layout`     drop the replaced row-layout weights, order the weight table deterministically
 *   5. `sparse-gguf-meta`       the `chess` architecture wrapper and the chess.* keys (docs/gguf-sparse.md §1-2)
 */
import { ChessError } from '@chess/core';
import { type DType, type MetaEntry, type Module, type Node, type Rule, type Weight, WeightRef, type Step, type StepReport, any, dtypeInfo, formatShape, memoryWeight, op, runPipeline, valueNames, weight, type PipelineOptions } from '@chess/ir';
import {
  DEFAULT_LAYOUT,
  DEFAULT_TRANSPOSED_TYPE as CONTRACT_DEFAULT_TRANSPOSED_TYPE,
  type Layout,
  METHOD_LAYOUTS,
  type Method,
  PROJECTIONS,
  type Projection,
  SPARSE_GGUF,
  TRANSPOSED_TYPES as CONTRACT_TRANSPOSED_TYPES,
  contractNames,
  formatVersionOf,
  parseContractTensor,
  parseProjectionWeight,
} from '@chess/contract';
import { columnBlockWeight } from './column-blocks.ts';
import { registerSparseOps } from './ops.ts';
import { type Placement, checkLayoutOptions, inputSparsePlacements, placeProjection } from './placement.ts';
import { type ThresholdOptions, type ThresholdProfile, type Thresholds, computeThresholds } from './thresholds.ts';
import { transposedWeight } from './transpose.ts';

/** `chess.tool` of the files this package writes. */
export const TOOL = 'chess-toolchain 0.1.0 (@chess/pass-chess)';
/** Default storage type of transposed projections (`--layout transposed`): Q8_0 (docs/transposed-weights.md). */
export const DEFAULT_TRANSPOSED_TYPE: DType = CONTRACT_DEFAULT_TRANSPOSED_TYPE;
/** Types a transposed projection may be re-quantized to (the fast kernels read f32, f16, bf16, q8_0, q4_0, q4_1). */
export const TRANSPOSED_TYPES: readonly DType[] = CONTRACT_TRANSPOSED_TYPES;

export interface CalibrationInfo {
  /** `chess.calibration.source` */
  readonly source: string;
  readonly tokens: number;
  readonly seed: number;
}

export interface ChessPipelineOptions {
  readonly thresholds: Thresholds;
  /** Storage layout of the input-sparse projections. Default `column-blocks`. */
  readonly layout?: Layout;
  /** Storage type of transposed projections (layout `transposed` only). Default DEFAULT_TRANSPOSED_TYPE. */
  readonly transposedType?: DType;
  readonly calibration: CalibrationInfo;
  /** `chess.tool`; default TOOL. */
  readonly tool?: string;
}

const isProj = (proj: Projection) => (ref: { name: string }) => parseProjectionWeight(ref.name)?.proj === proj;

// --- step 1: the module must have a gated FFN in every layer ---

/** The layers of a module: 0 .. n_layer-1 from the hyperparameters, plus every `layer` attribute seen. */
export function moduleLayers(module: Module): number[] {
  const layers = new Set<number>();
  const n = module.hparams.get('n_layer');
  if (typeof n === 'number') for (let i = 0; i < n; i++) layers.add(i);
  for (const node of module.nodes) if (node.layer !== undefined) layers.add(node.layer);
  return [...layers].sort((a, b) => a - b);
}

/**
 * Throw CHESS_NO_GATED_FFN, naming the layer and the op found, unless every
 * layer computes linear(mul(act(linear(x, W_gate)), linear(x, W_up)), W_down).
 */
export function checkGatedFfn(module: Module): void {
  const names = valueNames(module);
  const show = (n: Node) => `%${names.get(n) ?? n.name ?? n.id}`;
  const expected = (il: number) => `mul(activation(linear(x, @blk.${il}.ffn_gate.weight)), linear(x, @blk.${il}.ffn_up.weight))`;
  for (const il of moduleLayers(module)) {
    const down = module.nodes.find((n) => n.op === 'linear' && isProj('ffn_down')(n.operands[1] as { name: string }) && parseProjectionWeight((n.operands[1] as { name: string }).name)?.layer === il);
    if (!down) {
      throw new ChessError('CHESS_NO_GATED_FFN', `layer ${il}: no FFN down projection (linear @blk.${il}.ffn_down.weight); CHESS needs a gated FFN in every layer`, { layer: il });
    }
    const input = down.operands[0] as Node;
    const fail = (what: string): never => {
      throw new ChessError('CHESS_NO_GATED_FFN', `layer ${il}: the input of the FFN down projection ${show(down)} is ${what}; expected ${expected(il)}`, {
        layer: il,
        op: input.op,
        value: show(input),
      });
    };
    if (input.op !== 'mul') fail(`a '${input.op}' (${show(input)}), not a gated product`);
    const [a, b] = input.operands as Node[];
    const isAct = (n: Node) => n.op === 'activation' && (n.operands[0] as Node).op === 'linear' && isProj('ffn_gate')((n.operands[0] as Node).operands[1] as { name: string });
    const isUp = (n: Node) => n.op === 'linear' && isProj('ffn_up')(n.operands[1] as { name: string });
    const act = isAct(a!) ? a! : isAct(b!) ? b! : undefined;
    const up = act === a ? b! : a!;
    if (!act) fail(`the 'mul' ${show(input)} of ${show(a!)} ('${a!.op}') and ${show(b!)} ('${b!.op}'), neither of which is activation(linear(x, @blk.${il}.ffn_gate.weight))`);
    if (!isUp(up)) fail(`the 'mul' ${show(input)} whose other factor ${show(up)} is a '${up.op}', not linear(x, @blk.${il}.ffn_up.weight)`);
    if ((act!.operands[0] as Node).operands[0] !== up.operands[0]) fail(`the 'mul' ${show(input)} whose gate and up projections read different inputs`);
  }
}

/** Throw CHESS_PROFILE_MODEL_MISMATCH unless the profile's model identity matches the module's shape. */
export function checkProfileMatchesModule(profile: ThresholdProfile, module: Module): void {
  const hp = {
    arch: module.arch,
    nLayer: module.hparams.get('n_layer'),
    nEmbd: module.hparams.get('n_embd'),
    nFF: module.hparams.get('n_ff'),
  };
  const pm = profile.model;
  const diffs = (['arch', 'nLayer', 'nEmbd', 'nFF'] as const).filter((k) => pm[k] !== hp[k]).map((k) => `${k} ${String(pm[k])} vs ${String(hp[k])}`);
  if (diffs.length > 0) {
    throw new ChessError(
      'CHESS_PROFILE_MODEL_MISMATCH',
      `the calibration profile is of another model${pm.file ? ` (${pm.file})` : ''}: ${diffs.join(', ')} (profile vs module); recalibrate on this model`,
      { profile: pm, module: hp },
    );
  }
}

// --- step 2: sparsify (one rule list per method) ---

/** The gated FFN -> output-sparse up product over the gate thresholds (chess, chess+, cats). */
function gateRule(thresholds: Thresholds): Rule {
  return {
    name: 'gate-threshold',
    pattern: op('mul', op('activation', op('linear', any('x'), weight().where(isProj('ffn_gate')))).as('act'), op('linear', any('x'), weight('up').where(isProj('ffn_up')))).commutative(),
    rewrite(m, b) {
      const { layer } = parseProjectionWeight(m.weight('up').name)!;
      const tau = thresholds.layers[layer]?.gate;
      if (!tau) throw new ChessError('CHESS_THRESHOLDS_MISSING', `no gate thresholds for layer ${layer} (thresholds cover ${thresholds.layers.length} layers)`, { layer });
      const tauRef = b.addWeight(memoryWeight(contractNames.gateTau(layer), 'f32', [tau.length], tau));
      return b.op('sparse_linear_out', [m.value('x'), m.weight('up'), m.node('act'), tauRef], { layer });
    },
  };
}

/** linear(x, W_p) -> linear(threshold(x, <p>_in_tau), W_p): one tensor-wise threshold on a projection input. */
function inputRule(proj: Projection, thresholds: Thresholds): Rule {
  return {
    name: `${proj}-input-threshold`,
    pattern: op('linear', any('x').where((n) => n.op !== 'threshold'), weight('w').where(isProj(proj))),
    rewrite(m, b) {
      const { layer } = parseProjectionWeight(m.weight('w').name)!;
      const tau = thresholds.layers[layer]?.inputs[proj];
      if (tau === undefined) throw new ChessError('CHESS_THRESHOLDS_MISSING', `no ${proj} input threshold for layer ${layer}`, { layer, proj });
      const tauRef = b.addWeight(memoryWeight(contractNames.inputTau(layer, proj), 'f32', [1], Float32Array.of(tau)));
      const masked = b.op('threshold', [m.value('x'), tauRef], { layer }, `${proj}_in.${layer}`);
      return b.op('linear', [masked, m.weight('w')], { layer });
    },
  };
}

export function sparsifyRules(thresholds: Thresholds): Rule[] {
  const layout = METHOD_LAYOUTS[thresholds.method];
  return [...(layout.gate ? [gateRule(thresholds)] : []), ...layout.inputs.map((p) => inputRule(p, thresholds))];
}

// --- step 3: lowering to the storage layout of the input-sparse projections ---

export function inputSparseRules(method: Method, layout: Layout, type: DType): Rule[] {
  const inputSparse = new Set<Projection>(METHOD_LAYOUTS[method].inputSparse);
  return [
    {
      name: 'input-sparse-projection',
      pattern: op('linear', any('x'), weight('w').where((ref) => inputSparse.has(parseProjectionWeight(ref.name)?.proj as Projection))),
      rewrite(m, b) {
        const srcName = m.weight('w').name;
        const src = b.module.weight(srcName)!;
        const placement = placeProjection(src, layout);
        if (placement.layout === 'rows') return undefined; // the runtime's masked-dense route
        const uses = b.module.nodes.reduce((n, node) => n + node.operands.filter((o) => o instanceof WeightRef && o.name === srcName).length, 0);
        if (uses > 1) {
          throw new ChessError('CHESS_BOTH_LAYOUTS', `@${srcName} has ${uses} uses; an input-sparse projection must have exactly one (a sparse GGUF cannot hold both layouts)`, {
            weight: srcName,
          });
        }
        const name = placement.tensor;
        replaceWeight(b.module, srcName, placement.layout === 'transposed' ? transposedWeight(b.module, src, name, type) : columnBlockWeight(b.module, src, name));
        return b.op('sparse_linear_in', [m.value('x'), name], { layer: placement.layer, layout: placement.layout });
      },
    },
  ];
}

/** Put `weight` in the table at the place of `name` (which is removed). */
export function replaceWeight(module: Module, name: string, weight: Weight): void {
  const entries = [...module.weights.entries()];
  module.weights.clear();
  for (const [k, w] of entries) {
    if (k === name) module.weights.set(weight.name, weight);
    else module.weights.set(k, w);
  }
}

/** Fail before any work unless `type` can hold every transposed projection (n_out a multiple of its block). */
export function checkTransposedType(module: Module, method: Method, type: string): asserts type is DType {
  if (!(TRANSPOSED_TYPES as readonly string[]).includes(type)) {
    throw new ChessError('CHESS_BAD_TRANSPOSED_TYPE', `transposed type '${type}' is not supported; valid: ${TRANSPOSED_TYPES.join(', ')}`, { type, valid: TRANSPOSED_TYPES });
  }
  const { blockSize } = dtypeInfo(type as DType);
  const transposed = new Set<Projection>(METHOD_LAYOUTS[method].inputSparse);
  for (const w of module.weights.values()) {
    const p = parseProjectionWeight(w.name);
    if (!p || !transposed.has(p.proj)) continue;
    const nOut = w.shape[0]!;
    if (nOut % blockSize !== 0) {
      throw new ChessError(
        'CHESS_BAD_TRANSPOSED_TYPE',
        `${w.name} ${formatShape(w.shape)}: stored transposed as ${type}, its n_out = ${nOut} must be a multiple of the block size ${blockSize}; choose another --transposed-type (or the column-block layout)`,
        { type, weight: w.name, nOut, blockSize },
      );
    }
  }
}

// --- step 4: weight table layout ---

const TAU_ORDER = (layer: number): string[] => [contractNames.gateTau(layer), ...PROJECTIONS.map((p) => contractNames.inputTau(layer, p))];

/**
 * Order the weight table: each layer's thresholds right after the layer's last
 * tensor (column-block and transposed copies already sit at their source's
 * place). Only for determinism and readability: readers look tensors up by
 * name. Also refuses a table that holds two layouts of a projection (the
 * loader would).
 */
export function layoutWeights(module: Module): void {
  const entries = [...module.weights.values()];
  const stored = new Map<string, string>();
  for (const w of entries) {
    const t = parseContractTensor(w.name);
    if (t?.kind !== 'weight' && t?.kind !== 'columnBlocks' && t?.kind !== 'transposed') continue;
    const src = contractNames.weight(t.layer, t.proj!);
    const other = stored.get(src);
    if (other !== undefined) {
      throw new ChessError('CHESS_BOTH_LAYOUTS', `@${other} is still in the weight table next to @${w.name}; a sparse GGUF must hold one layout of a projection`, { weight: other });
    }
    stored.set(src, w.name);
  }
  const isTau = (name: string) => name.endsWith('_tau');
  const layerOf = (name: string) => /^blk\.(\d+)\./.exec(name)?.[1];
  const rest = entries.filter((w) => !isTau(w.name));
  const order: string[] = [];
  const placed = new Set<string>();
  const place = (name: string) => {
    if (module.weights.has(name) && !placed.has(name)) order.push(name), placed.add(name);
  };
  rest.forEach((w, i) => {
    place(w.name);
    const layer = layerOf(w.name);
    if (layer !== undefined && layerOf(rest[i + 1]?.name ?? '') !== layer) TAU_ORDER(Number(layer)).forEach(place);
  });
  for (const w of entries) place(w.name); // thresholds of layers without tensors, in table order
  const byName = new Map(module.weights);
  module.weights.clear();
  for (const name of order) module.weights.set(name, byName.get(name)!);
}

// --- step 5: metadata ---

/**
 * The `chess` wrapper and the chess.* keys (docs/gguf-sparse.md §1-2), appended
 * after the source's keys. A source key of the same name is replaced; other
 * chess.* keys of the source (e.g. `chess.synthetic.seed`) are kept.
 */
export function sparseGgufMeta(module: Module, options: ChessPipelineOptions): void {
  const { thresholds, calibration } = options;
  const { keys } = SPARSE_GGUF;
  const added: MetaEntry[] = [
    { key: keys.baseArchitecture, type: 'string', value: module.arch },
    // 2 when a column-block tensor is present (a format-1 reader would misread it), else 1
    { key: keys.formatVersion, type: 'u32', value: formatVersionOf(module.weights.keys()) },
    { key: keys.method, type: 'string', value: thresholds.method },
    { key: keys.statistic, type: 'string', value: thresholds.statistic },
    { key: keys.targetSparsity, type: 'f32', value: thresholds.sparsity },
    { key: keys.calibrationSource, type: 'string', value: calibration.source },
    { key: keys.calibrationTokens, type: 'u64', value: BigInt(calibration.tokens) },
    { key: keys.calibrationSeed, type: 'u64', value: BigInt(calibration.seed) },
    { key: keys.tool, type: 'string', value: options.tool ?? TOOL },
  ];
  const replaced = new Set(added.map((e) => e.key));
  const meta = module.meta.filter((e) => !replaced.has(e.key));
  const arch: MetaEntry = { key: 'general.architecture', type: 'string', value: SPARSE_GGUF.architecture };
  const at = meta.findIndex((e) => e.key === 'general.architecture');
  if (at >= 0) meta[at] = arch;
  else meta.unshift(arch);
  module.meta = [...meta, ...added];
}

// --- the pipeline ---

export function chessPipeline(options: ChessPipelineOptions): Step[] {
  registerSparseOps();
  const { method } = options.thresholds;
  return [
    { name: 'check-gated-ffn', run: checkGatedFfn },
    { name: `sparsify-${method}`, rules: sparsifyRules(options.thresholds) },
    { name: 'input-sparse-layout', rules: inputSparseRules(method, options.layout ?? DEFAULT_LAYOUT, options.transposedType ?? DEFAULT_TRANSPOSED_TYPE) },
    { name: 'sparse-gguf-layout', run: layoutWeights },
    { name: 'sparse-gguf-meta', run: (m) => sparseGgufMeta(m, options) },
  ];
}

export interface ApplyChessOptions extends ThresholdOptions {
  /** Storage layout of the input-sparse projections. Default `column-blocks`. */
  readonly layout?: Layout;
  /** Storage type of transposed projections: only with layout `transposed` (default DEFAULT_TRANSPOSED_TYPE). */
  readonly transposedType?: DType;
  readonly tool?: string;
  readonly pipeline?: PipelineOptions;
}

/** Checks that need the module but no profile: the layout options, llama base architecture, gated FFN everywhere, the transposed type fits. */
export function checkModule(module: Module, options: { method: Method; layout?: string | undefined; transposedType?: string | undefined }): void {
  checkLayoutOptions(options);
  if (module.arch !== 'llama') {
    throw new ChessError('CHESS_UNSUPPORTED_ARCH', `base architecture '${module.arch}' is not supported by the sparse runtime (docs/gguf-sparse.md §6: llama)`, { arch: module.arch });
  }
  checkGatedFfn(module);
  if (options.layout === 'transposed') checkTransposedType(module, options.method, options.transposedType ?? DEFAULT_TRANSPOSED_TYPE);
}

/**
 * The whole pass on a module: check the module (llama, gated FFN in every
 * layer) and the profile (same model shape), compute the thresholds, run the
 * pipeline. Returns the thresholds, where each input-sparse projection went,
 * and the step reports.
 */
export function applyChess(module: Module, profile: ThresholdProfile, options: ApplyChessOptions): { thresholds: Thresholds; placements: Placement[]; reports: StepReport[] } {
  registerSparseOps();
  checkModule(module, options);
  checkProfileMatchesModule(profile, module);
  const layout = options.layout ?? DEFAULT_LAYOUT;
  const type = options.transposedType ?? DEFAULT_TRANSPOSED_TYPE;
  const thresholds = computeThresholds(profile, options);
  const placements = inputSparsePlacements(module, thresholds.method, layout);
  const reports = runPipeline(
    module,
    chessPipeline({ thresholds, layout, transposedType: type, calibration: profile.calibration, ...(options.tool !== undefined && { tool: options.tool }) }),
    options.pipeline,
  );
  return { thresholds, placements, reports };
}
