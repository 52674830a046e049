import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Kernel, interpret, registerKernel } from './interpreter.ts';
import { buildLlamaModule } from './llama.ts';
import { Module } from './module.ts';
import type { Node } from './node.ts';
import { parse } from './parser.ts';
import { debugHookFromEnv, runPipeline } from './pipeline.ts';
import { print } from './printer.ts';
import { registerOp } from './registry.ts';
import { type Rule, any, applyRules, match, op, weight } from './rewrite.ts';
import type { OpSchema } from './schema.ts';
import { runFixtures } from './testing/fixtures.ts';
import { randomWeights } from './testing/random.ts';
import { verify } from './verifier.ts';

// --- a demonstration op, registered from outside the IR package's op list ---

const gatedFfn: OpSchema = {
  name: 'gated_ffn',
  summary: 'act(x Wg^T) * (x Wu^T): the gate and up projections of a GLU FFN, fused.',
  operands: [
    { name: 'x', role: 'value', doc: 'Input f32[T,n_embd].' },
    { name: 'gate', role: 'weight', doc: 'W_gate [n_ff, n_embd].' },
    { name: 'up', role: 'weight', doc: 'W_up [n_ff, n_embd].' },
  ],
  attrs: { fn: { type: { enum: ['silu', 'gelu_tanh'] }, doc: 'Activation of the gate.' } },
  infer(ctx) {
    const [t, d] = ctx.rank(0, 2);
    const [ff] = ctx.rank(1, 2);
    ctx.shape(1, [ff!, d!]);
    ctx.shape(2, [ff!, d!]);
    return { dtype: 'f32', shape: [t!, ff!] };
  },
};

const act: Record<string, (x: number) => number> = {
  silu: (x) => x / (1 + Math.exp(-x)),
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * x * (1 + 0.044715 * x * x))),
};

const gatedFfnKernel: Kernel = ({ inputs: [x, wg, wu], attrs }) => {
  const [t, d] = x!.shape as [number, number];
  const ff = wg!.shape[0]!;
  const f = act[attrs.fn as string]!;
  const out = new Float64Array(t * ff);
  for (let i = 0; i < t; i++) {
    for (let n = 0; n < ff; n++) {
      let g = 0;
      let u = 0;
      for (let k = 0; k < d; k++) {
        g += x!.data[i * d + k]! * wg!.data[n * d + k]!;
        u += x!.data[i * d + k]! * wu!.data[n * d + k]!;
      }
      out[i * ff + n] = f(g) * u;
    }
  }
  return { shape: [t, ff], data: out };
};

registerOp(gatedFfn);
registerKernel('gated_ffn', gatedFfnKernel);

/** mul(activation(linear(x, Wg)), linear(x, Wu)) -> gated_ffn(x, Wg, Wu), unless the activation is shared. */
const fuseGatedFfn: Rule = {
  name: 'fuse-gated-ffn',
  pattern: op('mul', op('activation', op('linear', any('x'), weight('gate'))).as('act'), op('linear', any('x'), weight('up'))).commutative(),
  rewrite(m, b) {
    if (b.uses(m.node('act')) > 1) return undefined;
    return b.op('gated_ffn', [m.value('x'), m.weight('gate'), m.weight('up')], { fn: m.node('act').attr('fn')! });
  },
};

runFixtures('rewrite: fuse-gated-ffn', join(import.meta.dirname, '__fixtures__', 'gated-ffn'), {
  transform({ input }) {
    const module = parse(input!, { filename: 'input.ir' });
    verify(module);
    runPipeline(module, [{ name: 'fuse-gated-ffn', rules: [fuseGatedFfn] }], { debug: {} });
    return print(module);
  },
});

