/**
 * The CHESS-family pass steps (tinygrad style: each a rule list or a function
 * on the module); `registry.ts` names them and puts them in pipelines, with
 * the verifier between steps. `CHESS_DEBUG_IR=1` prints the module after each.
 *
 *   `check-module`          llama base architecture; every layer's FFN is
 *                           linear(mul(act(linear(x, W_gate)), linear(x, W_up)), W_down); the transposed type fits
 *   `sparsify-<method>`     rewrite rules: the gated FFN -> sparse_linear_out over ffn_gate_tau;
 *                           linear(x, W_p) -> linear(threshold(x, <p>_in_tau), W_p) for the method's projections
 *                           (the threshold weights are made here without values)
 *   `place-thresholds`      every threshold weight gets its values (also after each refinement measurement)
 *   `input-sparse-layout`   linear(x, W_p) -> sparse_linear_in(x, W_p') for the method's input-sparse projections,
 *                           W_p' in the storage layout (column blocks: the source's blocks re-arranged; or
 *                           transposed and re-quantized; bytes from the LayoutEncoder); a projection the layout
 *                           cannot hold stays a linear
 *   `sparse-gguf-layout`    drop the replaced row-layout weights, order the weight table deterministically
 *   `sparse-gguf-meta`      the `chess` architecture wrapper and the chess.* keys (docs/gguf-sparse.md §1-2)
 */
import { ChessError } from '@chess/core';
import { type DType, type MetaEntry, type Module, type Node, type Rule, type Weight, WeightRef, any, dtypeInfo, formatShape, memoryWeight, op, valueNames, weight } from '@chess/ir';
import {
  DEFAULT_TRANSPOSED_TYPE as CONTRACT_DEFAULT_TRANSPOSED_TYPE,
  type Layout,
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
import type { LayoutEncoder } from './encoder.ts';
import { methodLayout } from './methods.ts';
import { placeProjection } from './placement.ts';
import type { ThresholdProfile, Thresholds } from './thresholds.ts';

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

const isProj = (proj: Projection) => (ref: { name: string }) => parseProjectionWeight(ref.name)?.proj === proj;

// --- check-module: llama, a gated FFN in every layer, the transposed type fits ---

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

// --- sparsify-<method>: the structure; the threshold weights are made without values ---

/** A threshold weight whose values `place-thresholds` supplies (written without them, it fails loudly: WEIGHT_DETACHED). */
function thresholdWeight(name: string, length: number): Weight {
  return { name, dtype: 'f32', shape: [length], source: { kind: 'memory' } };
}

/** The gated FFN -> output-sparse up product over the gate thresholds (chess, chess+, cats). */
function gateRule(): Rule {
  return {
    name: 'gate-threshold',
    // W_gate reads x, or x through its own input threshold (a method that thresholds both, like budget)
    pattern: op('mul', op('activation', op('linear', any('gateIn'), weight().where(isProj('ffn_gate')))).as('act'), op('linear', any('x'), weight('up').where(isProj('ffn_up')))).commutative(),
    rewrite(m, b) {
      const gateIn = m.value('gateIn') as unknown as Node;
      const x = m.value('x') as unknown as Node;
      if (gateIn !== x && !(gateIn.op === 'threshold' && gateIn.operands[0] === x)) return undefined;
      const up = m.weight('up').name;
      const { layer } = parseProjectionWeight(up)!;
      const nFF = b.module.weight(up)!.shape[0]!;
      const tauRef = b.addWeight(thresholdWeight(contractNames.gateTau(layer), nFF));
      return b.op('sparse_linear_out', [m.value('x'), m.weight('up'), m.node('act'), tauRef], { layer });
    },
  };
}

/** linear(x, W_p) -> linear(threshold(x, <p>_in_tau), W_p): one tensor-wise threshold on a projection input. */
function inputRule(proj: Projection): Rule {
  return {
    name: `${proj}-input-threshold`,
    pattern: op('linear', any('x').where((n) => n.op !== 'threshold'), weight('w').where(isProj(proj))),
    rewrite(m, b) {
      const { layer } = parseProjectionWeight(m.weight('w').name)!;
      const tauRef = b.addWeight(thresholdWeight(contractNames.inputTau(layer, proj), 1));
      const masked = b.op('threshold', [m.value('x'), tauRef], { layer }, `${proj}_in.${layer}`);
      return b.op('linear', [masked, m.weight('w')], { layer });
    },
  };
}

export function sparsifyRules(method: Method): Rule[] {
  const layout = methodLayout(method);
  return [...(layout.gate ? [gateRule()] : []), ...layout.inputs.map((p) => inputRule(p))];
}

// --- place-thresholds: the one place threshold values enter the module ---

/**
 * Give every threshold weight of the module its values from `thresholds`
 * (same place in the weight table). Run after `sparsify` and again after each
 * refinement measurement. CHESS_THRESHOLDS_MISSING if a threshold weight has
 * no value, or a value has no threshold weight (thresholds of another method
 * or module).
 */
export function placeThresholds(module: Module, thresholds: Thresholds): void {
  const values = new Map<string, Float32Array>();
  for (const lt of thresholds.layers) {
    if (lt.gate) values.set(contractNames.gateTau(lt.layer), lt.gate);
    for (const p of PROJECTIONS) {
      const v = lt.inputs[p];
      if (v !== undefined) values.set(contractNames.inputTau(lt.layer, p), Float32Array.of(v));
    }
  }
  for (const w of [...module.weights.values()]) {
    const t = parseContractTensor(w.name);
    if (t?.kind !== 'gateTau' && t?.kind !== 'inputTau') continue;
    const data = values.get(w.name);
    const n = w.shape.reduce((a, b) => a * b, 1);
    if (!data || data.length !== n) {
      throw new ChessError(
        'CHESS_THRESHOLDS_MISSING',
        `no ${n} threshold value(s) for @${w.name} in the ${thresholds.method} thresholds (${data ? `${data.length} values` : `they cover ${thresholds.layers.length} layers`})`,
        { weight: w.name, layer: t.layer },
      );
    }
    replaceWeight(module, w.name, memoryWeight(w.name, 'f32', w.shape, data));
    values.delete(w.name);
  }
  if (values.size > 0) {
    const [name] = values.keys();
    throw new ChessError('CHESS_THRESHOLDS_MISSING', `the ${thresholds.method} thresholds hold @${name}, which the module has no threshold weight for (${values.size} such)`, { weight: name });
  }
}

// --- input-sparse-layout: the storage layout of the input-sparse projections ---

export function inputSparseRules(method: Method, layout: Layout, type: DType, encoder?: LayoutEncoder): Rule[] {
  const inputSparse = new Set<Projection>(methodLayout(method).inputSparse);
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
        replaceWeight(b.module, srcName, layoutWeight(b.module, src, placement.tensor, placement.layout, type, encoder));
        return b.op('sparse_linear_in', [m.value('x'), placement.tensor], { layer: placement.layer, layout: placement.layout });
      },
    },
  ];
}

