/**
 * KL divergence of a model's next-token distributions to a base model's, through
 * llama.cpp's own `llama-perplexity --kl-divergence-base / --kl-divergence` (the patched
 * tools, which run dense and sparse GGUFs alike). llama-perplexity scores the second half
 * of each window of `ctx` tokens and stores the base's log-probabilities as 16-bit
 * values: KL below ~1e-5 is at that storage's resolution.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ChessError } from '@chess/core';

const run = promisify(execFile);

export interface KlRunOptions {
  /** Directory of the patched llama-perplexity (backendPath() or buildBackend().binDir). */
  binDir: string;
  /** Text file to evaluate. */
  text: string;
  /** Window length in tokens. */
  ctx: number;
  /** Windows evaluated. */
  chunks: number;
  /** Tokens per llama_decode call (default ctx: one batch per window; 1: the one-token routes). */
  batch?: number;
  threads?: number;
  /** Extra environment of the run (CHESS_* switches, CHESS_SPARSITY_REPORT). */
  env?: Record<string, string>;
}

export interface KlBase {
  /** The base model's log-probabilities (llama-perplexity's --kl-divergence-base file). */
  file: string;
  ppl: number;
  seconds: number;
}

export interface KlResult {
  /**
   * PPL(Q) over the base run's own perplexity (both from float logits). llama-perplexity's
   * printed ratio divides by a PPL(base) recomputed from the 16-bit stored log-probabilities,
   * ~1e-3 off over 20 windows of SmolLM2 (`toolPplRatio`).
   */
  pplRatio: number;
  /** The uncertainty of the ratio as llama-perplexity reports it (0 where it prints nan: identical samples). */
  pplRatioError: number;
  toolPplRatio: number;
  ppl: number;
  basePpl: number;
  meanKl: number;
  meanKlError: number;
  maxKl: number;
  /** Percentage of scored positions whose most likely token agrees. */
  sameTop: number;
  seconds: number;
}

function args(model: string, options: KlRunOptions): string[] {
  const batch = options.batch ?? options.ctx;
  return ['-m', model, '-f', options.text, '-c', String(options.ctx), '-b', String(batch), '-ub', String(batch), '--chunks', String(options.chunks), '-t', String(options.threads ?? 2)];
}

async function perplexityTool(model: string, extra: string[], options: KlRunOptions): Promise<{ output: string; seconds: number }> {
  const started = Date.now();
  const tool = join(options.binDir, 'llama-perplexity');
  try {
    const { stdout, stderr } = await run(tool, [...args(model, options), ...extra], {
      env: { ...process.env, LD_LIBRARY_PATH: options.binDir, ...options.env },
      maxBuffer: 64 << 20,
    });
    return { output: stdout + stderr, seconds: (Date.now() - started) / 1000 };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new ChessError('KL_RUN_FAILED', `${tool} on ${model} failed: ${e.message}\n${`${e.stdout ?? ''}${e.stderr ?? ''}`.slice(-2000)}`, { model, tool });
  }
}

function number(output: string, pattern: RegExp, what: string, model: string): number {
  const m = pattern.exec(output);
  if (!m) throw new ChessError('KL_RUN_FAILED', `no '${what}' in llama-perplexity output for ${model}:\n${output.slice(-2000)}`, { model, what });
  return Number(m[1]);
}

/** Evaluate the base model and keep its log-probabilities in `file`. */
export async function klBase(model: string, file: string, options: KlRunOptions): Promise<KlBase> {
  const { output, seconds } = await perplexityTool(model, ['--kl-divergence-base', file], options);
  return { file, ppl: number(output, /Final estimate: PPL = ([\d.]+)/, 'Final estimate', model), seconds };
}

/** KL divergence of `model` to the base (same text, ctx and chunks as the base run). */
export async function klDivergence(model: string, base: KlBase, options: KlRunOptions): Promise<KlResult> {
  const { output, seconds } = await perplexityTool(model, ['--kl-divergence-base', base.file, '--kl-divergence'], options);
  const f = String.raw`(-?nan|[-\d.eE+]+)`;
  const pair = (label: string): [number, number] => {
    const m = new RegExp(`${label}\\s*:\\s*${f}\\s*±\\s*${f}`).exec(output);
    if (!m) throw new ChessError('KL_RUN_FAILED', `no '${label}' in llama-perplexity output for ${model}:\n${output.slice(-2000)}`, { model, what: label });
    // llama-perplexity prints nan for the uncertainty of a ratio whose samples are all equal
    return [Number(m[1]), /nan/.test(m[2]!) ? 0 : Number(m[2])];
  };
  const [toolPplRatio, pplRatioError] = pair(String.raw`Mean PPL\(Q\)/PPL\(base\)`);
  const [meanKl, meanKlError] = pair('Mean    KLD');
  const ppl = pair(String.raw`Mean PPL\(Q\)`)[0];
  return {
    pplRatio: ppl / base.ppl,
    pplRatioError,
    toolPplRatio,
    ppl,
    basePpl: base.ppl,
    meanKl,
    meanKlError,
    maxKl: number(output, /Maximum KLD:\s*([-\d.eE+]+)/, 'Maximum KLD', model),
    sameTop: number(output, /Same top p:\s*([\d.]+)/, 'Same top p', model),
    seconds,
  };
}
