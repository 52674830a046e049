/**
 * The IR to ONNX: one standard ONNX op sequence per IR op, so that any ONNX
 * runtime runs the model (dense, or after a sparsity pass) with the IR's exact
 * semantics. A prefill graph: `tokens` int64[T] in, `logits` float[T, n_vocab]
 * out, positions 0..T-1, causal attention, no KV cache.
 *
 *   rms_norm           x * 1/sqrt(ReduceMean(x*x) + eps) * w
 *   linear             Gemm(x, W, b, transB=1) (W in ggml's [n_out, n_in] rows)
 *   rope               theta = pos * inv_freq (ggml's rope_yarn folded into one factor per pair), pairs rotated
 *   attention          per head softmax(scale * q k^T + causal mask) v, kv heads shared by groups
 *   threshold          Where(Greater(Abs(x), tau), x, 0)            keep |x| > tau, strict
 *   sparse_linear_out  Where(Greater(Abs(g), tau), g * Gemm(x, W_up), 0)
 *   sparse_linear_in   Gemm of the weight back in rows (column blocks) or MatMul by W_t (transposed)
 *
 * Weights are dequantized to float32 by @chess/gguf's codecs.
 */
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { ChessError, withAtomicOutput } from '@chess/core';
import { Node, WeightRef, verify, type Module, type Weight } from '@chess/ir';
import { GraphBuilder } from './graph-builder.ts';
import { onnx } from './onnx-proto.ts';
import { dequantizedWeight } from './weights.ts';

/** Opset of the standard domain the exported graph uses (ReduceMean takes its axes as an input from 18 on). */
export const ONNX_OPSET = 18;
/** Above this many bytes of weights, they go to an external data file (a protobuf message is limited to 2 GiB). */
export const EMBEDDED_LIMIT_BYTES = 1_800_000_000;

export interface ExportOnnxOptions {
  /** Directory that relative source paths of the module are resolved against. */
  readonly baseDir?: string;
  /** Also output every threshold's keep mask (bool [T, N]) as `mask.<value name>`: for cross-checks. */
  readonly maskOutputs?: boolean;
  /** Weights in `<out>.data` (ONNX external data) instead of inside the model: `auto` (default) when they exceed EMBEDDED_LIMIT_BYTES. */
  readonly externalData?: boolean | 'auto';
  /** Called after each weight is dequantized. */
  readonly progress?: (done: number, total: number, weight: string) => void;
}

export interface ExportOnnxResult {
  readonly path: string;
  readonly externalDataPath?: string;
  readonly nodes: number;
  readonly initializers: number;
  readonly weightBytes: number;
  /** Names of the mask outputs, in graph order (with `maskOutputs`). */
  readonly masks: readonly string[];
}

