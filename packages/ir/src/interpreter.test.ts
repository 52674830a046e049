import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensurePythonEnv } from '@chess/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { interpret } from './interpreter.ts';
import { type LlamaHParams, buildLlamaModule } from './llama.ts';
import type { Module } from './module.ts';
import { parse } from './parser.ts';
import { randomWeights } from './testing/random.ts';
import { withMemoryWeights } from './weights.ts';

const run = promisify(execFile);
const REFERENCE = join(import.meta.dirname, '__reference__', 'llama_ref.py');

let python: string;
let scratch: string;
beforeAll(async () => {
  python = await ensurePythonEnv();
  scratch = await mkdtemp(join(tmpdir(), 'chess-ir-ref-'));
}, 600_000);
afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** Run the numpy reference on the module's weights; returns its float64 logits. */
async function numpyLogits(name: string, module: Module, weights: Map<string, Float64Array>, tokens: number[]): Promise<Float64Array> {
  const dir = join(scratch, name);
  await run('mkdir', ['-p', dir]);
  let offset = 0;
  const tensors = [...module.weights.values()].map((w) => {
    const entry = { name: w.name, shape: w.shape, offset };
    offset += weights.get(w.name)!.length;
    return entry;
  });
  const blob = new Float64Array(offset);
  for (const t of tensors) blob.set(weights.get(t.name)!, t.offset);
  await writeFile(join(dir, 'weights.bin'), new Uint8Array(blob.buffer));
  await writeFile(join(dir, 'config.json'), JSON.stringify({ hparams: Object.fromEntries(module.hparams), tokens, tensors }));
  await run(python, [REFERENCE, dir]);
  const out = await readFile(join(dir, 'logits.bin'));
  return new Float64Array(out.buffer, out.byteOffset, out.byteLength / 8);
}

/** max |a - b| / max |b| */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / den;
}

const CASES: Record<string, { hparams: LlamaHParams; tokens: number[]; seed: number }> = {
  'llama: 2 layers, GQA 4/2, normal rope, silu, tied': {
    hparams: { n_layer: 2, n_embd: 32, n_ff: 48, n_head: 4, n_head_kv: 2, n_vocab: 40, rms_eps: 1e-5, rope: { freq_base: 10000 }, tied_embeddings: true },
    tokens: [3, 17, 0, 39, 17, 8, 22],
    seed: 1,
  },
  'qwen2-like: q/k/v biases, neox, partial rotary, linear scaling, gelu_tanh, untied': {
    hparams: {
      arch: 'qwen2',
      n_layer: 1,
      n_embd: 24,
      n_ff: 40,
      n_head: 3,
      n_head_kv: 1,
      n_vocab: 30,
      rms_eps: 1e-6,
      qkv_bias: true,
      activation: 'gelu_tanh',
      rope: { freq_base: 1e6, mode: 'neox', n_rot: 6, freq_scale: 0.5 },
    },
    tokens: [1, 2, 3, 29, 28, 4],
    seed: 2,
  },
  'llama3-like: YaRN, frequency factors, head_dim != n_embd/n_head': {
    hparams: {
      n_layer: 2,
      n_embd: 16,
      n_ff: 24,
      n_head: 2,
      n_head_kv: 1,
      head_dim: 12,
      n_vocab: 20,
      rms_eps: 1e-5,
      attn_scale: 0.3,
      rope: { freq_base: 500000, freq_scale: 0.25, ext_factor: 1, attn_factor: 1.1, n_ctx_orig: 64, freq_factors: true },
    },
    tokens: [0, 5, 10, 15, 19, 2, 7, 7, 1],
    seed: 3,
  },
};

describe('interpreter vs an independent numpy float64 reference', () => {
  for (const [name, c] of Object.entries(CASES)) {
    it(name, async () => {
      const module = buildLlamaModule(c.hparams);
      const weights = randomWeights(module, c.seed);
      const expected = await numpyLogits(`case-${c.seed}`, module, weights, c.tokens);
      const f64 = interpret(module, { tokens: c.tokens, weights: (n) => weights.get(n)! });
      expect(f64.logits.shape).toEqual([c.tokens.length, c.hparams.n_vocab]);
      const f32 = interpret(module, { tokens: c.tokens, weights: (n) => weights.get(n)!, precision: 'f32' });
      const err64 = relativeError(f64.logits.data, expected);
      expect(err64).toBeLessThan(1e-10);

      const err32 = relativeError(f32.logits.data, expected);
      expect(err32).toBeLessThan(1e-5);
      expect(err32).toBeGreaterThan(0);
    }, 60_000);
  }
});

describe('interpreter', () => {
  it('is causal: a later token never changes earlier logits', () => {
    const c = CASES['llama: 2 layers, GQA 4/2, normal rope, silu, tied']!;
    const module = buildLlamaModule(c.hparams);
    const weights = randomWeights(module, 9);
    const resolve = (n: string) => weights.get(n)!;
    const full = interpret(module, { tokens: [1, 2, 3, 4], weights: resolve }).logits.data;
    const prefix = interpret(module, { tokens: [1, 2, 3], weights: resolve }).logits.data;
    expect(Array.from(full.subarray(0, prefix.length))).toEqual(Array.from(prefix));
  });

  it('returns intermediate values on request and serves memory weights', () => {
    const m = parse(`arch llama
weights {
  @emb : f32[3,2] = memory
  @norm : f32[2] = memory
}
graph {
  %t = input : i32[T]
  %x = embedding %t @emb : f32[T,2]
  %h = rms_norm %x @norm : f32[T,2] {eps=0}
  output %h
}
`);
    m.weights.set('emb', { ...m.weight('emb')!, source: { kind: 'memory', data: new Float32Array([3, 4, 0, 1, -1, 1]) } });
    m.weights.set('norm', { ...m.weight('norm')!, source: { kind: 'memory', data: new Float32Array([1, 2]) } });
    const r = interpret(m, { tokens: [0, 2], weights: withMemoryWeights(m, () => new Float32Array()), keepValues: true });
    // row [3, 4]: rms = sqrt(12.5); row [-1, 1]: rms = 1
    const s = Math.sqrt(12.5);
    expect(Array.from(r.logits.data)).toEqual([3 / s, (4 / s) * 2, -1, 2]);
    expect(r.values?.get(m.nodes[1]!)?.shape).toEqual([2, 2]);
  });

  it('rejects token ids outside the vocabulary and weights of the wrong size', () => {
    const module = buildLlamaModule({ n_layer: 1, n_embd: 8, n_ff: 8, n_head: 1, n_head_kv: 1, n_vocab: 4, rms_eps: 1e-5, rope: { freq_base: 10000 } });
    const weights = randomWeights(module, 1);
    expect(() => interpret(module, { tokens: [4], weights: (n) => weights.get(n)! })).toThrow(/token id 4 at position 0 is outside the vocabulary 0\.\.3/);
    expect(() => interpret(module, { tokens: [0], weights: () => new Float64Array(3) })).toThrow(expect.objectContaining({ code: 'IR_INTERP_WEIGHT' }));
  });
});
