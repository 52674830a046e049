import { ChessError } from '@chess/core';
import type { LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';

/** Text to token ids, without any special token added. */
export type Tokenize = (text: string) => number[];

/**
 * Split a (context, continuation) pair into tokens the way lm-evaluation-harness
 * does: trailing whitespace of the context moves to the front of the
 * continuation, then the continuation's tokens are the tokens of
 * context+continuation after as many tokens as the context alone has. This
 * keeps the tokenizer's merges across the boundary identical to how the text
 * would be tokenized as a whole.
 */
export function encodePair(tokenize: Tokenize, context: string, continuation: string): { context: number[]; continuation: number[] } {
  const trimmed = context.trimEnd();
  const moved = context.slice(trimmed.length);
  const whole = tokenize(trimmed + moved + continuation);
  const contextTokens = trimmed.length > 0 ? tokenize(trimmed) : [];
  return { context: contextTokens, continuation: whole.slice(contextTokens.length) };
}

/** The model input for one request and the positions whose next-token distributions are scored. */
export interface ScoringPlan {
  /** Tokens fed to the model: prefix (BOS when the model wants one), context, continuation. */
  input: number[];
  /** Index in `input` of the first continuation token. */
  firstTarget: number;
}

/**
 * Build the model input for a request. `prefix` is the model's BOS when its
 * vocabulary asks for one; an empty context with no prefix gets `fallbackPrefix`
 * (BOS or EOS) as lm-eval conditions an empty context on the end-of-text token.
 */
export function planRequest(
  tokenize: Tokenize,
  context: string,
  continuation: string,
  prefix: readonly number[],
  fallbackPrefix: number | undefined,
): ScoringPlan {
  const pair = encodePair(tokenize, context, continuation);
  if (pair.continuation.length === 0) {
    throw new ChessError('EVAL_EMPTY_CONTINUATION', `continuation ${JSON.stringify(continuation)} tokenizes to no tokens after its context`, {
      context: context.slice(-80),
      continuation,
    });
  }
  let head = [...prefix, ...pair.context];
  if (head.length === 0) {
    if (fallbackPrefix === undefined) {
      throw new ChessError('EVAL_EMPTY_CONTEXT', 'a request has an empty context and the model has neither BOS nor EOS to condition on', {});
    }
    head = [fallbackPrefix];
  }
  return { input: [...head, ...pair.continuation], firstTarget: head.length };
}

/** Result of scoring one request. */
export interface RequestScore {
  /** Sum over continuation tokens of ln p(token | everything before it). */
  logLikelihood: number;
  /** ln p of each continuation token, in order. */
  tokenLogProbs: number[];
  /** Whether every continuation token was the model's argmax (lm-eval's is_greedy). */
  greedy: boolean;
}

/** Smallest positive float32: a probability that underflowed to 0 is clamped here so ln stays finite. */
const MIN_PROB = 1.401298464324817e-45;

/**
 * Log-likelihood scorer over one context sequence of node-llama-cpp. It keeps
 * the sequence's KV cache between requests and re-evaluates only from the first
 * token that differs (the shared question of a document's choices is evaluated
 * once), and never before the position whose logits are needed.
 */
/** The request planner of a model: its BOS rule and tokenizer (no context needed). */
export function plannerFor(model: LlamaModel): (context: string, continuation: string) => ScoringPlan {
  const bos = model.tokens.bos ?? undefined;
  const prefix = model.tokens.shouldPrependBosToken && bos !== undefined ? [bos] : [];
  const fallbackPrefix = bos ?? model.tokens.eos ?? undefined;
  const tokenize: Tokenize = (text) => model.tokenize(text, false) as number[];
  return (context, continuation) => planRequest(tokenize, context, continuation, prefix, fallbackPrefix);
}

export class LogLikelihoodScorer {
  /** Tokens evaluated through the model so far (for throughput figures). */
  evaluatedTokens = 0;
  readonly plan: (context: string, continuation: string) => ScoringPlan;

  constructor(
    model: LlamaModel,
    readonly sequence: LlamaContextSequence,
  ) {
    this.plan = plannerFor(model);
  }

  get contextSize(): number {
    return this.sequence.contextSize;
  }

  async score(context: string, continuation: string): Promise<RequestScore> {
    return this.scorePlan(this.plan(context, continuation));
  }

  async scorePlan(plan: ScoringPlan): Promise<RequestScore> {
    const { input, firstTarget } = plan;
    // Inputs longer than the context are cut from the left like lm-eval does (keep the last tokens).
    if (input.length - 1 > this.sequence.contextSize) {
      throw new ChessError(
        'EVAL_REQUEST_TOO_LONG',
        `a request needs ${input.length - 1} tokens but the context holds ${this.sequence.contextSize}; raise the context size`,
        { tokens: input.length - 1, contextSize: this.sequence.contextSize },
      );
    }
    const cached = this.sequence.contextTokens;
    let keep = 0;
    const limit = Math.min(cached.length, firstTarget - 1);
    while (keep < limit && cached[keep] === input[keep]) keep++;
    if (keep < this.sequence.nextTokenIndex) {
      await this.sequence.eraseContextTokenRanges([{ start: keep, end: this.sequence.nextTokenIndex }]);
    }
    // Evaluate input[keep .. n-2]; the distribution after input[i] scores input[i+1].
    const items = [];
    for (let i = keep; i < input.length - 1; i++) {
      const token = input[i]! as Token;
      items.push(i + 1 >= firstTarget ? ([token, { generateNext: { probabilities: true } }] as const) : token);
    }
    const outputs = await this.sequence.controlledEvaluate(items as Parameters<LlamaContextSequence['controlledEvaluate']>[0]);
    this.evaluatedTokens += items.length;
    const tokenLogProbs: number[] = [];
    let greedy = true;
    for (let i = firstTarget - 1; i < input.length - 1; i++) {
      const probabilities = outputs[i - keep]?.next.probabilities;
      if (!probabilities) {
        throw new ChessError('EVAL_NO_PROBABILITIES', `node-llama-cpp returned no probabilities for input position ${i}`, { position: i });
      }
      const target = input[i + 1]! as Token;
      const p = probabilities.get(target) ?? 0;
      tokenLogProbs.push(Math.log(Math.max(p, MIN_PROB)));
      // The map is sorted by probability: its first key is the argmax.
      if (greedy && probabilities.keys().next().value !== target) greedy = false;
    }
    return { logLikelihood: tokenLogProbs.reduce((a, b) => a + b, 0), tokenLogProbs, greedy };
  }
}
