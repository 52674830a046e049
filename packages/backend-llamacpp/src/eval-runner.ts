import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChessError } from '@chess/core';
import type { EvalProbsResult } from './eval-probs.ts';
import type { LlamaFlavour } from './llama-loaders.ts';
import { runCommand } from './process.ts';

const require = createRequire(import.meta.url);

export interface EvaluateOptions {
  flavour: LlamaFlavour;
  model: string;
  /** Text to score; omit to only load the model (refusal tests). */
  text?: string;
  /** Extra environment (e.g. CHESS_DENSE_REFERENCE, CHESS_SPARSITY_REPORT). */
  env?: Record<string, string>;
  threads?: number;
  /** Tokens per llama_decode call (default: the whole text in one batch); 1 takes the one-token (decode) routes. */
  batchSize?: number;
}

export interface Evaluation extends EvalProbsResult {
  /** float32 [positions x nVocab] next-token probabilities (when text was given and the model loaded). */
  probs?: Float32Array;
}

/**
 * Run src/eval-probs.ts in a child process (one llama.cpp flavour per
 * process) and return its result with the probabilities.
 */
export async function evaluateProbabilities(options: EvaluateOptions): Promise<Evaluation> {
  const work = await mkdtemp(join(tmpdir(), 'chess-eval-'));
  try {
    const script = join(dirname(fileURLToPath(import.meta.url)), 'eval-probs.ts');
    const args = [require.resolve('tsx/cli'), script, '--flavour', options.flavour, '--model', options.model, '--threads', String(options.threads ?? 2)];
    if (options.batchSize !== undefined) args.push('--batch-size', String(options.batchSize));
    const out = join(work, 'probs.bin');
    if (options.text !== undefined) {
      await writeFile(join(work, 'text.txt'), options.text);
      args.push('--text-file', join(work, 'text.txt'), '--out', out);
    }
    const lines: string[] = [];
    const run = await runCommand(process.execPath, args, { env: { ...process.env, ...options.env }, onLine: (line) => lines.push(line) });
    const json = [...lines].reverse().find((line) => line.startsWith('{"binary"'));
    if (run.code !== 0 || !json) {
      throw new ChessError('EVAL_FAILED', `eval-probs (${options.flavour}, ${options.model}) failed with code ${run.code}:\n${run.tail.slice(-30).join('\n')}`, {
        flavour: options.flavour,
        model: options.model,
      });
    }
    const result = JSON.parse(json) as Evaluation;
    if (options.text !== undefined && result.loadError === undefined) {
      const bytes = await readFile(out);
      result.probs = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    }
    return result;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export interface ProbabilityComparison {
  positions: number;
  /** Largest absolute difference of any token probability at any position. */
  maxAbsDiff: number;
  /** Largest KL(a || b) over positions, in nats. */
  maxKl: number;
  /** Fraction of positions whose most likely token agrees. */
  top1Agreement: number;
}

export function compareProbabilities(a: Float32Array, b: Float32Array, nVocab: number): ProbabilityComparison {
  if (a.length !== b.length) throw new ChessError('EVAL_SHAPE_MISMATCH', `probability arrays differ in length: ${a.length} vs ${b.length}`, {});
  const positions = a.length / nVocab;
  let maxAbsDiff = 0;
  let maxKl = 0;
  let agree = 0;
  for (let p = 0; p < positions; p++) {
    let kl = 0;
    let argA = 0;
    let argB = 0;
    for (let t = 0; t < nVocab; t++) {
      const pa = a[p * nVocab + t]!;
      const pb = b[p * nVocab + t]!;
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(pa - pb));
      if (pa > 0) kl += pa * Math.log(pa / Math.max(pb, 1e-30));
      if (pa > a[p * nVocab + argA]!) argA = t;
      if (pb > b[p * nVocab + argB]!) argB = t;
    }
    maxKl = Math.max(maxKl, kl);
    if (argA === argB) agree++;
  }
  return { positions, maxAbsDiff, maxKl, top1Agreement: agree / positions };
}

export interface LogitComparison {
  positions: number;
  /**
   * Largest difference of logits between the two runs at any position and token, logits taken
   * up to the per-position constant softmax removes: ln pa - ln pb centred on its mean over the
   * position's tokens.
   */
  maxLogitDiff: number;
  /** Smallest fraction of a position's tokens with both probabilities above 1e-30 (the ones compared). */
  minCompared: number;
}

/** Logit differences of two next-token distributions over the same tokens (float32 [positions x nVocab]). */
export function compareLogits(a: Float32Array, b: Float32Array, nVocab: number): LogitComparison {
  if (a.length !== b.length) throw new ChessError('EVAL_SHAPE_MISMATCH', `probability arrays differ in length: ${a.length} vs ${b.length}`, {});
  const positions = a.length / nVocab;
  const d = new Float64Array(nVocab);
  let maxLogitDiff = 0;
  let minCompared = 1;
  for (let p = 0; p < positions; p++) {
    let n = 0;
    let sum = 0;
    for (let t = 0; t < nVocab; t++) {
      const pa = a[p * nVocab + t]!;
      const pb = b[p * nVocab + t]!;
      if (pa > 1e-30 && pb > 1e-30) {
        d[n] = Math.log(pa) - Math.log(pb);
        sum += d[n]!;
        n++;
      }
    }
    minCompared = Math.min(minCompared, n / nVocab);
    const mean = n > 0 ? sum / n : 0;
    for (let i = 0; i < n; i++) maxLogitDiff = Math.max(maxLogitDiff, Math.abs(d[i]! - mean));
  }
  return { positions, maxLogitDiff, minCompared };
}

/** A real English passage for the tests (written for this project). */
export const SAMPLE_TEXT =
  'The old lighthouse keeper climbed the narrow stairs every evening, carrying a lamp and a book. ' +
  'From the top he could see the whole bay: fishing boats returning with the tide, gulls circling over the harbour, ' +
  'and the long line of hills turning blue as the sun went down. He wrote the weather in a ledger, ' +
  'wound the clockwork that turned the great lens, and listened to the radio until the last ferry had docked.';
