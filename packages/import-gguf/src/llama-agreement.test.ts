/**
 * The imported IR computes what llama.cpp computes: the float32 reference
 * interpreter, run on the imported SmolLM2 graph with weights dequantized by
 * our codecs, is compared with stock llama.cpp (node-llama-cpp's prebuilt
 * binary) on the next-token distributions of a real sentence.
 *
 * The two cannot agree bit for bit: llama.cpp quantizes activations to Q8 for
 * its quantized matrix products and accumulates in another order. We assert
 * that llama.cpp's most likely token is (near-)top for us too at every
 * position, and a small total-variation distance between the distributions
 * (a wrong RoPE pairing, head mapping or norm gives distances near 1).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Llama, LlamaModel } from 'node-llama-cpp';
import { fetchDefaultModel } from '@chess/assets';
import { loadStockLlama } from '@chess/backend-llamacpp';
import { dequantize, ggmlTypeFromName, type GGUFFile } from '@chess/gguf';
import { interpret, numElements, type Module } from '@chess/ir';
import { importGGUF } from './import.ts';

const TEXT = 'The quick brown fox jumps over the lazy dog, and then';

let llama: Llama;
let model: LlamaModel;
let module: Module;
let file: GGUFFile;

beforeAll(async () => {
  const path = await fetchDefaultModel();
  llama = await loadStockLlama();
  model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  ({ module, file } = await importGGUF(path));
}, 300_000);

afterAll(async () => {
  await file?.close();
  await model?.dispose();
  await llama?.dispose();
});

async function stockDistributions(tokens: number[]): Promise<Float64Array[]> {
  const context = await model.createContext({ contextSize: 128, threads: 2 });
  try {
    const sequence = context.getSequence();
    const outputs = await sequence.controlledEvaluate(tokens.map((token) => [token, { generateNext: { probabilities: true } }] as never));
    const nVocab = module.hparams.get('n_vocab') as number;
    return outputs.map((output, position) => {
      const probabilities = (output as { next?: { probabilities?: Map<number, number> } } | undefined)?.next?.probabilities;
      if (!probabilities) throw new Error(`no probabilities at position ${position}`);
      const dist = new Float64Array(nVocab);
      for (const [token, p] of probabilities) dist[token] = p;
      return dist;
    });
  } finally {
    await context.dispose();
  }
}

async function dequantizedWeights(): Promise<Map<string, Float32Array>> {
  const weights = new Map<string, Float32Array>();
  for (const tensor of file.tensors) {
    const bytes = await file.readTensorData(tensor);
    weights.set(tensor.name, dequantize(tensor.type, bytes, tensor.elementCount));
  }
  return weights;
}

function softmax(logits: ArrayLike<number>, offset: number, n: number): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[offset + i]!);
  const out = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += out[i] = Math.exp(logits[offset + i]! - max);
  for (let i = 0; i < n; i++) out[i]! /= sum;
  return out;
}

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

describe('imported SmolLM2 graph vs stock llama.cpp', () => {
  it('gives llama.cpp\'s most likely next token and close distributions at every position', async () => {
    const tokens = model.tokenize(TEXT).map(Number);
    expect(tokens.length).toBeGreaterThan(10);
    const stock = await stockDistributions(tokens);
    const weights = await dequantizedWeights();
    for (const w of module.weights.values()) {
      expect(ggmlTypeFromName(w.dtype)).toBeDefined();
      expect(weights.get(w.name)?.length).toBe(numElements(w.shape));
    }
    const { logits } = interpret(module, { tokens, weights: (name) => weights.get(name)!, precision: 'f32' });
    const nVocab = module.hparams.get('n_vocab') as number;
    const distances: number[] = [];
    for (let t = 0; t < tokens.length; t++) {
      const ours = softmax(logits.data, t * nVocab, nVocab);
      const ref = stock[t]!;
      // Near-ties may swap under Q8 activation noise; a real error moves mass by far more.
      expect(ours[argmax(ours)]! - ours[argmax(ref)]!, `probability gap to llama.cpp's top token at position ${t}`).toBeLessThan(0.03);
      let tv = 0;
      for (let i = 0; i < nVocab; i++) tv += Math.abs(ours[i]! - ref[i]!);
      distances.push(tv / 2);
    }
    // Exact float products vs llama.cpp's Q8-activation products, whose kernel (and rounding)
    // the prebuilt picks per CPU: observed max 0.05 on an Intel Xeon, 0.104 on an AMD EPYC
    // (Zen 4); the mean stays under 0.04 on both. A wrong RoPE pairing, head mapping or norm gives ~1.
    const shown = distances.map((d) => d.toFixed(3)).join(' ');
    expect(Math.max(...distances), `total-variation distance per position: ${shown}`).toBeLessThan(0.15);
    expect(distances.reduce((a, b) => a + b, 0) / distances.length, `per position: ${shown}`).toBeLessThan(0.04);
  }, 300_000);
});
