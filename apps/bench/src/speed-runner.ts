/**
 * One speed measurement in its own process (spawned by `chess bench`): load the
 * runtime and the model, prefill a fixed prompt, decode greedily, print one
 * JSON line prefixed with RESULT_PREFIX on stdout. Running each measurement in
 * a fresh process gives every one a cold start of the same kind and an honest
 * peak RSS.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LlamaContextSequence, Token } from 'node-llama-cpp';
import { loadModelOrThrow } from './eval.ts';
import { selectRuntime } from './runtime.ts';

export const RESULT_PREFIX = 'CHESS_BENCH_RESULT ';

export interface RunnerInput {
  modelPath: string;
  runtime: string;
  threads: number;
  promptTokens: number;
  tokens: number;
}

export interface RunnerOutput {
  prefillTokPerSec: number;
  decodeTokPerSec: number;
  timeToFirstTokenMs: number;
  loadMs: number;
  peakRssBytes: number;
  generatedTokens: number;
  /**
   * Raw text of the patched runtime's sparsity report taken after warm-up and
   * prefill, and at the end (both cumulative): their difference covers the
   * decoded tokens only. Null when the runtime writes none (stock).
   */
  sparsityReports: { afterPrefill: string | null; end: string | null } | null;
  runtime: import('./runtime.ts').RuntimeDescription;
}

/** The report file named by CHESS_SPARSITY_REPORT (set by the parent per child), if written. */
function readReportText(): string | null {
  const path = process.env.CHESS_SPARSITY_REPORT;
  if (!path || path === '-' || !existsSync(path)) return null;
  return readFileSync(path, 'utf8');
}

/** Deterministic prompt text (public-domain style prose), repeated to the wanted length. */
const PROMPT_TEXT =
  'The old lighthouse keeper climbed the spiral stairs every evening at dusk, counting the steps as his father had taught him. ' +
  'From the lamp room he could see the fishing boats returning to the harbour, their lanterns swaying with the swell, ' +
  'and beyond them the dark line of the islands where the storms were born. ';

/** Peak resident set size of this process: VmHWM from /proc, else resourceUsage().maxRSS. */
export function peakRssBytes(): number {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    if (match) return Number(match[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

async function measure(input: RunnerInput): Promise<RunnerOutput> {
  const loadStart = performance.now();
  const { llama, runtime, log } = await selectRuntime(input.runtime).load({ maxThreads: input.threads });
  const model = await loadModelOrThrow(llama, input.modelPath, log);
  const contextSize = Math.min(model.trainContextSize || Number.POSITIVE_INFINITY, input.promptTokens + input.tokens + 16);
  const context = await model.createContext({
    contextSize,
    batchSize: Math.min(contextSize, Math.max(input.promptTokens, 32)),
    sequences: 1,
    threads: input.threads,
  });
  const loadMs = performance.now() - loadStart;
  const sequence: LlamaContextSequence = context.getSequence();
  let promptTokens: Token[] = [];
  while (promptTokens.length < input.promptTokens) promptTokens = [...promptTokens, ...model.tokenize(PROMPT_TEXT, false)];
  promptTokens = promptTokens.slice(0, input.promptTokens);
  const bos = model.tokens.bos;
  if (model.tokens.shouldPrependBosToken && bos != null) promptTokens[0] = bos;

  // Warm-up: touch the weights (mmap page-ins) and the compute buffers once.
  await sequence.controlledEvaluate(promptTokens.slice(0, Math.min(8, promptTokens.length)));
  await sequence.clearHistory();

  // Prefill: the whole prompt, sampling the first token greedily (time to first token).
  const t0 = performance.now();
  const prefill = await sequence.controlledEvaluate(
    promptTokens.map((token, i) => (i === promptTokens.length - 1 ? [token, { generateNext: { token: true } }] : token)) as Parameters<
      LlamaContextSequence['controlledEvaluate']
    >[0],
  );
  const t1 = performance.now();
  let next: Token = prefill[promptTokens.length - 1]?.next.token ?? model.tokens.eos ?? promptTokens[0]!;
  // Snapshot the cumulative counters: freeing a (tiny) context makes the patched runtime write them.
  let afterPrefill: string | null = null;
  const counting = Boolean(process.env.CHESS_SPARSITY_REPORT) && runtime.name !== 'stock';
  if (counting) {
    const probe = await model.createContext({ contextSize: 32, batchSize: 32, sequences: 1, threads: input.threads });
    await probe.dispose();
    afterPrefill = readReportText();
  }

  // Decode: feed one token at a time, greedy, for a fixed number of tokens (EOS is not a stop).
  const t2 = performance.now();
  for (let i = 0; i < input.tokens; i++) {
    const out = await sequence.controlledEvaluate([[next, { generateNext: { token: true } }]]);
    next = out[0]?.next.token ?? next;
  }
  const t3 = performance.now();
  const result: RunnerOutput = {
    prefillTokPerSec: (promptTokens.length * 1000) / (t1 - t0),
    decodeTokPerSec: (input.tokens * 1000) / (t3 - t2),
    timeToFirstTokenMs: t1 - t0,
    loadMs,
    peakRssBytes: peakRssBytes(),
    generatedTokens: input.tokens,
    sparsityReports: null,
    runtime,
  };
  await context.dispose();
  if (counting) {
    const end = readReportText();
    if (end !== null) result.sparsityReports = { afterPrefill, end };
  }
  await model.dispose();
  await llama.dispose();
  return result;
}

async function main(): Promise<void> {
  const raw = process.argv[2];
  if (!raw) throw new Error('usage: speed-runner.ts <json input>');
  const input = JSON.parse(raw) as RunnerInput;
  const output = await measure(input);
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(output)}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    const e = error as { code?: string; message?: string };
    process.stderr.write(`${e.code ? `error[${e.code}]: ` : ''}${e.message ?? String(error)}\n`);
    process.exit(1);
  });
}
