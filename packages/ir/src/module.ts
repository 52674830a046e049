/**
 * The module: metadata, weight table, and a graph of SSA nodes in program
 * order. Nodes point at their operands directly (a value is the node that
 * defines it); weights are referenced by name (`@blk.0.ffn_up.weight`) and
 * never copied into the IR.
 */
import { IrErrorCode, irError } from './errors.ts';
import { inferNodeType } from './infer.ts';
import { Node, type Operand, WeightRef } from './node.ts';
import { getOp } from './registry.ts';
import type { AttrValue } from './schema.ts';
import type { DType } from './types.ts';


/** Where a weight's bytes live. The IR never holds a copy of file-backed data. */
export type WeightSource =
  /** Bytes in a source file of the module (`sources`), at an absolute offset. */
  | { readonly kind: 'file'; readonly file: string; readonly offset?: number; readonly byteLength?: number }
  /**
   * Bytes produced by a pass (thresholds, transposed copies): a typed array, or
   * a function producing it on demand so large derived tensors need not all be
   * resident at once. `data` is absent in a module read back from text.
   */
  | { readonly kind: 'memory'; readonly data?: WeightData };

export type WeightData = ArrayBufferView | (() => ArrayBufferView | Promise<ArrayBufferView>);

export interface Weight {
  /** Tensor name, as in the GGUF file (`blk.0.ffn_up.weight`). */
  readonly name: string;
  readonly dtype: DType;
  /** Outermost first (see types.ts); a GGUF `ne` reversed. */
  readonly shape: readonly number[];
  readonly source: WeightSource;
  /** Carried through although no op refers to it; otherwise the verifier rejects unused weights. */
  readonly keep?: boolean;
}

/** A value of the opaque metadata: strings, numbers, bigints, booleans and arrays of them. */
export type MetaLiteral = string | number | bigint | boolean | readonly MetaLiteral[] | TypedArray;

/** Typed arrays are accepted as metadata arrays (read back from text as plain arrays). */
export type TypedArray =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/**
 * One opaque key/value carried from import to emit. `type` is the source
 * format's type name (e.g. `u32`, `array<string>`); the IR only stores it.
 */
export interface MetaEntry {
  readonly key: string;
  readonly type: string;
  readonly value: MetaLiteral;
}

export type HParamValue = number | string | boolean;

export class Module {
  /** Architecture name, as the source format spells it (`llama`, `qwen2`). */
  arch: string;
  /** Hyperparameters the graph was built from (n_layer, n_embd ...), in insertion order. */
  readonly hparams = new Map<string, HParamValue>();
  /** Every other metadata key/value of the source, in source order. */
  meta: MetaEntry[] = [];
  /** Source files by id (`model` -> path). */
  readonly sources = new Map<string, string>();
  /** Weight table in insertion order. */
  readonly weights = new Map<string, Weight>();
  /** Nodes in program order: every operand is defined earlier. */
  nodes: Node[] = [];

  constructor(arch = 'llama') {
    this.arch = arch;
  }

  addSource(id: string, path: string): string {
    if (this.sources.has(id)) throw irError(IrErrorCode.MODULE_DUPLICATE_SOURCE, `source '${id}' is already declared`, { source: id });
    this.sources.set(id, path);
    return id;
  }

  addWeight(weight: Weight): WeightRef {
    if (this.weights.has(weight.name)) {
      throw irError(IrErrorCode.MODULE_DUPLICATE_WEIGHT, `weight @${weight.name} is already in the weight table`, { weight: weight.name });
    }
    this.weights.set(weight.name, { ...weight, shape: [...weight.shape] });
    return new WeightRef(weight.name);
  }

  weight(name: string): Weight | undefined {
    return this.weights.get(name);
  }

  removeWeight(name: string): boolean {
    return this.weights.delete(name);
  }

  /**
   * Create a node (type inferred and checked against the schema, errors are
   * IR_VERIFY_*) and append it. A string operand names a weight.
   */
  add(op: string, operands: readonly (Operand | string)[], attrs: Record<string, AttrValue> = {}, name?: string): Node {
    const node = this.create(op, operands, attrs, name);
    this.nodes.push(node);
    return node;
  }

  /** Like `add`, without appending: the caller places the node (rewrites do). */
  create(op: string, operands: readonly (Operand | string)[], attrs: Record<string, AttrValue> = {}, name?: string): Node {
    const ops = operands.map((o) => (typeof o === 'string' ? new WeightRef(o) : o));
    const type = inferNodeType(this, op, ops, attrs, name !== undefined ? `%${name}` : `new ${op}`);
    return new Node(op, ops, { ...attrs }, type, name);
  }

  /** Replace every use of `from` by `to` (operands only). */
  replaceAllUses(from: Node, to: Node): void {
    for (const node of this.nodes) {
      for (let i = 0; i < node.operands.length; i++) if (node.operands[i] === from) node.operands[i] = to;
    }
  }

  /** Nodes of terminator ops (the roots: `output`). */
  roots(): Node[] {
    return this.nodes.filter((n) => getOp(n.op)?.terminator === true);
  }

  /** Names of the weights referred to by at least one node. */
  usedWeights(): Set<string> {
    const used = new Set<string>();
    for (const node of this.nodes) for (const o of node.operands) if (o instanceof WeightRef) used.add(o.name);
    return used;
  }

  /** A copy whose nodes can be rewritten without touching this module (weight data is shared). */
  clone(): Module {
    const copy = new Module(this.arch);
    for (const [k, v] of this.hparams) copy.hparams.set(k, v);
    copy.meta = [...this.meta];
    for (const [k, v] of this.sources) copy.sources.set(k, v);
    for (const [k, v] of this.weights) copy.weights.set(k, v);
    const map = new Map<Node, Node>();
    copy.nodes = this.nodes.map((n) => {
      const c = new Node(n.op, n.operands.map((o) => (o instanceof Node ? (map.get(o) ?? o) : o)), { ...n.attrs }, n.type, n.name);
      map.set(n, c);
      return c;
    });
    return copy;
  }
}
