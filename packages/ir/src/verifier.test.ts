import { join } from 'node:path';
import { isChessError } from '@chess/core';
import { describe, expect, it } from 'vitest';
import { Module } from './module.ts';
import type { Node } from './node.ts';
import { registerOp } from './registry.ts';
import { parse } from './parser.ts';
import { print } from './printer.ts';
import { runFixtures } from './testing/fixtures.ts';
import { verify } from './verifier.ts';

runFixtures('verifier', join(import.meta.dirname, '__fixtures__', 'verify'), {
  transform({ input }) {
    const module = parse(input!, { filename: 'input.ir' });
    verify(module);
    return print(module);
  },
});

function codeOf(f: () => void): string | undefined {
  try {
    f();
  } catch (e) {
    if (isChessError(e)) return e.code;
    throw e;
  }
  return undefined;
}

function smallModule(): { m: Module; tokens: Node; x: Node; out: Node } {
  const m = new Module();
  m.addWeight({ name: 'emb', dtype: 'f32', shape: [8, 4], source: { kind: 'memory' } });
  const tokens = m.add('input', [], {}, 'tokens');
  const x = m.add('embedding', [tokens, 'emb'], {}, 'x');
  const y = m.add('add', [x, x], {}, 'y');
  const out = m.add('output', [y]);
  return { m, tokens, x, out };
}

describe('verifier on modules built in code', () => {
  it('accepts a well-formed module', () => {
    expect(codeOf(() => verify(smallModule().m))).toBeUndefined();
  });

  it('rejects a use before the definition (SSA order)', () => {
    const { m } = smallModule();
    [m.nodes[1], m.nodes[2]] = [m.nodes[2]!, m.nodes[1]!];
    expect(() => verify(m)).toThrow(/%y \(add\): operand 0 %x is defined later \(at 2\); expected a value defined before use/);
  });

  it('rejects an operand that is not in the module', () => {
    const { m, x } = smallModule();
    m.nodes = m.nodes.filter((n) => n !== x);
    expect(codeOf(() => verify(m))).toBe('IR_VERIFY_SSA_UNDEFINED');
  });

  it('rejects a node listed twice (single definition)', () => {
    const { m, x } = smallModule();
    m.nodes.splice(2, 0, x);
    expect(codeOf(() => verify(m))).toBe('IR_VERIFY_SSA_REDEFINED');
  });

  it('rejects an output that does not depend on the input', () => {
    registerOp({ name: 'zeros', summary: 'Test-only constant.', operands: [], attrs: {}, infer: () => ({ dtype: 'f32', shape: [4] }) });
    const { m } = smallModule();
    m.add('output', [m.add('zeros', [], {}, 'z')]);
    expect(() => verify(m)).toThrow(/statement 5 'output' \(output\): does not depend on any 'input'/);
  });

  it('the builder refuses what the verifier would refuse, with the same code', () => {
    const { m, x } = smallModule();
    expect(codeOf(() => m.add('rms_norm', [x, 'emb'], { eps: 1e-5 }))).toBe('IR_VERIFY_WEIGHT_SHAPE');
    expect(codeOf(() => m.add('rms_norm', [x, 'nope'], { eps: 1e-5 }))).toBe('IR_VERIFY_WEIGHT_MISSING');
    expect(codeOf(() => m.add('activation', [x], { fn: 'relu' }))).toBe('IR_VERIFY_ATTR_TYPE');
  });

  it('accepts an unused weight marked keep', () => {
    const { m } = smallModule();
    m.addWeight({ name: 'rope_freqs.weight', dtype: 'f32', shape: [2], source: { kind: 'memory' }, keep: true });
    expect(codeOf(() => verify(m))).toBeUndefined();
    m.addWeight({ name: 'stray', dtype: 'f32', shape: [2], source: { kind: 'memory' } });
    expect(codeOf(() => verify(m))).toBe('IR_VERIFY_WEIGHT_UNUSED');
  });
});
