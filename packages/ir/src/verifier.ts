/**
 * The verifier, run between passes. Checks, in order:
 *  - SSA: every operand is defined earlier in the module, every node once;
 *  - each node against its op schema (operands, attributes, weight refs,
 *    shapes with symbolic dims) and its written result type against the
 *    inferred one — the same code path the builder uses (infer.ts);
 *  - the weight table: sources exist, quantized rows are whole blocks, every
 *    weight is used unless marked `keep`;
 *  - at least one root (`output`) and it is reachable from the input.
 * Throws the first problem as a ChessError IR_VERIFY_* naming the node (as
 * printed), the op and what was expected.
 */
import { IrErrorCode, irError } from './errors.ts';
import { inferNodeType } from './infer.ts';
import type { Module } from './module.ts';
import { valueNames } from './names.ts';
import { Node } from './node.ts';
import { getOp } from './registry.ts';
import { dtypeInfo, formatShape, formatType, typesEqual } from './types.ts';

export function verify(module: Module): void {
  const names = valueNames(module);
  const nameOf = (n: Node) => `%${names.get(n) ?? `<${n.op} #${n.id}>`}`;
  const label = (n: Node, index: number) => (n.type ? nameOf(n) : `statement ${index} '${n.op}'`);

  const defined = new Set<Node>();
  module.nodes.forEach((node, index) => {
    const where = label(node, index);
    if (defined.has(node)) {
      throw irError(IrErrorCode.VERIFY_SSA_REDEFINED, `${where} (${node.op}): the node appears twice in the module (at ${index} and earlier)`, {
        node: where,
        op: node.op,
      });
    }
    node.operands.forEach((operand, i) => {
      if (operand instanceof Node && !defined.has(operand)) {
        const later = module.nodes.indexOf(operand);
        throw irError(
          IrErrorCode.VERIFY_SSA_UNDEFINED,
          `${where} (${node.op}): operand ${i} ${nameOf(operand)} is ${later < 0 ? 'not in the module' : `defined later (at ${later})`}; expected a value defined before use`,
          { node: where, op: node.op, operand: i },
        );
      }
    });
    const inferred = inferNodeType(module, node.op, node.operands, node.attrs, where, nameOf);
    const written = node.type;
    if ((inferred === undefined) !== (written === undefined) || (inferred && written && !typesEqual(inferred, written))) {
      const show = (t: typeof inferred) => (t ? formatType(t) : 'no result');
      throw irError(IrErrorCode.VERIFY_RESULT_TYPE, `${where} (${node.op}): result type is ${show(written)}, expected ${show(inferred)}`, {
        node: where,
        op: node.op,
        expected: inferred && formatType(inferred),
        actual: written && formatType(written),
      });
    }
    defined.add(node);
  });

  const used = module.usedWeights();
  for (const w of module.weights.values()) {
    const at = `weight @${w.name}`;
    if (w.source.kind === 'file' && !module.sources.has(w.source.file)) {
      throw irError(IrErrorCode.VERIFY_WEIGHT_SOURCE, `${at}: source '${w.source.file}' is not declared (sources: ${[...module.sources.keys()].join(', ') || 'none'})`, {
        weight: w.name,
      });
    }
    const info = dtypeInfo(w.dtype);
    const row = w.shape[w.shape.length - 1] ?? 1;
    if (w.shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw irError(IrErrorCode.VERIFY_WEIGHT_SHAPE, `${at}: shape ${formatShape(w.shape)} must be non-negative integers`, { weight: w.name });
    }
    if (row % info.blockSize !== 0) {
      throw irError(
        IrErrorCode.VERIFY_WEIGHT_SHAPE,
        `${at}: ${w.dtype} stores blocks of ${info.blockSize}; expected the last dimension of ${formatShape(w.shape)} to be a multiple of it`,
        { weight: w.name },
      );
    }
    if (!used.has(w.name) && !w.keep) {
      throw irError(IrErrorCode.VERIFY_WEIGHT_UNUSED, `${at}: no op refers to it; remove it or mark it 'keep'`, { weight: w.name });
    }
  }

  const roots = module.nodes.filter((n) => getOp(n.op)?.terminator);
  if (roots.length === 0) {
    throw irError(IrErrorCode.VERIFY_OUTPUT, `the module has no 'output' (or other terminator); expected one root holding the result`, {});
  }
  for (const root of roots) {
    if (!reachesInput(root)) {
      throw irError(IrErrorCode.VERIFY_OUTPUT, `${label(root, module.nodes.indexOf(root))} (${root.op}): does not depend on any 'input'; expected the result to be computed from the tokens`, {
        op: root.op,
      });
    }
  }
}

function reachesInput(root: Node): boolean {
  const seen = new Set<Node>();
  const stack = [root];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n.op === 'input') return true;
    for (const o of n.operands) if (o instanceof Node && !seen.has(o)) seen.add(o), stack.push(o);
  }
  return false;
}