/** Build the ONNX ModelProto of a module (weights dequantized into memory). */
export async function buildOnnxModel(module: Module, options: ExportOnnxOptions = {}): Promise<{ model: onnx.IModelProto; masks: string[]; weightBytes: number }> {
  verify(module);
  const g = new GraphBuilder();
  const values = new Map<Node, string>();
  const weightNames = new Map<string, string>();
  const masks: string[] = [];
  const used = [...module.usedWeights()];
  let done = 0;
  let weightBytes = 0;

  const cbWeights = new Set<string>();
  for (const node of module.nodes) {
    if (node.op === 'sparse_linear_in' && node.attr('layout') === 'column-blocks') cbWeights.add((node.operands[1] as WeightRef).name);
  }
  const weightInit = async (name: string): Promise<string> => {
    const known = weightNames.get(name);
    if (known) return known;
    const w = module.weight(name)!;
    const data = await dequantizedWeight(module, w, { baseDir: options.baseDir, columnBlocks: cbWeights.has(name) });
    weightBytes += data.byteLength;
    const id = g.floatInit(name, w.shape, data);
    weightNames.set(name, id);
    options.progress?.(++done, used.length, name);
    return id;
  };
  const operand = async (node: Node, i: number): Promise<string> => {
    const o = node.operands[i]!;
    if (o instanceof WeightRef) return weightInit(o.name);
    const v = values.get(o);
    if (v === undefined) throw new ChessError('ONNX_EXPORT_OP', `operand ${i} of '${node.op}' ${describe(node)} is not computed before it`, { op: node.op });
    return v;
  };
  const hint = (node: Node) => node.name ?? node.op;
  const zero = g.floats([0], []);

  let tokens: string | undefined;
  let outputs = 0;
  for (const node of module.nodes) {
    const at = (name: string) => node.attr(name);
    let out: string;
    switch (node.op) {
      case 'input':
        tokens = g.input('tokens', 'int64', ['T']);
        out = tokens;
        break;
      case 'embedding':
        out = g.op('Gather', [await operand(node, 1), await operand(node, 0)], { axis: 0 }, hint(node));
        break;
      case 'rms_norm': {
        const x = await operand(node, 0);
        const sq = g.op('Mul', [x, x], {}, `${hint(node)}/sq`);
        const mean = g.op('ReduceMean', [sq, g.int64s([-1])], { keepdims: 1 }, `${hint(node)}/mean`);
        const root = g.op('Sqrt', [g.op('Add', [mean, g.floats([at('eps') as number], [])], {}, `${hint(node)}/add_eps`)], {}, `${hint(node)}/sqrt`);
        const scaled = g.op('Mul', [x, g.op('Reciprocal', [root], {}, `${hint(node)}/scale`)], {}, `${hint(node)}/normed`);
        out = g.op('Mul', [scaled, await operand(node, 1)], {}, hint(node));
        break;
      }
      case 'linear': {
        const inputs = [await operand(node, 0), await operand(node, 1)];
        if (node.operands.length > 2) inputs.push(await operand(node, 2));
        out = g.op('Gemm', inputs, { transB: 1 }, hint(node));
        break;
      }
      case 'activation':
        out = activation(g, await operand(node, 0), at('fn') as string, hint(node));
        break;
      case 'add':
      case 'mul':
        out = g.op(node.op === 'add' ? 'Add' : 'Mul', [await operand(node, 0), await operand(node, 1)], {}, hint(node));
        break;
      case 'rope':
        out = rope(g, node, await operand(node, 0), tokens, node.operands[1] instanceof WeightRef ? await dequantizedWeight(module, module.weight(node.operands[1].name)!, options) : undefined);
        break;
      case 'attention':
        out = attention(g, node, await operand(node, 0), await operand(node, 1), await operand(node, 2), tokens);
        break;
      case 'threshold': {
        const x = await operand(node, 0);
        const keep = g.op('Greater', [g.op('Abs', [x], {}, `${hint(node)}/abs`), await operand(node, 1)], {}, `mask.${hint(node)}`);
        if (options.maskOutputs) masks.push(keep);
        out = g.op('Where', [keep, x, zero], {}, hint(node));
        break;
      }
      case 'sparse_linear_out': {
        const gate = await operand(node, 2);
        const up = g.op('Gemm', [await operand(node, 0), await operand(node, 1)], { transB: 1 }, `${hint(node)}/up`);
        const keep = g.op('Greater', [g.op('Abs', [gate], {}, `${hint(node)}/abs`), await operand(node, 3)], {}, `mask.${hint(node)}`);
        if (options.maskOutputs) masks.push(keep);
        out = g.op('Where', [keep, g.op('Mul', [gate, up], {}, `${hint(node)}/par`), zero], {}, hint(node));
        break;
      }
      case 'sparse_linear_in': {
        const inputs = [await operand(node, 0), await operand(node, 1)];
        if (node.operands.length > 2) inputs.push(await operand(node, 2));
        out = g.op('Gemm', inputs, { transB: at('layout') === 'transposed' ? 0 : 1 }, hint(node));
        break;
      }
      case 'output': {
        if (outputs++ > 0) throw new ChessError('ONNX_EXPORT_OP', 'the module has more than one output; the ONNX export takes one (the logits)', {});
        const logits = await operand(node, 0);
        g.rename(logits, 'logits');
        g.output('logits', 'float', ['T', node.operands[0] instanceof Node ? (node.operands[0].result.shape[1] as number) : 0]);
        continue;
      }
      default:
        throw new ChessError(
          'ONNX_EXPORT_OP',
          `op '${node.op}' ${describe(node)} has no ONNX lowering (supported: input, embedding, rms_norm, linear, activation, add, mul, rope, attention, threshold, sparse_linear_out, sparse_linear_in, output)`,
          { op: node.op, node: node.name },
        );
    }
    values.set(node, out);
  }
  for (const m of masks) g.output(m, 'bool', ['T', 'N']);
  const model: onnx.IModelProto = {
    irVersion: 8,
    producerName: 'chess-toolchain',
    producerVersion: '0.1.0 (@chess/codegen-onnx)',
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    graph: { name: module.arch, node: g.nodes, initializer: g.initializers, input: g.inputs, output: g.outputs },
    metadataProps: [
      { key: 'chess.arch', value: module.arch },
      ...[...module.hparams].map(([k, v]) => ({ key: `chess.hparam.${k}`, value: String(v) })),
      ...module.meta.filter((e) => e.key.startsWith('chess.') && typeof e.value !== 'object').map((e) => ({ key: e.key, value: String(e.value) })),
    ],
  };
  return { model, masks, weightBytes };
}

