/**
 * Checking one op application against its schema and inferring its result
 * type. The builder (`Module.add`), the rewrite engine and the verifier share
 * this single code path, so a node that could be built always verifies.
 */
import { IrErrorCode, irError } from './errors.ts';
import { Node, type Operand, WeightRef } from './node.ts';
import { getOp } from './registry.ts';
import {
  type AttrValue,
  type Attrs,
  type InferContext,
  type OpSchema,
  attrSpec,
  attrValueMatches,
  formatAttrType,
  requiredOperandCount,
} from './schema.ts';
import { type DType, type Shape, type TensorType, dtypeInfo, formatShape, formatType, shapesEqual } from './types.ts';
import type { Module } from './module.ts';

/** How error messages name a value: the printer's names when the verifier runs, name hints otherwise. */
export type NameOf = (node: Node) => string;

export const defaultNameOf: NameOf = (node) => (node.name !== undefined ? `%${node.name}` : `%<${node.op} #${node.id}>`);

/** The attributes with schema defaults applied; assumes they were checked. */
export function resolveAttrs(schema: OpSchema, attrs: Attrs): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const [name, spec] of Object.entries(schema.attrs)) if (spec.default !== undefined) out[name] = spec.default;
  return Object.assign(out, attrs);
}

/**
 * Check `op(operands) {attrs}` and return its result type (undefined for a
 * terminator). Throws ChessError IR_VERIFY_* naming `label`, the op, and what
 * was expected.
 */