/**
 * `src` [n_out, n_in] stored in `layout` as weight `name`: column blocks keep
 * its dtype and shape, transposed is [n_in, n_out] of dtype `type`. The bytes
 * come from `encoder` when they are written.
 */
function layoutWeight(module: Module, src: Weight, name: string, layout: Layout, type: DType, encoder: LayoutEncoder | undefined): Weight {
  const [nOut, nIn] = src.shape as [number, number];
  const [dtype, shape] = layout === 'transposed' ? [type, [nIn, nOut]] : [src.dtype, src.shape];
  return { name, dtype, shape: [...shape], source: encoder ? { kind: 'memory', data: encoder(module, src, layout, dtype) } : { kind: 'memory' } };
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
  const transposed = new Set<Projection>(methodLayout(method).inputSparse);
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

// --- sparse-gguf-layout: weight table layout ---

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

// --- sparse-gguf-meta: metadata ---

/**
 * The `chess` wrapper and the chess.* keys (docs/gguf-sparse.md §1-2), appended
 * after the source's keys. A source key of the same name is replaced; other
 * chess.* keys of the source (e.g. `chess.synthetic.seed`) are kept.
 */
export function sparseGgufMeta(module: Module, options: { readonly thresholds: Thresholds; readonly calibration: CalibrationInfo; readonly tool?: string | undefined }): void {
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
    ...budgetMeta(thresholds),
  ];
  const replaced = new Set(added.map((e) => e.key));
  const meta = module.meta.filter((e) => !replaced.has(e.key));
  const arch: MetaEntry = { key: 'general.architecture', type: 'string', value: SPARSE_GGUF.architecture };
  const at = meta.findIndex((e) => e.key === 'general.architecture');
  if (at >= 0) meta[at] = arch;
  else meta.unshift(arch);
  module.meta = [...meta, ...added];
}

/** The `budget` method's allocation as chess.budget.* keys (none for the other methods). */
export function budgetMeta(thresholds: Thresholds): MetaEntry[] {
  const a = thresholds.allocation;
  if (!a) return [];
  const { keys } = SPARSE_GGUF;
  return [
    { key: keys.budget, type: 'f32', value: a.budget },
    { key: keys.budgetEstimate, type: 'f32', value: a.estimate },
    { key: keys.budgetSites, type: 'array<string>', value: [...a.sites] },
    { key: keys.budgetSparsity, type: 'array<f32>', value: Float32Array.from(a.sparsity.flat()) },
  ];
}

// --- check-module ---

/**
 * Checks that need the module but no profile (run before calibration, the
 * expensive part): llama base architecture, a gated FFN in every layer, the
 * transposed type fits every projection stored transposed.
 */
export function checkModule(module: Module, options: { readonly method: Method; readonly layout: Layout; readonly transposedType: DType }): void {
  if (module.arch !== 'llama') {
    throw new ChessError('CHESS_UNSUPPORTED_ARCH', `base architecture '${module.arch}' is not supported by the sparse runtime (docs/gguf-sparse.md §6: llama)`, { arch: module.arch });
  }
  checkGatedFfn(module);
  if (options.layout === 'transposed') checkTransposedType(module, options.method, options.transposedType);
}
