/**
 * An ONNX file from an independent exporter (transformers + torch.onnx.export,
 * scripts/make-fixture.py: a tiny random-weight Llama, GQA, SmolLM2's
 * vocabulary size) imports into the IR, converts to GGUF (carrying SmolLM2's
 * tokenizer), and runs in stock llama.cpp (node-llama-cpp's prebuilt binary)
 * with next-token logits matching onnxruntime's on the original ONNX file.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Llama, LlamaModel } from 'node-llama-cpp';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchDefaultModel } from '@chess/assets';
import { loadStockLlama } from '@chess/backend-llamacpp';
import { emitGGUF } from '@chess/codegen-gguf';
import { compareLogProbsToLogits } from '@chess/codegen-onnx/testing';
import { print } from '@chess/ir';
import { importOnnx } from './import.ts';
import { torchFixture, type TorchFixture } from './testing/torch-fixture.ts';

const PROMPTS = 12;
let fixture: TorchFixture;
let work: string;
let gguf: string;
let llama: Llama;
let model: LlamaModel;
let session: ort.InferenceSession;

beforeAll(async () => {
  fixture = await torchFixture({ seed: 0 });
  work = await mkdtemp(join(tmpdir(), 'chess-onnx-import-'));
  gguf = join(work, 'tiny.gguf');
  const { module } = await importOnnx(fixture.model, { tokenizerFrom: await fetchDefaultModel() });
  await emitGGUF(module, gguf);
  llama = await loadStockLlama();
  model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
  session = await ort.InferenceSession.create(fixture.model);
}, 3_600_000);

afterAll(async () => {
  await model?.dispose();
  await llama?.dispose();
  await session?.release();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('torch.onnx.export of a tiny Llama -> chess import -> GGUF in stock llama.cpp', () => {
  it('records the exporter versions it was made with', () => {
    expect(fixture.versions.torch).toMatch(/^2\.13\.0/);
    expect(fixture.versions.transformers).toBe('4.57.6');
    expect(fixture.versions.exporter).toBe('torch.onnx.export(dynamo=True)');
    expect(Number(fixture.versions.onnxruntime_vs_torch_max_abs)).toBeLessThan(1e-3);
  });

  it('imports the structure: 2 layers, 4 heads over 2 kv heads, rotate_half RoPE, separate head', async () => {
    const { match, module } = await importOnnx(fixture.model);
    expect(match.layers.length).toBe(2);
    expect([match.nEmbd, match.nFf, match.nHead, match.nHeadKv, match.headDim, match.nVocab]).toEqual([64, 128, 4, 2, 16, 49152]);
    expect(match.ropeMode).toBe('neox');
    expect(match.ropeFreqBase).toBe(10000);
    expect(match.rmsEps).toBeCloseTo(1e-5, 10);
    expect(match.head).toBeDefined();
    expect(print(module)).toContain('@blk.1.ffn_down.weight');
  });

  it(`gives onnxruntime's next-token logits on ${PROMPTS} prompts: cosine >= 0.999 at every position, same top-1 up to near ties`, async () => {
    const nVocab = 49152;
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
    const cosines: number[] = [];
    for (let p = 0; p < PROMPTS; p++) {
      const tokens = Array.from({ length: 4 + (p % 9) }, () => next() % nVocab);
      const out = await session.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens.map(BigInt)), [1, tokens.length]) });
      const logits = out.logits!.data as Float32Array;
      const context = await model.createContext({ contextSize: 64, threads: 2 });
      try {
        const outputs = await context.getSequence().controlledEvaluate(tokens.map((t) => [t, { generateNext: { probabilities: true } }] as never));
        outputs.forEach((o, pos) => {
          const probs = (o as { next: { probabilities: Map<number, number> } }).next.probabilities;
          const a = compareLogProbsToLogits(probs, logits, pos * nVocab, nVocab);
          cosines.push(a.cosine);
          expect(a.cosine, `prompt ${p} position ${pos}`).toBeGreaterThanOrEqual(0.999);
          // random weights give flat distributions: llama.cpp's top token must be onnxruntime's up to a near tie
          expect(logits[pos * nVocab + a.top1B]! - logits[pos * nVocab + a.top1A]!, `prompt ${p} position ${pos}: logit gap to llama.cpp's top-1`).toBeLessThan(0.02);
        });
      } finally {
        await context.dispose();
      }
    }
    process.stderr.write(`torch export vs stock llama.cpp: ${cosines.length} positions, min cosine ${Math.min(...cosines).toFixed(7)}\n`);
  }, 600_000);
});
