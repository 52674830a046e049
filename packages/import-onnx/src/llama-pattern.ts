/**
 * Recognise a Llama-family decoder in an ONNX graph by following its residual
 * stream: embedding Gather -> per layer [RMSNorm -> q/k/v projections ->
 * (rotary, attention) -> o projection -> residual Add -> RMSNorm -> gate/up
 * projections -> SiLU(gate) * up -> down projection -> residual Add] -> final
 * RMSNorm -> output head (separate, or tied to the embedding).
 *
 * Recognised forms: RMSNorm decomposed (Pow or Mul, ReduceMean, Add, Sqrt,
 * Reciprocal or Div, Mul) or fused (SimplifiedLayerNormalization,
 * RMSNormalization); projections as MatMul by an [in, out] initializer, MatMul
 * by Transpose of an [out, in] one, or Gemm (transB 0/1); SiLU as
 * x * Sigmoid(x); rotary embeddings as exported by transformers (rotate_half:
 * Slice, Neg, Concat; inverse frequencies as a constant); attention decomposed
 * (MatMul, Softmax, MatMul) with grouped kv heads. Anything else fails with
 * ONNX_STRUCTURE, naming the node, its op type and what was expected.
 */
import { ChessError } from '@chess/core';
import { GraphIndex } from './graph-index.ts';
import { nodeLabel, type TensorData } from './onnx-file.ts';
import type { onnx } from './onnx-proto.ts';
import { floatValues } from './tensor-values.ts';

export interface LinearMatch {
  readonly node: onnx.INodeProto;
  readonly input: string;
  readonly output: string;
  readonly weight: TensorData;
  /** `in_out`: stored [n_in, n_out] (MatMul's B); `out_in`: ggml's rows [n_out, n_in]. */
  readonly layout: 'in_out' | 'out_in';
  readonly nIn: number;
  readonly nOut: number;
}

export interface NormMatch {
  readonly input: string;
  readonly output: string;
  /** From a fused norm's attribute; NaN when it is the constant `epsTensor`. */
  readonly eps: number;
  readonly epsTensor?: TensorData;
  readonly weight: TensorData;
  readonly node: onnx.INodeProto;
}

export interface LayerMatch {
  readonly attnNorm: NormMatch;
  readonly q: LinearMatch;
  readonly k: LinearMatch;
  readonly v: LinearMatch;
  readonly o: LinearMatch;
  readonly ffnNorm: NormMatch;
  readonly gate: LinearMatch;
  readonly up: LinearMatch;
  readonly down: LinearMatch;
}

export interface DecoderMatch {
  readonly embedding: TensorData;
  readonly layers: readonly LayerMatch[];
  readonly outputNorm: NormMatch;
  /** Absent when the head is tied to the embedding. */
  readonly head?: LinearMatch;
  readonly nVocab: number;
  readonly nEmbd: number;
  readonly nFf: number;
  readonly nHead: number;
  readonly nHeadKv: number;
  readonly headDim: number;
  readonly rmsEps: number;
  readonly ropeFreqBase: number;
  readonly ropeFreqScale: number;
  /** `neox`: rotate_half pairs (i, i + d/2), as transformers computes; `normal`: adjacent pairs. */
  readonly ropeMode: 'normal' | 'neox';
}

/** Ops the importer knows the meaning of; any other op fails before matching. */
export const KNOWN_OPS = new Set([
  'Add', 'And', 'Cast', 'Concat', 'Constant', 'ConstantOfShape', 'Cos', 'CumSum', 'Div', 'Equal', 'Expand', 'Flatten', 'Gather', 'GatherND',
  'Gemm', 'Greater', 'GreaterOrEqual', 'Identity', 'IsNaN', 'Less', 'LessOrEqual', 'MatMul', 'Max', 'Min', 'Mul', 'Neg', 'Not', 'Or', 'Pow',
  'Range', 'Reciprocal', 'ReduceMean', 'Reshape', 'RMSNormalization', 'Shape', 'Sigmoid', 'SimplifiedLayerNormalization', 'Sin', 'Slice',
  'Softmax', 'Split', 'Sqrt', 'Squeeze', 'Sub', 'Tile', 'Transpose', 'Trilu', 'Unsqueeze', 'Where',
]);