/**
 * Write a module as an ONNX file, atomically (temporary file, then rename; the
 * external data file too). The output may not be one of the module's sources.
 */
export async function exportOnnx(module: Module, out: string, options: ExportOnnxOptions = {}): Promise<ExportOnnxResult> {
  const { model, masks, weightBytes } = await buildOnnxModel(module, options);
  const external = options.externalData === true || ((options.externalData ?? 'auto') === 'auto' && weightBytes > EMBEDDED_LIMIT_BYTES);
  let externalDataPath: string | undefined;
  if (external) {
    externalDataPath = `${out}.data`;
    const location = basename(externalDataPath);
    await withAtomicOutput(externalDataPath, async (file) => {
      let offset = 0;
      for (const t of model.graph!.initializer!) {
        const raw = t.rawData as Uint8Array;
        if (raw.byteLength < 1024) continue;
        const pad = (64 - (offset % 64)) % 64;
        if (pad) await file.write(new Uint8Array(pad));
        offset += pad;
        await file.write(raw);
        t.rawData = undefined;
        t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
        t.externalData = [
          { key: 'location', value: location },
          { key: 'offset', value: String(offset) },
          { key: 'length', value: String(raw.byteLength) },
        ];
        offset += raw.byteLength;
      }
    });
  }
  const bytes = onnx.ModelProto.encode(model).finish();
  await withAtomicOutput(out, async (file) => {
    await file.write(bytes);
  });
  const graph = model.graph!;
  await stat(out);
  return { path: out, ...(externalDataPath && { externalDataPath }), nodes: graph.node!.length, initializers: graph.initializer!.length, weightBytes, masks };
}

