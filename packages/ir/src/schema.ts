/**
 * The op schema: every op is declared once (operands with roles, attributes
 * with types and defaults, result-type inference, docs). The verifier, the
 * printer, the parser, the builder and the rewrite engine all work from it.
 */
import type { DType, DTypeKind, Shape, TensorType } from './types.ts';

/** An attribute value. `dim` attributes hold a size or a symbol (`T`). */
export type AttrValue = number | boolean | string;
export type Attrs = Readonly<Record<string, AttrValue>>;

/** `int`, `float`, `bool`, `string`, `dim`, or an enumeration of allowed strings. */
export type AttrType = 'int' | 'float' | 'bool' | 'string' | 'dim' | { readonly enum: readonly string[] };

export interface AttrSpec {
  readonly type: AttrType;
  /** Value when absent. An attribute without default and not `optional` is required. */
  readonly default?: AttrValue;
  /** May be absent and has no default (e.g. a rope scaling parameter that is off). */
  readonly optional?: boolean;
  readonly doc: string;
}

export type OperandRole = 'value' | 'weight';

export interface OperandSpec {
  readonly name: string;
  /** `value`: an SSA value (`%x`); `weight`: a reference into the weight table (`@name`). */
  readonly role: OperandRole;
  /** Optional operands come last; an absent one is simply not written. */
  readonly optional?: boolean;
  /** Dtype kinds accepted for this operand (default: any). */
  readonly dtypes?: readonly DTypeKind[];
  readonly doc: string;
}

/**
 * What `infer` sees: the type of each operand (undefined for an absent
 * optional one), the attributes with defaults applied, and checks that throw
 * IR_VERIFY_* errors naming the node, the op and the operand.
 */
export interface InferContext {
  readonly attrs: Attrs;
  /** Type of operand `i`; throws if it is absent. */
  type(i: number): TensorType;
  has(i: number): boolean;
  int(name: string): number;
  float(name: string): number;
  string(name: string): string;
  bool(name: string): boolean;
  /** Operand `i` must have exactly this rank. Returns its shape. */
  rank(i: number, rank: number): Shape;
  /** Operand `i` must have this shape (symbols compare by name). */
  shape(i: number, shape: Shape): void;
  /** Operand `i` must have one of these dtypes. */
  dtype(i: number, ...dtypes: DType[]): void;
  /** Fails with IR_VERIFY_CONSTRAINT unless `condition` holds (attribute values, divisibility ...). */
  check(condition: boolean, expectation: string): void;
  fail(expectation: string): never;
}

export interface OpSchema {
  readonly name: string;
  /** One line: what the op computes, in llama.cpp terms where it has one. */
  readonly summary: string;
  readonly operands: readonly OperandSpec[];
  readonly attrs: Readonly<Record<string, AttrSpec>>;
  /** A root of the graph with no result (`output`); kept by dead-node elimination. */
  readonly terminator?: boolean;
  /** Result type from operand types and attributes; undefined for a terminator. */
  infer(ctx: InferContext): TensorType | undefined;
}

/**
 * Attributes every op accepts without declaring them. `layer` is the decoder
 * block an op belongs to: it names per-layer weights and per-layer thresholds.
 */
export const COMMON_ATTRS: Readonly<Record<string, AttrSpec>> = {
  layer: { type: 'int', optional: true, doc: 'Index of the decoder block this op belongs to.' },
};

/** Spec of attribute `name` for this op (declared or common). */
export function attrSpec(schema: OpSchema, name: string): AttrSpec | undefined {
  return Object.hasOwn(schema.attrs, name) ? schema.attrs[name] : Object.hasOwn(COMMON_ATTRS, name) ? COMMON_ATTRS[name] : undefined;
}

/** Attribute names in printing order: common ones first, then the schema's declaration order. */
export function attrOrder(schema: OpSchema): string[] {
  return [...Object.keys(COMMON_ATTRS), ...Object.keys(schema.attrs)];
}

export function formatAttrType(type: AttrType): string {
  return typeof type === 'string' ? type : type.enum.join(' | ');
}

/** Whether `value` is an admissible value of `type`. */
export function attrValueMatches(type: AttrType, value: AttrValue): boolean {
  if (typeof type !== 'string') return typeof value === 'string' && type.enum.includes(value);
  switch (type) {
    case 'int':
      return typeof value === 'number' && Number.isInteger(value);
    case 'float':
      return typeof value === 'number';
    case 'bool':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string';
    case 'dim':
      return (typeof value === 'number' && Number.isInteger(value) && value >= 0) || (typeof value === 'string' && /^[A-Za-z_]\w*$/.test(value));
  }
}

/** Count of operands that must be present. */
export function requiredOperandCount(schema: OpSchema): number {
  return schema.operands.filter((o) => !o.optional).length;
}