export async function matchDecoder(g: GraphIndex): Promise<DecoderMatch> {
  for (const node of g.file.graph.node) {
    if ((node.domain && node.domain !== 'ai.onnx' && node.domain !== 'com.microsoft') || !KNOWN_OPS.has(node.opType!)) {
      throw new ChessError(
        'ONNX_UNSUPPORTED_OP',
        `${g.file.path}: ${nodeLabel(node)}${node.domain ? ` of domain '${node.domain}'` : ''} is not supported by the importer (supported: ${[...KNOWN_OPS].join(', ')})`,
        { path: g.file.path, node: node.name, opType: node.opType, domain: node.domain },
      );
    }
  }
  // the embedding: Gather of a 2-D float initializer by the token ids (a graph input)
  const gather = g.file.graph.node.find((n) => n.opType === 'Gather' && g.file.initializers.has(n.input![0]!) && g.file.inputs.has(n.input![1]!) && g.file.initializers.get(n.input![0]!)!.dims.length === 2);
  if (!gather) g.fail(undefined, 'a Gather of a 2-D embedding initializer by the token-id graph input');
  const embedding = g.file.initializers.get(gather.input![0]!)!;
  const [nVocab, nEmbd] = embedding.dims as [number, number];

  const layers: LayerMatch[] = [];
  let h = gather.output![0]!;
  let ropeSource: onnx.INodeProto | undefined;
  let ropeMode: 'normal' | 'neox' | undefined;
  for (;;) {
    const norm = matchNorm(g, h, nEmbd);
    const lins = linearsOf(g, norm.output);
    const isHead = lins.length === 1 || (lins.length === 0 && tiedHead(g, norm.output, embedding) !== undefined);
    if (isHead) {
      const head = lins[0] ?? tiedHead(g, norm.output, embedding)!;
      const tied = head.weight.name === embedding.name;
      if (head.nOut !== nVocab) g.fail(head.node, `the output head to have ${nVocab} outputs (the embedding's vocabulary), got ${head.nOut}`);
      checkReachesOutput(g, head);
      if (layers.length === 0) g.fail(norm.node, 'at least one decoder layer before the final norm');
      const l0 = layers[0]!;
      const [freqBase, freqScale, headDim] = await ropeFrequencies(g, ropeSource!);
      if (l0.q.nOut % headDim !== 0 || l0.k.nOut % headDim !== 0) g.fail(l0.q.node, `q/k widths (${l0.q.nOut}, ${l0.k.nOut}) to be multiples of head_dim ${headDim} (from the rotary frequencies)`);
      return {
        embedding,
        layers,
        outputNorm: norm,
        ...(!tied && { head }),
        nVocab,
        nEmbd,
        nFf: l0.gate.nOut,
        nHead: l0.q.nOut / headDim,
        nHeadKv: l0.k.nOut / headDim,
        headDim,
        rmsEps: norm.epsTensor ? (await floatValues(g.file, norm.epsTensor))[0]! : norm.eps,
        ropeFreqBase: freqBase,
        ropeFreqScale: freqScale,
        ropeMode: ropeMode!,
      };
    }
    const il = layers.length;
    if (lins.length !== 3) g.fail(norm.node, `layer ${il}: the attention norm's output to feed three projections (q, k, v), found ${lins.length}`);
    const roles = lins.map((l) => attentionRole(g, l));
    const pick = (role: 'q' | 'k' | 'v') => {
      const found = lins.filter((_, i) => roles[i] === role);
      if (found.length !== 1) g.fail(lins[0]!.node, `layer ${il}: exactly one ${role} projection among q/k/v (roles found: ${roles.join(', ')})`);
      return found[0]!;
    };
    const q = pick('q');
    const k = pick('k');
    const v = pick('v');
    if (k.nOut !== v.nOut) g.fail(v.node, `layer ${il}: k and v projections of the same width (${k.nOut} vs ${v.nOut})`);
    if (il === 0) {
      const rotary = findRotary(g, q.output);
      if (!rotary) g.fail(q.node, 'rotary embeddings on the q projection (rotate_half: Slice, Neg, Concat, multiplied by Cos/Sin tables)');
      ropeSource = rotary.cos;
      ropeMode = rotary.mode;
    }
    const [o, h1] = residual(g, h, il, 'attention output');
    const ffnNorm = matchNorm(g, h1, nEmbd);
    const ffn = linearsOf(g, ffnNorm.output);
    if (ffn.length !== 2) g.fail(ffnNorm.node, `layer ${il}: the FFN norm's output to feed two projections (gate, up), found ${ffn.length}`);
    const gateIdx = ffn.findIndex((l) => siluOf(g, l.output) !== undefined);
    if (gateIdx < 0) g.fail(ffn[0]!.node, `layer ${il}: one FFN projection (the gate) to feed SiLU (x * Sigmoid(x))`);
    const gate = ffn[gateIdx]!;
    const up = ffn[1 - gateIdx]!;
    const act = siluOf(g, gate.output)!;
    const par = g.uses(act).find((n) => n.opType === 'Mul' && n.input!.includes(up.output));
    if (!par) g.fail(g.producer.get(act), `layer ${il}: SiLU(gate) multiplied by the up projection`);
    const downs = linearsOf(g, par.output![0]!);
    if (downs.length !== 1) g.fail(par, `layer ${il}: the gated product to feed one down projection, found ${downs.length}`);
    const [down, h2] = residual(g, h1, il, 'FFN output');
    if (down.node !== downs[0]!.node) g.fail(down.node, `layer ${il}: the residual add after the FFN to add the down projection`);
    if (o.nIn !== q.nOut || down.nIn !== gate.nOut || gate.nOut !== up.nOut) g.fail(o.node, `layer ${il}: consistent projection widths`);
    layers.push({ attnNorm: norm, q, k, v, o, ffnNorm, gate, up, down });
    h = h2;
  }
}

