#!/usr/bin/env tsx
/**
 * Next-token probabilities of a text under one llama.cpp flavour, as a child
 * process (a process can load only one flavour, see llama-loaders.ts):
 *
 *   tsx src/eval-probs.ts --flavour stock|patched --model m.gguf --text-file t.txt --out probs.bin
 *
 * Writes float32 [positions x vocabulary] to --out (row p: distribution of the
 * token after input token p) and prints one JSON line (EvalProbsResult) on
 * stdout. A model that fails to load is reported (loadError + llama.cpp log),
 * not thrown, so callers can test refusals.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { Llama } from 'node-llama-cpp';
import { formatLlamaBinary, llamaBinaryInfo, loadPatchedLlama, loadStockLlama, type LlamaBinaryInfo } from './llama-loaders.ts';

export interface EvalProbsResult {
  binary: LlamaBinaryInfo;
  binaryLine: string;
  loadError?: string;
  /** llama.cpp log lines at warning level and above. */
  log: string[];
  tokens?: number[];
  nVocab?: number;
  positions?: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      flavour: { type: 'string' },
      model: { type: 'string' },
      'text-file': { type: 'string' },
      out: { type: 'string' },
      threads: { type: 'string', default: '2' },
      'context-size': { type: 'string', default: '512' },
      'batch-size': { type: 'string' },
    },
  });
  const flavour = values.flavour;
  if ((flavour !== 'stock' && flavour !== 'patched') || !values.model) {
    throw new Error('usage: eval-probs --flavour stock|patched --model m.gguf [--text-file t.txt --out probs.bin]');
  }
  const log: string[] = [];
  const loadOptions = {
    logger: (level: string, message: string) => {
      log.push(`${level}: ${message.trimEnd()}`);
    },
  };
  const llama: Llama = flavour === 'stock' ? await loadStockLlama(loadOptions) : await loadPatchedLlama(loadOptions);
  const binary = llamaBinaryInfo(llama);
  const result: EvalProbsResult = { binary, binaryLine: formatLlamaBinary(binary), log };
  let model;
  try {
    model = await llama.loadModel({ modelPath: values.model, gpuLayers: 0 });
  } catch (error) {
    result.loadError = (error as Error).message;
    // llama.cpp's log lines reach the logger asynchronously: disposing first delivers the reason of the failure
    await llama.dispose();
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  if (values['text-file'] && values.out) {
    const text = await readFile(values['text-file'], 'utf8');
    const contextSize = Number(values['context-size']);
    const batchSize = values['batch-size'] === undefined ? contextSize : Number(values['batch-size']);
    const context = await model.createContext({ contextSize, batchSize, threads: Number(values.threads) });
    const sequence = context.getSequence();
    const tokens = model.tokenize(text, true).slice(0, contextSize);
    const outputs = await sequence.controlledEvaluate(tokens.map((token) => [token, { generateNext: { probabilities: true } }]));
    // the probability maps cover the whole vocabulary
    let nVocab = 0;
    for (const output of outputs) for (const token of output?.next.probabilities?.keys() ?? []) nVocab = Math.max(nVocab, (token as number) + 1);
    const probs = new Float32Array(tokens.length * nVocab);
    outputs.forEach((output, position) => {
      const map = output?.next.probabilities;
      if (!map) throw new Error(`no probabilities for position ${position}`);
      for (const [token, p] of map) probs[position * nVocab + (token as number)] = p;
    });
    await writeFile(values.out, new Uint8Array(probs.buffer));
    result.tokens = tokens.map((t) => t as number);
    result.nVocab = nVocab;
    result.positions = tokens.length;
    await context.dispose();
  }
  await model.dispose();
  await llama.dispose();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
