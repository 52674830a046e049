/**
 * The op registry: the builtin Llama ops plus whatever later packages register
 * (`threshold`, `sparse_linear_in`, ...). Registration is explicit
 * (`registerOp`), never a side effect of importing a module.
 */
import { IrErrorCode, irError } from './errors.ts';
import { BUILTIN_OPS } from './ops/index.ts';
import { COMMON_ATTRS, type OpSchema, attrValueMatches, formatAttrType } from './schema.ts';

const registry = new Map<string, OpSchema>(BUILTIN_OPS.map((s) => [s.name, s]));

const OP_NAME = /^[a-z][a-z0-9_]*$/;
const ATTR_NAME = /^[a-z][a-z0-9_]*$/;

/**
 * Add an op to the schema. Registering the same schema object again is a
 * no-op (test files may register in every run); another schema under a taken
 * name is an error.
 */
export function registerOp(schema: OpSchema): OpSchema {
  const existing = registry.get(schema.name);
  if (existing === schema) return schema;
  if (existing) {
    throw irError(IrErrorCode.OP_DUPLICATE, `op '${schema.name}' is already registered (by another schema); choose another name`, { op: schema.name });
  }
  validateSchema(schema);
  registry.set(schema.name, schema);
  return schema;
}

export function getOp(name: string): OpSchema | undefined {
  return registry.get(name);
}

/** All registered ops, builtins first, then in registration order. */
export function registeredOps(): OpSchema[] {
  return [...registry.values()];
}

function validateSchema(schema: OpSchema): void {
  const bad = (expectation: string): never => {
    throw irError(IrErrorCode.OP_SCHEMA_INVALID, `op schema '${schema.name}': expected ${expectation}`, { op: schema.name });
  };
  if (!OP_NAME.test(schema.name)) bad('a lower_snake_case name');
  let sawOptional = false;
  const operandNames = new Set<string>();
  for (const operand of schema.operands) {
    if (operandNames.has(operand.name)) bad(`unique operand names ('${operand.name}' repeats)`);
    operandNames.add(operand.name);
    if (operand.optional) sawOptional = true;
    else if (sawOptional) bad(`optional operands after all required ones ('${operand.name}' follows an optional operand)`);
  }
  for (const [name, spec] of Object.entries(schema.attrs)) {
    if (!ATTR_NAME.test(name)) bad(`lower_snake_case attribute names ('${name}')`);
    if (Object.hasOwn(COMMON_ATTRS, name)) bad(`no redeclaration of the common attribute '${name}'`);
    if (spec.default !== undefined && !attrValueMatches(spec.type, spec.default)) {
      bad(`default of '${name}' to be of type ${formatAttrType(spec.type)} (got ${JSON.stringify(spec.default)})`);
    }
    if (spec.default !== undefined && spec.optional) bad(`attribute '${name}' to be either optional or defaulted, not both`);
  }
}
