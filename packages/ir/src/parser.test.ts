import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildLlamaModule } from './llama.ts';
import { Module } from './module.ts';
import { parse } from './parser.ts';
import { print } from './printer.ts';
import { runFixtures } from './testing/fixtures.ts';
import { verify } from './verifier.ts';

const fixtures = join(import.meta.dirname, '__fixtures__');

/** print(parse(x)) is canonical: parsing the output again prints the same text. */
function expectStable(text: string): void {
  expect(print(parse(text))).toBe(text);
}

runFixtures('text form: parse then print', join(fixtures, 'text'), {
  transform({ input, options }) {
    const module = parse(input!, { filename: 'input.ir' });
    if (options.verify) verify(module);
    return print(module);
  },
  check: expectStable,
});

runFixtures('text form: parse errors carry line:column', join(fixtures, 'parse-errors'), {
  transform: ({ input }) => print(parse(input!)),
});

describe('parse(print(m)) prints identically', () => {
  const cases: Record<string, () => Module> = {
    'llama 2 layers, tied': () =>
      buildLlamaModule({ n_layer: 2, n_embd: 32, n_ff: 64, n_head: 4, n_head_kv: 2, n_vocab: 64, rms_eps: 1e-5, rope: { freq_base: 10000 }, tied_embeddings: true }),
    'qwen2-like: biases, neox, untied, q8_0': () =>
      buildLlamaModule(
        { arch: 'qwen2', n_layer: 1, n_embd: 64, n_ff: 96, n_head: 2, n_head_kv: 1, n_vocab: 32, rms_eps: 1e-6, rope: { freq_base: 1e6, mode: 'neox' }, qkv_bias: true },
        { dtype: 'q8_0' },
      ),
    'yarn + freq factors + gelu': () =>
      buildLlamaModule({
        n_layer: 1,
        n_embd: 32,
        n_ff: 64,
        n_head: 2,
        n_head_kv: 2,
        head_dim: 16,
        n_vocab: 16,
        rms_eps: 1e-6,
        activation: 'gelu_tanh',
        rope: { freq_base: 500000, freq_scale: 0.25, ext_factor: 1, n_ctx_orig: 8192, freq_factors: true, n_rot: 8 },
      }),
    'metadata of every kind': () => {
      const m = new Module('llama');
      m.meta = [
        { key: 'a', type: 'u8', value: 255 },
        { key: 'b', type: 'f32', value: Math.fround(0.1) },
        { key: 'c', type: 'array<f32>', value: new Float32Array([1.5, -2, Number.NaN]) },
        { key: 'd', type: 'array<u64>', value: new BigUint64Array([1n, 2n ** 63n]) },
        { key: 'e', type: 'string', value: '\u0000\u001f "quoted" \\ back' },
      ];
      m.addWeight({ name: 'w', dtype: 'f32', shape: [2, 2], source: { kind: 'memory' } });
      const t = m.add('input', [], {}, 'tokens');
      m.add('output', [m.add('embedding', [t, 'w'])]);
      return m;
    },
  };
  for (const [name, build] of Object.entries(cases)) {
    it(name, () => {
      const module = build();
      verify(module);
      const text = print(module);
      const back = parse(text);
      verify(back);
      expect(print(back)).toBe(text);
    });
  }

  it('keeps metadata values exactly (bigint stays bigint, -0 stays -0)', () => {
    const back = parse(print(cases['metadata of every kind']!()));
    expect(back.meta.map((e) => e.value)).toEqual([255, Math.fround(0.1), [1.5, -2, Number.NaN], [1n, 2n ** 63n], '\u0000\u001f "quoted" \\ back']);
    expect(Object.is(parse('arch llama\nhparams {\n  z = -0\n}\n').hparams.get('z'), -0)).toBe(true);
  });

  it('elides long metadata arrays only on request', () => {
    const m = new Module();
    m.meta = [{ key: 'tokenizer.ggml.tokens', type: 'array<string>', value: ['a', 'b', 'c', 'd'] }];
    expect(print(m, { elideMetaArrays: 2 })).toContain('["a", "b", ... 2 more]');
    expect(print(m)).toContain('["a", "b", "c", "d"]');
  });

  it('suffixes repeated name hints so every printed value is unique', () => {
    const m = new Module();
    m.addWeight({ name: 'w', dtype: 'f32', shape: [4, 2], source: { kind: 'memory' } });
    const t = m.add('input', [], {}, 'x');
    const a = m.add('embedding', [t, 'w'], {}, 'x');
    const b = m.add('add', [a, a], {}, 'x_1');
    const c = m.add('add', [b, a], {}, 'x');
    m.add('output', [c]);
    const text = print(m);
    expect(text).toContain('%x = input');
    expect(text).toContain('%x_2 = embedding %x');
    expect(text).toContain('%x_1 = add %x_2 %x_2');
    expect(text).toContain('%x_3 = add %x_1 %x_2');
    expectStable(text);
  });
});