describe('rewrite engine', () => {
  it('fusion preserves the logits exactly (f64)', () => {
    const before = buildLlamaModule({ n_layer: 2, n_embd: 16, n_ff: 32, n_head: 2, n_head_kv: 1, n_vocab: 16, rms_eps: 1e-5, rope: { freq_base: 10000 }, activation: 'gelu_tanh' });
    const weights = randomWeights(before, 7);
    const after = before.clone();
    const result = applyRules(after, [fuseGatedFfn]);
    expect(result.applied).toEqual({ 'fuse-gated-ffn': 2 });
    verify(after);
    expect(after.nodes.filter((n) => n.op === 'gated_ffn').map((n) => [n.name, n.layer])).toEqual([
      ['ffn_gate_par.0', 0],
      ['ffn_gate_par.1', 1],
    ]);
    const run = (m: Module) => interpret(m, { tokens: [1, 5, 2, 9], weights: (name) => weights.get(name)! }).logits.data;
    expect(run(after)).toEqual(run(before));
  });

  it('a repeated capture binds the same value', () => {
    const m = parse(`arch llama
weights {
  @w : f32[4,4] = memory
}
graph {
  %t = input : i32[T]
  %x = embedding %t @w : f32[T,4]
  %y = add %x %x : f32[T,4]
  %z = add %x %y : f32[T,4]
  output %z
}
`);
    const same = op('add', any('a'), any('a'));
    expect(match(same, m.nodes[2]!)?.node('a').name).toBe('x');
    expect(match(same, m.nodes[3]!)).toBeUndefined();
    expect(match(op('add', op('embedding').as('e'), any()).commutative(), m.nodes[3]!)?.node('e').name).toBe('x');
    expect(match(op('add|mul', any(), any()).where((n) => n.name === 'z'), m.nodes[3]!)).toBeDefined();
    expect(match(op('embedding', any(), weight('w').where((r) => r.name === 'other')), m.nodes[1]!)).toBeUndefined();
  });

  it('applies rules across sweeps until none fires, and removes dead nodes', () => {
    const m = parse(`arch llama
weights {
  @w : f32[4,4] = memory
}
graph {
  %t = input : i32[T]
  %x = embedding %t @w : f32[T,4]
  %a = activation %x : f32[T,4] {fn=silu}
  %b = activation %a : f32[T,4] {fn=gelu_tanh}
  %c = add %b %b : f32[T,4]
  output %c
}
`);
    // silu -> gelu_tanh, then gelu_tanh(gelu_tanh(x)) -> gelu_tanh(x): %b sees the new %a in the
    // same sweep (operands are redirected before matching); a second sweep finds nothing to do
    const rules: Rule[] = [
      { name: 'silu-to-gelu', pattern: op('activation').attrs({ fn: 'silu' }).as('s'), rewrite: (m, b) => b.op('activation', [m.node('s').operands[0]!], { fn: 'gelu_tanh' }) },
      { name: 'idempotent-gelu', pattern: op('activation', op('activation').attrs({ fn: 'gelu_tanh' }).as('inner')).attrs({ fn: 'gelu_tanh' }), rewrite: (m) => m.node('inner') },
    ];
    const result = applyRules(m, rules);
    expect(result).toEqual({ applied: { 'silu-to-gelu': 1, 'idempotent-gelu': 1 }, iterations: 2 });
    expect(print(m).split('graph {\n')[1]).toBe(
      ['  %t = input : i32[T]', '  %x = embedding %t @w : f32[T,4]', '  %a = activation %x : f32[T,4] {fn=gelu_tanh}', '  %c = add %a %a : f32[T,4]', '  output %c', '}', ''].join('\n'),
    );
    verify(m);
  });

  it('fails when the rules never converge', () => {
    const m = buildLlamaModule({ n_layer: 1, n_embd: 8, n_ff: 8, n_head: 1, n_head_kv: 1, n_vocab: 4, rms_eps: 1e-5, rope: { freq_base: 10000 } });
    const swap: Rule = { name: 'swap-add', pattern: op('add', any('a'), any('b')), rewrite: (mm, b) => b.op('add', [mm.value('b'), mm.value('a')]) };
    expect(() => applyRules(m, [swap], { maxIterations: 5 })).toThrow(expect.objectContaining({ code: 'IR_REWRITE_NO_FIXPOINT' }));
  });

  it('refuses a replacement of another type, and patterns naming unknown ops', () => {
    const m = buildLlamaModule({ n_layer: 1, n_embd: 8, n_ff: 16, n_head: 1, n_head_kv: 1, n_vocab: 4, rms_eps: 1e-5, rope: { freq_base: 10000 } });
    const bad: Rule = { name: 'bad', pattern: op('linear', any('x'), weight()).where((n) => n.name === 'ffn_out.0'), rewrite: (mm) => mm.value('x') };
    expect(() => applyRules(m, [bad])).toThrow(expect.objectContaining({ code: 'IR_REWRITE_TYPE_CHANGED' }));
    expect(() => applyRules(m, [{ name: 'typo', pattern: op('lienar'), rewrite: () => undefined }])).toThrow(expect.objectContaining({ code: 'IR_REWRITE_PATTERN_INVALID' }));
  });

  it('lets a rule add weights (a pass adding a threshold vector)', () => {
    const m = buildLlamaModule({ n_layer: 1, n_embd: 8, n_ff: 16, n_head: 1, n_head_kv: 1, n_vocab: 4, rms_eps: 1e-5, rope: { freq_base: 10000 } });
    const seen: Node[] = [];
    applyRules(m, [
      {
        name: 'note-gates',
        pattern: op('activation').as('a'),
        rewrite(mm, b) {
          seen.push(mm.node('a'));
          b.addWeight({ name: `blk.${mm.node('a').layer}.ffn_gate.threshold`, dtype: 'f32', shape: [16], source: { kind: 'memory', data: new Float32Array(16) }, keep: true });
          return undefined;
        },
      },
    ]);
    expect(seen).toHaveLength(1);
    expect(print(m)).toContain('@blk.0.ffn_gate.threshold : f32[16] = memory keep');
  });
});