/** The RMSNorm consuming the residual value `h`. */
function matchNorm(g: GraphIndex, h: string, d: number): NormMatch {
  const uses = g.uses(h);
  const fused = uses.find((n) => n.opType === 'SimplifiedLayerNormalization' || n.opType === 'RMSNormalization');
  if (fused) {
    const weight = g.constant(fused.input![1]!);
    if (!weight || weight.dims.reduce((a, b) => a * b, 1) !== d) g.fail(fused, `a norm scale initializer of ${d} values`);
    return { input: h, output: fused.output![0]!, eps: g.attrFloat(fused, 'epsilon', 1e-5), weight, node: fused };
  }
  const sq = uses.find((n) => (n.opType === 'Pow' && n.input![0] === h) || (n.opType === 'Mul' && n.input![0] === h && n.input![1] === h));
  if (!sq) g.fail(uses[0] ?? g.producer.get(h), `an RMSNorm of '${h}' (Pow(x, 2) or Mul(x, x), ReduceMean, Add eps, Sqrt, Reciprocal, Mul; or SimplifiedLayerNormalization/RMSNormalization)`);
  const one = (name: string, op: string[]): onnx.INodeProto => {
    const found = g.uses(name).filter((n) => op.includes(n.opType!));
    if (found.length !== 1) g.fail(g.producer.get(name), `RMSNorm step ${op.join(' or ')} after it`);
    return found[0]!;
  };
  const mean = one(sq.output![0]!, ['ReduceMean']);
  const addEps = one(mean.output![0]!, ['Add']);
  const epsT = g.constant(addEps.input!.find((i) => i !== mean.output![0])!);
  if (!epsT) g.fail(addEps, 'RMSNorm epsilon as a constant');
  const sqrt = one(addEps.output![0]!, ['Sqrt']);
  let normed: string;
  const next = one(sqrt.output![0]!, ['Reciprocal', 'Div']);
  if (next.opType === 'Reciprocal') {
    const mul = g.uses(next.output![0]!).find((n) => n.opType === 'Mul' && n.input!.includes(h));
    if (!mul) g.fail(next, 'x * 1/sqrt(mean + eps)');
    normed = mul.output![0]!;
  } else if (next.input![0] === h) {
    normed = next.output![0]!;
  } else {
    const mul = g.uses(next.output![0]!).find((n) => n.opType === 'Mul' && n.input!.includes(h));
    if (!mul) g.fail(next, 'x * (1 / sqrt(mean + eps))');
    normed = mul.output![0]!;
  }
  const scale = g.uses(normed).find((n) => n.opType === 'Mul' && n.input!.some((i) => i !== normed && g.constant(i)?.dims.reduce((a, b) => a * b, 1) === d));
  if (!scale) g.fail(g.producer.get(normed), `the normalised value multiplied by a norm scale of ${d} values`);
  const weight = g.constant(scale.input!.find((i) => i !== normed)!)!;
  return { input: h, output: scale.output![0]!, eps: Number.NaN, epsTensor: epsT, weight, node: scale };
}

