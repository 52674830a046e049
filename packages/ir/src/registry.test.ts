import { describe, expect, it } from 'vitest';
import { Module } from './module.ts';
import { parse } from './parser.ts';
import { print } from './printer.ts';
import { getOp, registerOp, registeredOps } from './registry.ts';
import type { OpSchema } from './schema.ts';
import { verify } from './verifier.ts';

/** What the CHESS pass will register: a per-channel threshold on the gate activation. */
const threshold: OpSchema = {
  name: 'threshold',
  summary: 'Zero x[t, i] where |x[t, i]| <= tau[i] (CHESS channel-wise thresholding).',
  operands: [
    { name: 'x', role: 'value', doc: 'Activation f32[T, C].' },
    { name: 'tau', role: 'weight', dtypes: ['float'], doc: 'Per-channel thresholds [C].' },
  ],
  attrs: { rule: { type: { enum: ['gt', 'ge'] }, default: 'gt', doc: 'Keep when |x| > tau (gt) or >= tau (ge).' } },
  infer(ctx) {
    const [, c] = ctx.rank(0, 2);
    ctx.shape(1, [c!]);
    return ctx.type(0);
  },
};

describe('op registry', () => {
  it('holds the Llama ops, each documented', () => {
    expect(registeredOps().map((s) => s.name)).toEqual(['input', 'embedding', 'rms_norm', 'linear', 'rope', 'attention', 'activation', 'mul', 'add', 'output']);
    for (const s of registeredOps()) {
      expect(s.summary.length).toBeGreaterThan(10);
      for (const o of s.operands) expect(o.doc.length).toBeGreaterThan(3);
      for (const a of Object.values(s.attrs)) expect(a.doc.length).toBeGreaterThan(3);
    }
  });

  it('lets another package add an op that the verifier, printer and parser then handle', () => {
    registerOp(threshold);
    registerOp(threshold); // same schema again: no-op
    expect(getOp('threshold')).toBe(threshold);
    const text = `arch llama

weights {
  @emb : f32[4,3] = memory
  @blk.0.ffn_gate.tau : f32[3] = memory
}

graph {
  %t = input : i32[T]
  %x = embedding %t @emb : f32[T,3]
  %y = threshold %x @blk.0.ffn_gate.tau : f32[T,3] {layer=0}
  output %y
}
`;
    const m = parse(text);
    verify(m);
    expect(print(m)).toBe(text);
    const bad = new Module();
    bad.addWeight({ name: 'tau', dtype: 'f32', shape: [2], source: { kind: 'memory' } });
    bad.addWeight({ name: 'emb', dtype: 'f32', shape: [4, 3], source: { kind: 'memory' } });
    const x = bad.add('embedding', [bad.add('input', []), 'emb']);
    expect(() => bad.add('threshold', [x, 'tau'])).toThrow(/expected shape \[3\], got operand 1 'tau' \(@tau : f32\[2\]\)/);
  });

  it('refuses a second schema under a taken name and malformed schemas', () => {
    expect(() => registerOp({ ...threshold })).toThrow(expect.objectContaining({ code: 'IR_OP_DUPLICATE' }));
    const base = { summary: 's', attrs: {}, infer: () => undefined };
    expect(() =>
      registerOp({
        ...base,
        name: 'bad_order',
        operands: [
          { name: 'a', role: 'weight', optional: true, doc: 'x' },
          { name: 'b', role: 'value', doc: 'x' },
        ],
      }),
    ).toThrow(/optional operands after all required ones/);
    expect(() => registerOp({ ...base, name: 'BadName', operands: [] })).toThrow(expect.objectContaining({ code: 'IR_OP_SCHEMA_INVALID' }));
    expect(() => registerOp({ ...base, name: 'bad_default', operands: [], attrs: { k: { type: 'int', default: 1.5, doc: 'x' } } })).toThrow(/default of 'k' to be of type int/);
  });
});