describe('pipeline', () => {
  it('prints the module after each named step with CHESS_DEBUG_IR=1', () => {
    const lines: string[] = [];
    const hook = debugHookFromEnv({ CHESS_DEBUG_IR: '2' }, (t) => lines.push(t));
    const m = buildLlamaModule({ n_layer: 1, n_embd: 8, n_ff: 16, n_head: 1, n_head_kv: 1, n_vocab: 4, rms_eps: 1e-5, rope: { freq_base: 10000 } });
    const reports = runPipeline(m, [{ name: 'fuse', rules: [fuseGatedFfn] }, { name: 'nothing', run: () => undefined }], { debug: hook! });
    expect(reports).toEqual([{ step: 'fuse', applied: { 'fuse-gated-ffn': 1 } }, { step: 'nothing' }]);
    expect(lines[0]).toBe('// [fuse] fuse-gated-ffn: %ffn_gate_par.0 -> gated_ffn\n');
    expect(lines[1]).toMatch(/^\/\/ ---- after step 'fuse' \{"fuse-gated-ffn":1\}\narch llama\n/);
    expect(lines[1]).toContain('%ffn_gate_par.0 = gated_ffn %ffn_norm.0 @blk.0.ffn_gate.weight @blk.0.ffn_up.weight : f32[T,16] {layer=0, fn=silu}');
    expect(lines[2]).toMatch(/^\/\/ ---- after step 'nothing'\n/);
    expect(debugHookFromEnv({})).toBeUndefined();
  });

  it('verifies after each step and names the step that broke the module', () => {
    const m = buildLlamaModule({ n_layer: 1, n_embd: 8, n_ff: 16, n_head: 1, n_head_kv: 1, n_vocab: 4, rms_eps: 1e-5, rope: { freq_base: 10000 } });
    const breakIt = { name: 'drop-a-weight', run: (mm: Module) => void mm.removeWeight('blk.0.ffn_up.weight') };
    expect(() => runPipeline(m, [breakIt], { debug: {} })).toThrow(expect.objectContaining({ code: 'IR_VERIFY_WEIGHT_MISSING' }));
  });
});
