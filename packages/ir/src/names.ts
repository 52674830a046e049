/**
 * The names values print under. Named nodes keep their name hint; unnamed
 * nodes (and name hints that are plain numbers) are numbered %0, %1 ... in
 * program order; a repeated hint gets a `_1`, `_2` ... suffix. The printer and
 * the verifier's messages both use these names, so an error points at text
 * one can find in the printed module.
 */
import type { Module } from './module.ts';
import type { Node } from './node.ts';

const NUMERIC = /^\d+$/;

export function valueNames(module: Module): Map<Node, string> {
  const taken = new Set<string>();
  for (const node of module.nodes) if (node.name !== undefined && !NUMERIC.test(node.name)) taken.add(node.name);
  const names = new Map<Node, string>();
  const used = new Set<string>();
  let counter = 0;
  for (const node of module.nodes) {
    if (!node.type) continue;
    const hint = node.name;
    if (hint === undefined || NUMERIC.test(hint)) {
      names.set(node, String(counter++));
      continue;
    }
    let name = hint;
    // a suffixed name must not take another node's own name
    for (let k = 1; used.has(name) || (name !== hint && taken.has(name)); k++) name = `${hint}_${k}`;
    used.add(name);
    names.set(node, name);
  }
  return names;
}