function describe(node: Node): string {
  return `${node.name ? `%${node.name}` : `#${node.id}`}${node.layer !== undefined ? ` (layer ${node.layer})` : ''}`;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

function activation(g: GraphBuilder, x: string, fn: string, hint: string): string {
  if (fn === 'silu') return g.op('Mul', [x, g.op('Sigmoid', [x], {}, `${hint}/sigmoid`)], {}, hint);
  if (fn === 'gelu_tanh') {
    // 0.5 x (1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2))), as ggml_gelu's tanh form
    const x2 = g.op('Mul', [x, x], {}, `${hint}/x2`);
    const inner = g.op('Mul', [g.op('Mul', [x, g.floats([SQRT_2_OVER_PI], [])]), g.op('Add', [g.floats([1], []), g.op('Mul', [x2, g.floats([0.044715], [])])])], {}, `${hint}/inner`);
    const t = g.op('Add', [g.floats([1], []), g.op('Tanh', [inner], {}, `${hint}/tanh`)]);
    return g.op('Mul', [g.op('Mul', [x, g.floats([0.5], [])]), t], {}, hint);
  }
  throw new ChessError('ONNX_EXPORT_OP', `activation '${fn}' has no ONNX lowering (supported: silu, gelu_tanh)`, { fn });
}

/** Positions 0..T-1 as float [T, 1], from the token count. */
function positions(g: GraphBuilder, tokens: string | undefined): string {
  if (!tokens) throw new ChessError('ONNX_EXPORT_OP', 'rope/attention before the input op', {});
  const t = g.op('Shape', [tokens], {}, 'seq_len');
  const scalarT = g.op('Squeeze', [t, g.int64s([0])], {}, 'seq_len_scalar');
  const range = g.op('Range', [g.int64s([0], []), scalarT, g.int64s([1], [])], {}, 'positions');
  return g.op('Unsqueeze', [g.op('Cast', [range], { to: onnx.TensorProto.DataType.FLOAT }, 'positions_f'), g.int64s([1])], {}, 'positions_col');
}

/**
 * ggml_rope_ext at positions 0..T-1. Every term of ggml's theta is
 * pos * (a factor of the pair index), YaRN's ramp included, so one float
 * factor per pair folds base, frequency factors, freq_scale and the ramp;
 * attn_factor (times YaRN's mscale) scales cos and sin.
 */
function rope(g: GraphBuilder, node: Node, x: string, tokens: string | undefined, freqFactors: Float32Array | undefined): string {
  const at = (k: string) => node.attr(k) as number;
  const hd = at('head_dim');
  const nRot = at('n_rot');
  const width = node.result.shape[1] as number;
  const nHeads = width / hd;
  const neox = node.attr('mode') === 'neox';
  const freqBase = at('freq_base');
  const freqScale = at('freq_scale');
  const extFactor = at('ext_factor');
  let mscale = at('attn_factor');
  const [lo, hi] = yarnCorrDims(nRot, at('n_ctx_orig'), freqBase, at('beta_fast'), at('beta_slow'));
  if (extFactor !== 0) mscale *= 1 + 0.1 * Math.log(1 / freqScale);
  const inv = new Array<number>(nRot / 2);
  for (let i = 0; i < nRot / 2; i++) {
    const extrap = Math.pow(freqBase, (-2 * i) / nRot) / (freqFactors ? freqFactors[i]! : 1);
    let factor = freqScale * extrap;
    if (extFactor !== 0) {
      const y = (i - lo) / Math.max(0.001, hi - lo);
      const mix = (1 - Math.min(1, Math.max(0, y))) * extFactor;
      factor = factor * (1 - mix) + extrap * mix;
    }
    inv[i] = factor;
  }
  const key = `rope_${nRot}_${neox}_${inv.join(',')}_${mscale}`;
  const cache = ropeCache.get(g) ?? new Map<string, [string, string]>();
  ropeCache.set(g, cache);
  let cs = cache.get(key);
  if (!cs) {
    const theta = g.op('Mul', [positions(g, tokens), g.floats(inv, [1, nRot / 2])], {}, 'rope/theta');
    let cos = g.op('Cos', [theta], {}, 'rope/cos');
    let sin = g.op('Sin', [theta], {}, 'rope/sin');
    if (mscale !== 1) {
      cos = g.op('Mul', [cos, g.floats([mscale], [])], {}, 'rope/cos_scaled');
      sin = g.op('Mul', [sin, g.floats([mscale], [])], {}, 'rope/sin_scaled');
    }
    // normal: pairs (2i, 2i+1) -> [T, 1, n_rot/2, 1]; neox: (i, i + n_rot/2) -> [T, 1, 1, n_rot/2]
    const axes = g.int64s(neox ? [1, 2] : [1, 3]);
    cs = [g.op('Unsqueeze', [cos, axes], {}, 'rope/cos_b'), g.op('Unsqueeze', [sin, axes], {}, 'rope/sin_b')];
    cache.set(key, cs);
  }
  const h = node.name ?? 'rope';
  let rot = x;
  let pass: string | undefined;
  if (nRot < hd) {
    const x3 = g.op('Reshape', [x, g.int64s([0, nHeads, hd])], {}, `${h}/heads`);
    const parts = g.opN('Split', [x3, g.int64s([nRot, hd - nRot])], 2, { axis: 2 }, `${h}/split_rot`);
    rot = parts[0]!;
    pass = parts[1]!;
  }
  const shape = neox ? [0, nHeads, 2, nRot / 2] : [0, nHeads, nRot / 2, 2];
  const x4 = g.op('Reshape', [rot, g.int64s(shape)], {}, `${h}/pairs`);
  const [x0, x1] = g.opN('Split', [x4, g.int64s([1, 1])], 2, { axis: neox ? 2 : 3 }, `${h}/halves`);
  const [c, s] = cs;
  const y0 = g.op('Sub', [g.op('Mul', [x0!, c]), g.op('Mul', [x1!, s])], {}, `${h}/y0`);
  const y1 = g.op('Add', [g.op('Mul', [x0!, s]), g.op('Mul', [x1!, c])], {}, `${h}/y1`);
  let y = g.op('Concat', [y0, y1], { axis: neox ? 2 : 3 }, `${h}/pairs_out`);
  if (pass) y = g.op('Concat', [g.op('Reshape', [y, g.int64s([0, nHeads, nRot])]), pass], { axis: 2 }, `${h}/joined`);
  return g.op('Reshape', [y, g.int64s([0, width])], {}, h);
}
const ropeCache = new WeakMap<GraphBuilder, Map<string, [string, string]>>();

function yarnCorrDims(nDims: number, nCtxOrig: number, freqBase: number, betaFast: number, betaSlow: number): [number, number] {
  const corrDim = (nRot: number) => (nDims * Math.log(nCtxOrig / (nRot * 2 * Math.PI))) / (2 * Math.log(freqBase));
  return [Math.max(0, Math.floor(corrDim(betaFast))), Math.min(nDims - 1, Math.ceil(corrDim(betaSlow)))];
}

const maskCache = new WeakMap<GraphBuilder, string>();

function attention(g: GraphBuilder, node: Node, q: string, k: string, v: string, tokens: string | undefined): string {
  const at = (key: string) => node.attr(key) as number;
  const nHead = at('n_head');
  const nKv = at('n_head_kv');
  const hd = at('head_dim');
  const group = nHead / nKv;
  const h = node.name ?? 'attention';
  const heads = (x: string, n: number, name: string) => g.op('Transpose', [g.op('Reshape', [x, g.int64s([0, n, hd])], {}, `${h}/${name}_heads`)], { perm: [1, 0, 2] }, `${h}/${name}_hth`);
  // kv head j serves query heads j*group .. j*group+group-1: repeat each kv head `group` times, in place
  const expand = (x: string, name: string) => {
    if (group === 1) return heads(x, nKv, name);
    const x4 = g.op('Reshape', [x, g.int64s([0, nKv, 1, hd])], {}, `${h}/${name}_kv`);
    const rep = g.op('Tile', [x4, g.int64s([1, 1, group, 1])], {}, `${h}/${name}_rep`);
    return heads(g.op('Reshape', [rep, g.int64s([0, nHead * hd])]), nHead, name);
  };
  const qh = heads(q, nHead, 'q');
  const kh = expand(k, 'k');
  const vh = expand(v, 'v');
  const scores = g.op('Mul', [g.op('MatMul', [qh, g.op('Transpose', [kh], { perm: [0, 2, 1] })], {}, `${h}/kq`), g.floats([at('scale')], [])], {}, `${h}/kq_scaled`);
  let masked = scores;
  if (node.attr('causal') !== false) {
    let mask = maskCache.get(g);
    if (!mask) {
      const pos = positions(g, tokens);
      const row = g.op('Transpose', [pos], { perm: [1, 0] }, 'causal/cols');
      const future = g.op('Greater', [row, pos], {}, 'causal/future');
      mask = g.op('Where', [future, g.floats([-Infinity], []), g.floats([0], [])], {}, 'causal/mask');
      maskCache.set(g, mask);
    }
    masked = g.op('Add', [scores, mask], {}, `${h}/kq_masked`);
  }
  const p = g.op('Softmax', [masked], { axis: -1 }, `${h}/softmax`);
  const o = g.op('Transpose', [g.op('MatMul', [p, vh], {}, `${h}/kqv`)], { perm: [1, 0, 2] }, `${h}/kqv_t`);
  return g.op('Reshape', [o, g.int64s([0, nHead * hd])], {}, h);
}

export type { Weight };
