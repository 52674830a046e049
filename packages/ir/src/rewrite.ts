/**
 * Pattern rewriting (tinygrad / MLIR style). A rule is a name, a pattern and a
 * callback that returns a replacement node or nothing:
 *
 *     const fuse: Rule = {
 *       name: 'fuse-gated-ffn',
 *       pattern: op('mul', op('activation', op('linear', any('x'), weight('wg'))).as('act'),
 *                          op('linear', any('x'), weight('wu'))),
 *       rewrite: (m, b) => b.op('gated_ffn', [m.value('x'), m.weight('wg'), m.weight('wu')], { fn: m.node('act').attr('fn')! }),
 *     };
 *
 * A capture name used twice (`x` above) must bind the same value. The driver
 * applies a rule list to a fixpoint, then removes dead nodes.
 */
import { IrErrorCode, irError } from './errors.ts';
import type { Module, Weight } from './module.ts';
import { Node, type Operand, WeightRef } from './node.ts';
import { getOp } from './registry.ts';
import type { AttrValue } from './schema.ts';
import { formatType, typesEqual } from './types.ts';

// --- patterns ---

export type Pattern = OpPattern | AnyPattern | WeightPattern;

interface PatternBase {
  readonly capture?: string;
}

export interface OpPattern extends PatternBase {
  readonly kind: 'op';
  readonly ops: readonly string[];
  /** Operand sub-patterns; the node must have exactly as many operands. Undefined: any operands. */
  readonly operands?: readonly Pattern[];
  /** Attributes that must be equal (defaults applied). */
  readonly attrs?: Readonly<Record<string, AttrValue>>;
  readonly where?: (node: Node) => boolean;
  /** Also try the two operands swapped (mul, add). */
  readonly commutative?: boolean;
}

export interface AnyPattern extends PatternBase {
  readonly kind: 'any';
  readonly where?: (node: Node) => boolean;
}

export interface WeightPattern extends PatternBase {
  readonly kind: 'weight';
  readonly where?: (ref: WeightRef) => boolean;
}

/** Fluent wrapper so patterns read like the graph they match. */
export class Pat<P extends Pattern = Pattern> {
  constructor(readonly pattern: P) {}
  /** Capture the matched node / weight under `name`. */
  as(name: string): Pat<P> {
    return new Pat({ ...this.pattern, capture: name });
  }
  /** Add a predicate on the matched node (or weight ref). */
  where(predicate: P extends WeightPattern ? (ref: WeightRef) => boolean : (node: Node) => boolean): Pat<P> {
    return new Pat({ ...this.pattern, where: predicate } as P);
  }
  /** Require attribute values (op patterns only). */
  attrs(this: Pat<OpPattern>, attrs: Record<string, AttrValue>): Pat<OpPattern> {
    return new Pat({ ...this.pattern, attrs: { ...this.pattern.attrs, ...attrs } });
  }
  /** Match the two operands in either order (op patterns only). */
  commutative(this: Pat<OpPattern>): Pat<OpPattern> {
    return new Pat({ ...this.pattern, commutative: true });
  }
}

type PatLike = Pat | Pattern;
const unwrap = (p: PatLike): Pattern => (p instanceof Pat ? p.pattern : p);

/** A node of op `name` (or one of several, `'add|mul'`), with operand sub-patterns. Without operands: any operands. */
export function op(name: string, ...operands: PatLike[]): Pat<OpPattern> {
  return new Pat<OpPattern>({ kind: 'op', ops: name.split('|'), ...(operands.length > 0 && { operands: operands.map(unwrap) }) });
}

/** Any value. */
export function any(capture?: string): Pat<AnyPattern> {
  return new Pat<AnyPattern>({ kind: 'any', ...(capture !== undefined && { capture }) });
}

/** Any weight reference. */
export function weight(capture?: string): Pat<WeightPattern> {
  return new Pat<WeightPattern>({ kind: 'weight', ...(capture !== undefined && { capture }) });
}

// --- matching ---

