/**
 * Reference interpreter for small inputs: runs a module on token ids and
 * returns the logits. Each op runs through a kernel registered per op name
 * (TF.js style): builtins in kernels/, later packages add theirs with
 * `registerKernel`. Arithmetic is float64; with `precision: 'f32'` every op
 * result (and every weight) is rounded to float32 with Math.fround.
 */
import { IrErrorCode, irError } from './errors.ts';
import { resolveAttrs } from './infer.ts';
import { BUILTIN_KERNELS } from './kernels/index.ts';
import type { Module } from './module.ts';
import { Node, WeightRef } from './node.ts';
import { getOp } from './registry.ts';
import type { AttrValue } from './schema.ts';
import { formatShape, resolveDim } from './types.ts';

/** A dense row-major tensor (last dimension contiguous). */
export interface Tensor {
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

export interface KernelContext {
  readonly node: Node;
  /** Attributes with schema defaults applied. */
  readonly attrs: Readonly<Record<string, AttrValue>>;
  /** One tensor per operand (values and weights alike), in operand order; optional absent ones are missing. */
  readonly inputs: readonly Tensor[];
  /** Token ids of the run (for `input`). */
  readonly tokens: readonly number[];
  /** Identity in f64 mode, Math.fround in f32 mode: for kernels that round intermediate steps. */
  readonly round: (x: number) => number;
  /** Shape of the result with every symbol bound. */
  readonly resultShape: readonly number[];
}

export type Kernel = (ctx: KernelContext) => Tensor;

const kernels = new Map<string, Kernel>(Object.entries(BUILTIN_KERNELS));

/** Register the reference kernel of an op added with `registerOp`. Same function twice is a no-op. */
export function registerKernel(op: string, kernel: Kernel): void {
  const existing = kernels.get(op);
  if (existing === kernel) return;
  if (existing) throw irError(IrErrorCode.KERNEL_DUPLICATE, `a reference kernel for op '${op}' is already registered`, { op });
  kernels.set(op, kernel);
}

export type WeightResolver = (name: string) => Float32Array | Float64Array;

export interface InterpretOptions {
  /** Token ids; binds the symbol of `input` (T). */
  readonly tokens: readonly number[] | Int32Array;
  /**
   * Dequantized weight values in the module's layout (row-major, last dim
   * contiguous = ggml ne0 innermost). Called once per weight.
   */
  readonly weights: WeightResolver;
  readonly precision?: 'f64' | 'f32';
  /** Return every intermediate value (keyed by node). */
  readonly keepValues?: boolean;
}

export interface InterpretResult {
  /** The operand of the first root (`output`): logits [T, n_vocab]. */
  readonly logits: Tensor;
  /** One tensor per root, in program order. */
  readonly outputs: readonly Tensor[];
  readonly values?: ReadonlyMap<Node, Tensor>;
}

export function interpret(module: Module, options: InterpretOptions): InterpretResult {
  const round = options.precision === 'f32' ? Math.fround : (x: number) => x;
  const tokens = Array.from(options.tokens);
  const bindings: Record<string, number> = {};
  for (const node of module.nodes) {
    if (node.op === 'input') bindSymbol(bindings, node, tokens.length);
  }
  const weightCache = new Map<string, Tensor>();
  const weightTensor = (name: string): Tensor => {
    let t = weightCache.get(name);
    if (t) return t;
    const w = module.weight(name);
    if (!w) throw irError(IrErrorCode.INTERP_WEIGHT, `weight @${name} is not in the weight table`, { weight: name });
    const raw = options.weights(name);
    const expected = w.shape.reduce((a, b) => a * b, 1);
    if (raw.length !== expected) {
      throw irError(IrErrorCode.INTERP_WEIGHT, `weight @${name} ${formatShape(w.shape)}: the resolver returned ${raw.length} values, expected ${expected}`, { weight: name });
    }
    const data = Float64Array.from(raw, round);
    t = { shape: w.shape, data };
    weightCache.set(name, t);
    return t;
  };

  const values = new Map<Node, Tensor>();
  const outputs: Tensor[] = [];
  for (const node of module.nodes) {
    const schema = getOp(node.op);
    const kernel = kernels.get(node.op);
    if (!schema || (!kernel && !schema.terminator)) {
      throw irError(IrErrorCode.INTERP_NO_KERNEL, `no reference kernel for op '${node.op}'; register one with registerKernel()`, { op: node.op });
    }
    const inputs = node.operands.map((o) => {
      if (o instanceof WeightRef) return weightTensor(o.name);
      const v = values.get(o);
      if (!v) throw irError(IrErrorCode.INTERP_INPUT, `operand of a '${node.op}' is not computed yet (run verify first)`, { op: node.op });
      return v;
    });
    if (schema.terminator) {
      outputs.push(inputs[0]!);
      continue;
    }
    const resultShape = node.result.shape.map((d) => resolveDim(d, bindings));
    const out = kernel!({ node, attrs: resolveAttrs(schema, node.attrs), inputs, tokens, round, resultShape });
    if (out.data.length !== resultShape.reduce((a, b) => a * b, 1)) {
      throw irError(IrErrorCode.INTERP_NO_KERNEL, `kernel of '${node.op}' returned ${out.data.length} values for shape ${formatShape(resultShape)}`, { op: node.op });
    }
    if (options.precision === 'f32') for (let i = 0; i < out.data.length; i++) out.data[i] = Math.fround(out.data[i]!);
    values.set(node, out);
  }
  if (outputs.length === 0) throw irError(IrErrorCode.INTERP_INPUT, 'the module has no output', {});
  return { logits: outputs[0]!, outputs, ...(options.keepValues && { values }) };
}

function bindSymbol(bindings: Record<string, number>, node: Node, n: number): void {
  const dim = node.result.shape[0];
  if (typeof dim === 'number') {
    if (dim !== n) throw irError(IrErrorCode.INTERP_INPUT, `the input has ${dim} positions, got ${n} token ids`, { expected: dim, actual: n });
  } else if (dim !== undefined) {
    bindings[dim] = n;
  }
}