export function inferNodeType(
  module: Module,
  op: string,
  operands: readonly Operand[],
  attrs: Attrs,
  label: string,
  nameOf: NameOf = defaultNameOf,
): TensorType | undefined {
  const where = `${label} (${op})`;
  const schema = getOp(op);
  if (!schema) throw irError(IrErrorCode.VERIFY_UNKNOWN_OP, `${where}: unknown op '${op}'; register it with registerOp()`, { node: label, op });
  const details = (extra: Record<string, unknown> = {}) => ({ node: label, op, ...extra });

  for (const [name, value] of Object.entries(attrs)) {
    const spec = attrSpec(schema, name);
    if (!spec) {
      const known = [...Object.keys(schema.attrs), 'layer'].join(', ');
      throw irError(IrErrorCode.VERIFY_ATTR_UNKNOWN, `${where}: unknown attribute '${name}' (known: ${known})`, details({ attr: name }));
    }
    if (!attrValueMatches(spec.type, value)) {
      throw irError(
        IrErrorCode.VERIFY_ATTR_TYPE,
        `${where}: attribute '${name}' must be ${formatAttrType(spec.type)}, got ${JSON.stringify(value)}`,
        details({ attr: name, value }),
      );
    }
  }
  for (const [name, spec] of Object.entries(schema.attrs)) {
    if (spec.default === undefined && !spec.optional && !Object.hasOwn(attrs, name)) {
      throw irError(IrErrorCode.VERIFY_ATTR_MISSING, `${where}: missing attribute '${name}' (${formatAttrType(spec.type)}: ${spec.doc})`, details({ attr: name }));
    }
  }

  const required = requiredOperandCount(schema);
  const total = schema.operands.length;
  if (operands.length < required || operands.length > total) {
    const expected = required === total ? `${total}` : `${required} to ${total}`;
    throw irError(
      IrErrorCode.VERIFY_OPERAND_COUNT,
      `${where}: expected ${expected} operands (${schema.operands.map((o) => o.name + (o.optional ? '?' : '')).join(', ')}), got ${operands.length}`,
      details({ expected: [required, total], actual: operands.length }),
    );
  }

  const types: TensorType[] = [];
  operands.forEach((operand, i) => {
    const spec = schema.operands[i]!;
    const what = `operand ${i} '${spec.name}'`;
    if (spec.role === 'weight') {
      if (!(operand instanceof WeightRef)) {
        throw irError(IrErrorCode.VERIFY_OPERAND_KIND, `${where}: ${what} must be a weight (@name), got value ${nameOf(operand)}`, details({ operand: i }));
      }
      const weight = module.weight(operand.name);
      if (!weight) {
        throw irError(IrErrorCode.VERIFY_WEIGHT_MISSING, `${where}: ${what} refers to @${operand.name}, which is not in the weight table`, details({ operand: i, weight: operand.name }));
      }
      if (spec.dtypes && !spec.dtypes.includes(dtypeInfo(weight.dtype).kind)) {
        throw irError(
          IrErrorCode.VERIFY_WEIGHT_DTYPE,
          `${where}: ${what} @${weight.name} must be stored as ${spec.dtypes.join(' or ')}, got ${weight.dtype}`,
          details({ operand: i, weight: weight.name, dtype: weight.dtype }),
        );
      }
      types.push({ dtype: weight.dtype, shape: weight.shape });
    } else {
      if (!(operand instanceof Node)) {
        throw irError(IrErrorCode.VERIFY_OPERAND_KIND, `${where}: ${what} must be a value (%name), got weight @${operand.name}`, details({ operand: i }));
      }
      if (!operand.type) {
        throw irError(IrErrorCode.VERIFY_OPERAND_KIND, `${where}: ${what} uses ${nameOf(operand)}, a '${operand.op}' with no result`, details({ operand: i }));
      }
      types.push(operand.type);
    }
  });

  const resolved = resolveAttrs(schema, attrs);
  const describe = (i: number): string => {
    const operand = operands[i]!;
    const ref = operand instanceof WeightRef ? `@${operand.name}` : nameOf(operand);
    return `operand ${i} '${schema.operands[i]!.name}' (${ref} : ${formatType(types[i]!)})`;
  };
  const fail = (code: IrErrorCode, expectation: string, i?: number): never => {
    throw irError(code, `${where}: expected ${expectation}${i !== undefined ? `, got ${describe(i)}` : ''}`, details({ operand: i }));
  };
  const codeFor = (i: number) => (schema.operands[i]!.role === 'weight' ? IrErrorCode.VERIFY_WEIGHT_SHAPE : IrErrorCode.VERIFY_TYPE);
  const attrOf = (name: string): AttrValue => {
    const v = resolved[name];
    if (v === undefined) return fail(IrErrorCode.VERIFY_ATTR_MISSING, `attribute '${name}'`);
    return v;
  };
  const ctx: InferContext = {
    attrs: resolved,
    has: (i) => i < operands.length,
    type: (i) => types[i] ?? fail(IrErrorCode.VERIFY_OPERAND_COUNT, `operand ${i} '${schema.operands[i]?.name}'`),
    int: (name) => attrOf(name) as number,
    float: (name) => attrOf(name) as number,
    string: (name) => attrOf(name) as string,
    bool: (name) => attrOf(name) as boolean,
    rank(i, rank) {
      const shape = ctx.type(i).shape;
      if (shape.length !== rank) fail(codeFor(i), `rank ${rank}`, i);
      return shape;
    },
    shape(i, shape: Shape) {
      if (!shapesEqual(ctx.type(i).shape, shape)) fail(codeFor(i), `shape ${formatShape(shape)}`, i);
    },
    dtype(i, ...dtypes: DType[]) {
      if (!dtypes.includes(ctx.type(i).dtype)) {
        fail(schema.operands[i]!.role === 'weight' ? IrErrorCode.VERIFY_WEIGHT_DTYPE : IrErrorCode.VERIFY_TYPE, `dtype ${dtypes.join(' or ')}`, i);
      }
    },
    check(condition, expectation) {
      if (!condition) fail(IrErrorCode.VERIFY_CONSTRAINT, expectation);
    },
    fail: (expectation) => fail(IrErrorCode.VERIFY_CONSTRAINT, expectation),
  };
  return schema.infer(ctx);
}