export class Match {
  constructor(
    readonly root: Node,
    readonly captures: ReadonlyMap<string, Operand>,
  ) {}
  /** A captured node. */
  node(name: string): Node {
    const c = this.captures.get(name);
    if (!(c instanceof Node)) throw irError(IrErrorCode.REWRITE_PATTERN_INVALID, `capture '${name}' is not a value (captures: ${[...this.captures.keys()].join(', ')})`);
    return c;
  }
  /** Alias of `node`, reads better for plain values. */
  value(name: string): Node {
    return this.node(name);
  }
  /** A captured weight reference. */
  weight(name: string): WeightRef {
    const c = this.captures.get(name);
    if (!(c instanceof WeightRef)) throw irError(IrErrorCode.REWRITE_PATTERN_INVALID, `capture '${name}' is not a weight (captures: ${[...this.captures.keys()].join(', ')})`);
    return c;
  }
}

/** Match `pattern` at `node`; returns the captures or undefined. */
export function match(pattern: PatLike, node: Node): Match | undefined {
  const captures = new Map<string, Operand>();
  return matchAt(unwrap(pattern), node, captures) ? new Match(node, captures) : undefined;
}

function bind(p: Pattern, operand: Operand, captures: Map<string, Operand>): boolean {
  if (p.capture === undefined) return true;
  const prior = captures.get(p.capture);
  if (prior === undefined) {
    captures.set(p.capture, operand);
    return true;
  }
  return prior === operand || (prior instanceof WeightRef && operand instanceof WeightRef && prior.name === operand.name);
}

function matchAt(p: Pattern, operand: Operand, captures: Map<string, Operand>): boolean {
  switch (p.kind) {
    case 'weight':
      return operand instanceof WeightRef && (!p.where || p.where(operand)) && bind(p, operand, captures);
    case 'any':
      return operand instanceof Node && (!p.where || p.where(operand)) && bind(p, operand, captures);
    case 'op': {
      if (!(operand instanceof Node) || !p.ops.includes(operand.op)) return false;
      if (p.attrs && Object.entries(p.attrs).some(([k, v]) => operand.attr(k) !== v)) return false;
      if (p.where && !p.where(operand)) return false;
      if (p.operands) {
        if (operand.operands.length !== p.operands.length) return false;
        const orders = p.commutative && p.operands.length === 2 ? [[0, 1], [1, 0]] : [p.operands.map((_, i) => i)];
        const ok = orders.some((order) => {
          const trial = new Map(captures);
          if (!order.every((j, i) => matchAt(p.operands![i]!, operand.operands[j]!, trial))) return false;
          captures.clear();
          for (const [k, v] of trial) captures.set(k, v);
          return true;
        });
        if (!ok) return false;
      }
      return bind(p, operand, captures);
    }
  }
}

// --- rules and the driver ---

/** What a rewrite callback uses to build its replacement. */
export interface RewriteBuilder {
  readonly module: Module;
  /**
   * Create a node (type inferred and checked). It is inserted before the
   * matched root; without a `layer` it takes the root's layer.
   */
  op(op: string, operands: readonly (Operand | string)[], attrs?: Record<string, AttrValue>, name?: string): Node;
  /** Add a weight (threshold vector, transposed copy ...) to the module. */
  addWeight(weight: Weight): WeightRef;
  /** How many operand slots in the module refer to `node` (guards against duplicating shared work). */
  uses(node: Node): number;
}

export interface Rule {
  readonly name: string;
  readonly pattern: PatLike;
  /** Return the node that replaces the root (new or existing), or nothing to leave it. */
  readonly rewrite: (match: Match, build: RewriteBuilder) => Node | undefined | void;
}

export interface RewriteOptions {
  /** Sweeps over the module before giving up (IR_REWRITE_NO_FIXPOINT). Default 32. */
  readonly maxIterations?: number;
  /** Called after each application, e.g. to trace. */
  readonly onApply?: (rule: Rule, root: Node, replacement: Node) => void;
}

export interface RewriteResult {
  /** Applications per rule name (rules that never fired are absent). */
  readonly applied: Readonly<Record<string, number>>;
  readonly iterations: number;
}

/**
 * Apply `rules` (first matching rule wins, in list order) over the module in
 * program order, sweep after sweep until none fires, then remove dead nodes.
 */
export function applyRules(module: Module, rules: readonly Rule[], options: RewriteOptions = {}): RewriteResult {
  checkRules(rules);
  const maxIterations = options.maxIterations ?? 32;
  const applied: Record<string, number> = {};
  for (let iteration = 1; iteration <= maxIterations; iteration++) {
    if (!sweep(module, rules, applied, options)) {
      eliminateDeadNodes(module);
      return { applied, iterations: iteration };
    }
  }
  throw irError(
    IrErrorCode.REWRITE_NO_FIXPOINT,
    `rules [${rules.map((r) => r.name).join(', ')}] still rewrite after ${maxIterations} sweeps (applied so far: ${JSON.stringify(applied)}); a rule probably undoes another or rebuilds its own pattern`,
    { applied, maxIterations },
  );
}

