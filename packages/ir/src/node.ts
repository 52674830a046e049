/** SSA nodes and weight references: the vertices and leaves of the graph. */
import { IrErrorCode, irError } from './errors.ts';
import { getOp } from './registry.ts';
import type { AttrValue } from './schema.ts';
import type { TensorType } from './types.ts';

/** A reference to an entry of the weight table, printed `@name`. */
export class WeightRef {
  constructor(readonly name: string) {}
}

let nextNodeId = 0;

export class Node {
  /** Unique in the process, increasing with creation: a stable key for maps. */
  readonly id = nextNodeId++;

  constructor(
    public op: string,
    public operands: Operand[],
    public attrs: Record<string, AttrValue>,
    /** Result type; undefined for terminators (`output`). */
    public type: TensorType | undefined,
    /** Name hint for the printer (`%ffn_up.0`); unnamed values print as numbers. */
    public name?: string,
  ) {}

  /** Attribute value, falling back to the schema default. */
  attr(name: string): AttrValue | undefined {
    if (Object.hasOwn(this.attrs, name)) return this.attrs[name];
    return getOp(this.op)?.attrs[name]?.default;
  }

  get layer(): number | undefined {
    return this.attrs.layer as number | undefined;
  }

  /** Result type, for nodes known to have one. */
  get result(): TensorType {
    if (!this.type) throw irError(IrErrorCode.VERIFY_OPERAND_KIND, `op '${this.op}' has no result`, { op: this.op });
    return this.type;
  }
}

export type Operand = Node | WeightRef;
