import { ChessError, UsageError } from '@chess/core';
import type { LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';

/**
 * Perplexity windows as stock `llama-perplexity` forms them
 * (tools/perplexity/perplexity.cpp, `perplexity()` without --ppl-stride):
 *  - the whole text is tokenized once, with BOS in front when the vocabulary
 *    asks for one;
 *  - it is cut into floor(n / ctx) non-overlapping windows of ctx tokens (the
 *    remainder is dropped);
 *  - the first token of every window is replaced by BOS (when the vocabulary
 *    adds BOS), the KV cache starts empty for each window;
 *  - only the second half is scored: the distributions after positions
 *    first = floor(ctx / 2) .. ctx - 2 score the tokens at first + 1 .. ctx - 1,
 *    i.e. ctx - first - 1 tokens per window, so that every scored token has at
 *    least ctx / 2 tokens of context.
 */
export interface PerplexityWindow {
  /** Index of the window's first token in the tokenized text. */
  start: number;
  /** Tokens fed to the model (BOS substituted at position 0 when applicable). */
  tokens: number[];
  /** First position whose next-token distribution is scored. */
  firstScored: number;
}

export function perplexityWindows(tokens: readonly number[], ctx: number, bos: number | undefined, maxWindows?: number): PerplexityWindow[] {
  if (!Number.isInteger(ctx) || ctx < 4) throw new UsageError('EVAL_BAD_CTX', `--ctx must be an integer >= 4, got ${ctx}`, { ctx });
  const available = Math.floor(tokens.length / ctx);
  if (available < 1) {
    throw new ChessError(
      'EVAL_TEXT_TOO_SHORT',
      `the perplexity text tokenizes to ${tokens.length} tokens, fewer than one window of ${ctx}; use a longer text or a smaller --ctx`,
      { tokens: tokens.length, ctx },
    );
  }
  const count = maxWindows === undefined ? available : Math.min(available, maxWindows);
  const first = Math.floor(ctx / 2);
  const windows: PerplexityWindow[] = [];
  for (let w = 0; w < count; w++) {
    const start = w * ctx;
    const slice = tokens.slice(start, start + ctx);
    if (bos !== undefined) slice[0] = bos;
    windows.push({ start, tokens: slice, firstScored: first });
  }
  return windows;
}

export interface PerplexityResult {
  ctx: number;
  windows: number;
  windowsAvailable: number;
  textTokens: number;
  scoredTokens: number;
  /** exp(mean negative log-likelihood) over the scored tokens. */
  perplexity: number;
  /** llama-perplexity's uncertainty estimate: ppl * sqrt(var(nll) / (count - 1)). */
  perplexityStderr: number;
  meanNll: number;
}

/** Combine per-token negative log-likelihoods into the figures llama-perplexity prints. */
export function summarisePerplexity(nlls: readonly number[]): { perplexity: number; perplexityStderr: number; meanNll: number } {
  const n = nlls.length;
  let sum = 0;
  let sum2 = 0;
  for (const v of nlls) {
    sum += v;
    sum2 += v * v;
  }
  const meanNll = sum / n;
  const variance = sum2 / n - meanNll * meanNll;
  const perplexity = Math.exp(meanNll);
  return { perplexity, perplexityStderr: variance > 0 && n > 1 ? Math.sqrt(variance / (n - 1)) * perplexity : Number.NaN, meanNll };
}

const MIN_PROB = 1.401298464324817e-45;

/** Tokenize text as llama-perplexity does (`common_tokenize(ctx, text, add_special = true)`). */
export function tokenizeForPerplexity(model: LlamaModel, text: string): number[] {
  const tokens = model.tokenize(text, false) as number[];
  const bos = model.tokens.bos;
  return model.tokens.shouldPrependBosToken && bos != null ? [bos, ...tokens] : tokens;
}

/**
 * Perplexity of a text through one node-llama-cpp context sequence (its
 * context size must be at least `ctx`). `onWindow` reports progress.
 */
export async function computePerplexity(
  model: LlamaModel,
  sequence: LlamaContextSequence,
  text: string,
  ctx: number,
  options: { maxWindows?: number; onWindow?: (done: number, total: number) => void } = {},
): Promise<PerplexityResult> {
  if (sequence.contextSize < ctx) {
    throw new ChessError('EVAL_CONTEXT_TOO_SMALL', `the context holds ${sequence.contextSize} tokens, the window needs ${ctx}`, {});
  }
  const tokens = tokenizeForPerplexity(model, text);
  const bos = model.tokens.shouldPrependBosToken ? (model.tokens.bos ?? undefined) : undefined;
  const windows = perplexityWindows(tokens, ctx, bos, options.maxWindows);
  const nlls: number[] = [];
  for (let w = 0; w < windows.length; w++) {
    const window = windows[w]!;
    await sequence.clearHistory();
    const input = window.tokens.slice(0, -1).map((token, i) =>
      i >= window.firstScored ? ([token as Token, { generateNext: { probabilities: true } }] as const) : (token as Token),
    );
    const outputs = await sequence.controlledEvaluate(input as Parameters<LlamaContextSequence['controlledEvaluate']>[0]);
    for (let i = window.firstScored; i < window.tokens.length - 1; i++) {
      const probabilities = outputs[i]?.next.probabilities;
      if (!probabilities) throw new ChessError('EVAL_NO_PROBABILITIES', `no probabilities returned for window ${w} position ${i}`, {});
      const p = probabilities.get(window.tokens[i + 1]! as Token) ?? 0;
      nlls.push(-Math.log(Math.max(p, MIN_PROB)));
    }
    options.onWindow?.(w + 1, windows.length);
  }
  await sequence.clearHistory();
  return {
    ctx,
    windows: windows.length,
    windowsAvailable: Math.floor(tokens.length / ctx),
    textTokens: tokens.length,
    scoredTokens: nlls.length,
    ...summarisePerplexity(nlls),
  };
}