function sweep(module: Module, rules: readonly Rule[], applied: Record<string, number>, options: RewriteOptions): boolean {
  const replaced = new Map<Node, Node>();
  const resolve = (n: Node): Node => {
    let r = n;
    while (replaced.has(r)) r = replaced.get(r)!;
    return r;
  };
  const out: Node[] = [];
  let changed = false;
  for (const node of module.nodes) {
    node.operands = node.operands.map((o) => (o instanceof Node ? resolve(o) : o));
    let replacement: Node | undefined;
    for (const rule of rules) {
      const m = match(rule.pattern, node);
      if (!m) continue;
      const created: Node[] = [];
      const build: RewriteBuilder = {
        module,
        op(opName, operands, attrs = {}, name) {
          const withLayer = node.layer !== undefined && attrs.layer === undefined && getOp(opName) ? { layer: node.layer, ...attrs } : attrs;
          const n = module.create(opName, operands, withLayer, name);
          created.push(n);
          return n;
        },
        addWeight: (w) => module.addWeight(w),
        uses: (n) => countUses(module, n, resolve),
      };
      const result = rule.rewrite(m, build) ?? undefined;
      if (result === undefined || result === node) continue;
      const same = result.type === undefined ? node.type === undefined : node.type !== undefined && typesEqual(result.type, node.type);
      if (!same) {
        throw irError(
          IrErrorCode.REWRITE_TYPE_CHANGED,
          `rule '${rule.name}' replaced a ${node.op} of type ${node.type ? formatType(node.type) : 'none'} by a ${result.op} of type ${result.type ? formatType(result.type) : 'none'}; a replacement must keep the type`,
          { rule: rule.name },
        );
      }
      if (result.name === undefined && created.includes(result)) result.name = node.name;
      out.push(...created);
      replacement = result;
      applied[rule.name] = (applied[rule.name] ?? 0) + 1;
      options.onApply?.(rule, node, result);
      break;
    }
    if (replacement) {
      replaced.set(node, replacement);
      changed = true;
    } else {
      out.push(node);
    }
  }
  module.nodes = out;
  return changed;
}

function countUses(module: Module, node: Node, resolve: (n: Node) => Node): number {
  let count = 0;
  for (const n of module.nodes) for (const o of n.operands) if (o instanceof Node && resolve(o) === node) count++;
  return count;
}

function checkRules(rules: readonly Rule[]): void {
  const names = new Set<string>();
  const walk = (p: Pattern, rule: string) => {
    if (p.kind !== 'op') return;
    for (const name of p.ops) {
      if (!getOp(name)) throw irError(IrErrorCode.REWRITE_PATTERN_INVALID, `rule '${rule}': pattern names unknown op '${name}'`, { rule, op: name });
    }
    p.operands?.forEach((q) => walk(q, rule));
  };
  for (const rule of rules) {
    if (names.has(rule.name)) throw irError(IrErrorCode.REWRITE_PATTERN_INVALID, `rule name '${rule.name}' is used twice`, { rule: rule.name });
    names.add(rule.name);
    walk(unwrap(rule.pattern), rule.name);
  }
}

/** Remove nodes no root (`output`) depends on; keeps program order. Returns how many were removed. */
export function eliminateDeadNodes(module: Module): number {
  const live = new Set<Node>();
  for (let i = module.nodes.length - 1; i >= 0; i--) {
    const node = module.nodes[i]!;
    if (!live.has(node) && !getOp(node.op)?.terminator) continue;
    live.add(node);
    for (const o of node.operands) if (o instanceof Node) live.add(o);
  }
  const before = module.nodes.length;
  module.nodes = module.nodes.filter((n) => live.has(n));
  return before - module.nodes.length;
}

/** Remove weights no node refers to, unless marked `keep`. Returns their names. */
export function pruneUnusedWeights(module: Module): string[] {
  const used = module.usedWeights();
  const removed = [...module.weights.values()].filter((w) => !used.has(w.name) && !w.keep).map((w) => w.name);
  for (const name of removed) module.removeWeight(name);
  return removed;
}