/** Projections reading `x`: MatMul/Gemm by a 2-D initializer (possibly through a Transpose). */
function linearsOf(g: GraphIndex, x: string): LinearMatch[] {
  const out: LinearMatch[] = [];
  for (const n of g.uses(x)) {
    const m = asLinear(g, n, x);
    if (m) out.push(m);
  }
  return out;
}

function asLinear(g: GraphIndex, n: onnx.INodeProto, x: string): LinearMatch | undefined {
  if ((n.opType !== 'MatMul' && n.opType !== 'Gemm') || n.input![0] !== x) return undefined;
  let wName = n.input![1]!;
  let transposed = n.opType === 'Gemm' && g.attrInt(n, 'transB', 0) === 1;
  const p = g.producer.get(wName);
  if (!g.constant(wName) && p?.opType === 'Transpose' && g.constant(p.input![0]!)) {
    const perm = g.attrInts(p, 'perm');
    if (perm && (perm[0] !== 1 || perm[1] !== 0)) return undefined;
    wName = p.input![0]!;
    transposed = !transposed;
  }
  const weight = g.constant(wName);
  if (!weight || weight.dims.length !== 2) return undefined;
  if (n.opType === 'Gemm' && n.input!.length > 2 && n.input![2]) g.fail(n, 'a projection without bias (biases are not supported yet)');
  const [a, b] = weight.dims as [number, number];
  return { node: n, input: x, output: n.output![0]!, weight, layout: transposed ? 'out_in' : 'in_out', nIn: transposed ? b : a, nOut: transposed ? a : b };
}

/** Tied head: MatMul(x, Transpose(embedding)) or Gemm(x, embedding, transB=1). */
function tiedHead(g: GraphIndex, x: string, embedding: TensorData): LinearMatch | undefined {
  for (const n of g.uses(x)) {
    const m = asLinear(g, n, x);
    if (m && m.weight.name === embedding.name) return m;
  }
  return undefined;
}

function checkReachesOutput(g: GraphIndex, head: LinearMatch): void {
  const outputs = new Set(g.file.graph.output.map((o) => o.name));
  let v = head.output;
  for (let i = 0; i < 8; i++) {
    if (outputs.has(v)) return;
    const next = g.uses(v).find((n) => n.opType === 'Reshape' || n.opType === 'Identity' || n.opType === 'Cast' || n.opType === 'Squeeze');
    if (!next) break;
    v = next.output![0]!;
  }
  g.fail(head.node, 'the output head to be the graph output (logits), directly or through Reshape/Identity/Cast');
}

/** `[projection, new residual]`: the residual Add of `h` with a projection's output. */
function residual(g: GraphIndex, h: string, il: number, what: string): [LinearMatch, string] {
  for (const add of g.uses(h)) {
    if (add.opType !== 'Add') continue;
    const other = add.input!.find((i) => i !== h);
    const p = other && g.producer.get(other);
    if (!p) continue;
    const m = asLinear(g, p, p.input![0]!);
    if (m) return [m, add.output![0]!];
  }
  return g.fail(g.producer.get(h), `layer ${il}: a residual Add of this value with the ${what} projection`);
}

function siluOf(g: GraphIndex, x: string): string | undefined {
  const sig = g.uses(x).find((n) => n.opType === 'Sigmoid');
  if (!sig) return undefined;
  const mul = g.uses(sig.output![0]!).find((n) => n.opType === 'Mul' && n.input!.includes(x));
  return mul?.output![0];
}

/**
 * q, k or v, from where the projection's output flows: the first
 * attention MatMul (no initializer operand) reached reads q as its first
 * operand and k as its second; v is the second operand of the MatMul that
 * applies the softmax.
 */
