/**
 * The lowering of each IR op, on small random-weight modules run by
 * onnxruntime-node against the IR's float64 reference interpreter (a separate
 * implementation of the op semantics, in @chess/ir and @chess/pass-chess):
 * a dense GQA decoder (normal and neox RoPE, tied and separate heads, partial
 * rotary), and one with every sparse op (threshold per channel and per tensor,
 * sparse_linear_out, sparse_linear_in in both layouts). The keep rule is
 * checked exactly at the boundary: values equal to tau are dropped.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGMLType, columnBlocksFromRows, quantize } from '@chess/gguf';
import { buildLlamaModule, interpret, memoryWeight, Module, WeightRef, type LlamaHParams, type Node } from '@chess/ir';
import { registerSparseOps } from '@chess/pass-chess';
import { exportOnnx } from './export.ts';
import { dequantizedWeight } from './weights.ts';

let work: string;
beforeAll(async () => {
  registerSparseOps();
  work = await mkdtemp(join(tmpdir(), 'chess-onnx-export-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function randomLlama(hp: LlamaHParams, seed: number): Module {
  const next = rng(seed);
  const shell = buildLlamaModule(hp);
  const tensors = [...shell.weights.values()].map((w) =>
    memoryWeight(w.name, 'f32', w.shape, Float32Array.from({ length: w.shape.reduce((a, b) => a * b, 1) }, () => (w.shape.length === 1 ? 1 + next() : next()))),
  );
  return buildLlamaModule(hp, { tensors });
}

async function compare(m: Module, tokens: number[], name: string): Promise<{ maxDiff: number; scale: number }> {
  const path = join(work, `${name}.onnx`);
  await exportOnnx(m, path);
  const session = await ort.InferenceSession.create(path);
  const out = await session.run({ tokens: new ort.Tensor('int64', BigInt64Array.from(tokens.map(BigInt)), [tokens.length]) });
  await session.release();
  const weights = new Map<string, Float32Array>();
  for (const w of m.weights.values()) weights.set(w.name, await dequantizedWeight(m, w, { columnBlocks: w.name.includes('_cb') }));
  const ref = interpret(m, { tokens, weights: (n) => weights.get(n)! });
  const got = out.logits!.data as Float32Array;
  expect(got.length).toBe(ref.logits.data.length);
  let maxDiff = 0;
  let scale = 0;
  for (let i = 0; i < got.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(got[i]! - ref.logits.data[i]!));
    scale = Math.max(scale, Math.abs(ref.logits.data[i]!));
  }
  return { maxDiff, scale };
}

const BASE: LlamaHParams = { n_layer: 2, n_embd: 32, n_ff: 64, n_head: 4, n_head_kv: 2, n_vocab: 40, rms_eps: 1e-5, rope: { freq_base: 10000 } };
const TOKENS = [1, 5, 7, 3, 9, 39, 0, 12];

describe('dense lowering vs the reference interpreter', () => {
  const cases: [string, LlamaHParams][] = [
    ['gqa-normal-separate-head', { ...BASE, tied_embeddings: false }],
    ['neox-tied', { ...BASE, tied_embeddings: true, rope: { freq_base: 500000, mode: 'neox' } }],
    ['partial-rotary-scaled', { ...BASE, n_head_kv: 4, rope: { freq_base: 10000, n_rot: 4, freq_scale: 0.5 } }],
    ['yarn', { ...BASE, rope: { freq_base: 10000, freq_scale: 0.25, ext_factor: 1, n_ctx_orig: 64 } }],
  ];
  for (const [name, hp] of cases) {
    it(name, async () => {
      const { maxDiff, scale } = await compare(randomLlama(hp, name.length), TOKENS, name);
      expect(scale).toBeGreaterThan(0.1);
      expect(maxDiff / scale, `max |onnxruntime - reference| ${maxDiff} of ${scale}`).toBeLessThan(1e-5);
    });
  }
});

describe('sparse lowering vs the reference interpreter', () => {
  it('threshold, sparse_linear_out, sparse_linear_in (column blocks of Q8_0, transposed f32)', async () => {
    const hp = { ...BASE, n_embd: 64, n_ff: 64, n_head: 4, n_head_kv: 4 };
    const m = randomLlama(hp, 11);
    const next = rng(99);
    const tauVec = (n: number, v: number) => Float32Array.from({ length: n }, () => v * (1 + 0.5 * next()));
    for (const node of [...m.nodes]) {
      const w = node.operands[1] instanceof WeightRef ? node.operands[1].name : '';
      const il = node.layer!;
      if (node.op === 'linear' && w.endsWith('attn_q.weight')) {
        m.addWeight(memoryWeight(`blk.${il}.attn_q_in_tau`, 'f32', [1], Float32Array.of(0.3)));
        const th = m.create('threshold', [node.operands[0] as Node, `blk.${il}.attn_q_in_tau`], { layer: il }, `attn_q_in.${il}`);
        m.nodes.splice(m.nodes.indexOf(node), 0, th);
        node.operands[0] = th;
      }
      if (node.op === 'mul' && node.name?.startsWith('ffn_gate_par')) {
        const [act, up] = node.operands as [Node, Node];
        m.addWeight(memoryWeight(`blk.${il}.ffn_gate_tau`, 'f32', [hp.n_ff], tauVec(hp.n_ff, 0.05)));
        const fused = m.create('sparse_linear_out', [up.operands[0] as Node, up.operands[1]!, act, `blk.${il}.ffn_gate_tau`], { layer: il }, node.name);
        m.nodes[m.nodes.indexOf(node)] = fused;
        m.replaceAllUses(node, fused);
        m.nodes.splice(m.nodes.indexOf(up), 1);
      }
      if (node.op === 'linear' && w.endsWith('ffn_down.weight')) {
        // column blocks of Q8_0: quantized rows re-arranged per input channel
        const rows = quantize(GGMLType.Q8_0, await dequantizedWeight(m, m.weight(w)!));
        const cb = columnBlocksFromRows(GGMLType.Q8_0, rows, hp.n_ff, hp.n_embd);
        m.addWeight({ name: `blk.${il}.ffn_down_cb.weight`, dtype: 'q8_0', shape: [hp.n_embd, hp.n_ff], source: { kind: 'memory', data: cb } });
        node.op = 'sparse_linear_in';
        node.attrs = { ...node.attrs, layout: 'column-blocks' };
        node.operands[1] = new WeightRef(`blk.${il}.ffn_down_cb.weight`);
        m.removeWeight(w);
      }
      if (node.op === 'linear' && w.endsWith('attn_output.weight')) {
        const rowsF = await dequantizedWeight(m, m.weight(w)!);
        const t = new Float32Array(rowsF.length);
        for (let o = 0; o < hp.n_embd; o++) for (let j = 0; j < hp.n_embd; j++) t[j * hp.n_embd + o] = rowsF[o * hp.n_embd + j]!;
        m.addWeight(memoryWeight(`blk.${il}.attn_output_t.weight`, 'f32', [hp.n_embd, hp.n_embd], t));
        m.addWeight(memoryWeight(`blk.${il}.attn_output_in_tau`, 'f32', [1], Float32Array.of(0.02)));
        const th = m.create('threshold', [node.operands[0] as Node, `blk.${il}.attn_output_in_tau`], { layer: il }, `attn_output_in.${il}`);
        m.nodes.splice(m.nodes.indexOf(node), 0, th);
        node.op = 'sparse_linear_in';
        node.attrs = { ...node.attrs, layout: 'transposed' };
        node.operands = [th, new WeightRef(`blk.${il}.attn_output_t.weight`)];
        m.removeWeight(w);
      }
    }
    const { maxDiff, scale } = await compare(m, TOKENS, 'sparse');
    expect(maxDiff / scale).toBeLessThan(1e-5);
  });

  it('keeps |v| > tau exactly: a value equal to tau is dropped, NaN is dropped', async () => {
    const m = new Module('llama');
    m.addWeight(memoryWeight('table', 'f32', [4, 4], Float32Array.of(0.5, -0.5, 0.25, 1, -1, 0.75, 0.5, -0.25, 0.5000001, -0.4999999, 0, Number.NaN, 2, -2, 0.5, 0.1)));
    m.addWeight(memoryWeight('tau', 'f32', [4], Float32Array.of(0.5, 0.5, 0.25, 0.5)));
    m.addWeight(memoryWeight('eye', 'f32', [4, 4], Float32Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1)));
    const tokens = m.add('input', [], {}, 'tokens');
    const x = m.add('embedding', [tokens, 'table'], {}, 'x');
    const th = m.add('threshold', [x, 'tau'], {}, 'th');
    m.add('output', [m.add('linear', [th, 'eye'], {}, 'y')]);
    const path = join(work, 'keep.onnx');
    await exportOnnx(m, path);
    const session = await ort.InferenceSession.create(path);
    const out = await session.run({ tokens: new ort.Tensor('int64', BigInt64Array.from([0n, 1n, 2n, 3n]), [4]) });
    await session.release();
    // |v| > tau per column (tau 0.5, 0.5, 0.25, 0.5); exactly-equal and NaN entries become 0
    expect(Array.from(out.logits!.data as Float32Array)).toEqual([0, 0, 0, 1, -1, 0.75, 0.5, 0, Math.fround(0.5000001), 0, 0, 0, 2, -2, 0.5, 0]);
  });
});