function attentionRole(g: GraphIndex, lin: LinearMatch): 'q' | 'k' | 'v' | 'unknown' {
  const seen = new Set<string>();
  const queue = [lin.output];
  while (queue.length > 0 && seen.size < 200) {
    const v = queue.shift()!;
    if (seen.has(v)) continue;
    seen.add(v);
    for (const n of g.uses(v)) {
      if (n.opType === 'MatMul' && !n.input!.some((i) => g.constant(i))) {
        const idx = n.input!.indexOf(v);
        if (idx === 0) return 'q';
        return softmaxBefore(g, n.input![0]!) ? 'v' : 'k';
      }
      if (n.opType === 'Softmax') continue;
      for (const o of n.output ?? []) queue.push(o);
    }
  }
  return 'unknown';
}

function softmaxBefore(g: GraphIndex, x: string): boolean {
  let p = g.producer.get(x);
  for (let i = 0; i < 6 && p; i++) {
    if (p.opType === 'Softmax') return true;
    p = g.producer.get(p.input![p.opType === 'Where' ? 2 : 0]!);
  }
  return false;
}

/** The rotary form applied to q: rotate_half (Neg then Concat) with a Cos table. */
function findRotary(g: GraphIndex, q: string): { mode: 'neox'; cos: onnx.INodeProto } | undefined {
  const seen = new Set<string>();
  const queue = [q];
  let neg = false;
  let cos: onnx.INodeProto | undefined;
  while (queue.length > 0 && seen.size < 60) {
    const v = queue.shift()!;
    if (seen.has(v)) continue;
    seen.add(v);
    for (const n of g.uses(v)) {
      if (n.opType === 'MatMul' && !n.input!.some((i) => g.constant(i))) continue;
      if (n.opType === 'Neg') neg = true;
      if (n.opType === 'Mul') {
        for (const i of n.input!) {
          const src = tableSource(g, i);
          if (src) cos = src;
        }
      }
      for (const o of n.output ?? []) queue.push(o);
    }
  }
  return neg && cos ? { mode: 'neox', cos } : undefined;
}

/** The Cos node behind a (reshaped) cos table. */
function tableSource(g: GraphIndex, x: string): onnx.INodeProto | undefined {
  let p = g.producer.get(x);
  for (let i = 0; i < 6 && p; i++) {
    if (p.opType === 'Cos') return p;
    if (!['Unsqueeze', 'Reshape', 'Cast', 'Expand', 'Slice', 'Gather', 'Identity', 'Mul'].includes(p.opType!)) return undefined;
    const next = p.input!.find((inp) => !g.constant(inp));
    p = next ? g.producer.get(next) : undefined;
  }
  return undefined;
}

/**
 * `[freq_base, freq_scale, head_dim]` from the inverse frequencies behind the
 * Cos table: inv[i] = freq_scale * base^(-2i/d), i < d/2.
 */
async function ropeFrequencies(g: GraphIndex, cos: onnx.INodeProto): Promise<[number, number, number]> {
  const seen = new Set<string>();
  const queue = [...cos.input!];
  while (queue.length > 0 && seen.size < 40) {
    const v = queue.shift()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const c = g.constant(v);
    if (c && c.dims.reduce((a, b) => a * b, 1) >= 2 && (c.dataType === 1 || c.dataType === 10 || c.dataType === 11)) {
      const inv = await floatValues(g.file, c);
      const n = inv.length;
      const d = 2 * n;
      const scale = inv[0]!;
      // from the last entry (the most digits); exporters compute it from a round base in float32
      const base = Number(Math.pow(inv[n - 1]! / inv[0]!, -d / (2 * (n - 1))).toPrecision(6));
      // every frequency must follow the one base (else: a scaling scheme we do not read)
      for (let i = 0; i < n; i++) {
        const want = scale * Math.pow(base, (-2 * i) / d);
        if (Math.abs(inv[i]! - want) > 1e-4 * Math.abs(want) + 1e-7) g.fail(cos, `inverse rotary frequencies freq_scale * base^(-2i/d) (entry ${i} is ${inv[i]}, expected ${want}; scaled RoPE variants are not supported)`);
      }
      return [base, scale, d];
    }
    const p = g.producer.get(v);
    if (p) queue.push(...p.input!.filter((i) => i !== ''));
  }
  return g.fail(cos, 'the rotary inverse frequencies as a constant (an initializer behind the Cos table)');
}
