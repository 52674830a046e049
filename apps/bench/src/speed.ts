import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChessError, UsageError } from '@chess/core';
import { positiveInteger } from './eval.ts';
import { readModelInfo } from './model-info.ts';
import { resolveRuntime } from './runtime.ts';
export { spread } from './spread.ts';
import { spread } from './spread.ts';
import type { BenchMeasurement, BenchResult, BenchSummary, ModelInfo, Spread } from './schema.ts';
import { layerSparsity, parseSparsityReport, readWeightTable, siteSparsity, subtractCounters, weightTraffic, type WeightTensor } from './sparsity.ts';
import { RESULT_PREFIX, type RunnerInput, type RunnerOutput } from './speed-runner.ts';

export interface BenchOptions {
  models: string[];
  /** Runtime per model (same length as models) or one for all; default 'auto' (patched for sparse GGUFs, stock otherwise). */
  runtimes?: string[];
  threads?: string;
  tokens?: number;
  promptTokens?: number;
  repeat?: number;
  log?: (line: string) => void;
  onProgress?: (done: number, total: number, label: string) => void;
  /** Replaceable for tests: runs one measurement. */
  runOne?: (input: RunnerInput) => Promise<RunnerOutput>;
}

export function parseThreads(spec: string | undefined): number[] {
  if (spec === undefined) return [1, 2];
  const parts = spec.split(',').map((s) => s.trim());
  const out = parts.map((p) => positiveInteger('--threads', p)!);
  if (out.length === 0) throw new UsageError('BENCH_BAD_OPTION', '--threads is empty', {});
  return [...new Set(out)];
}

const RUNNER = fileURLToPath(new URL('./speed-runner.ts', import.meta.url));

/** Spawn the runner in a fresh Node process (TypeScript through tsx's loader) and parse its result line. */
export async function runInChild(input: RunnerInput): Promise<RunnerOutput> {
  const tsx = import.meta.resolve('tsx');
  // Each child gets its own sparsity report file (the patched runtime writes it; stock ignores it).
  const reportDir = await mkdtemp(join(tmpdir(), 'chess-bench-sparsity-'));
  const env = { ...process.env, NODE_OPTIONS: '', CHESS_SPARSITY_REPORT: join(reportDir, 'sparsity.json') };
  return new Promise<RunnerOutput>((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', tsx, RUNNER, JSON.stringify(input)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (code === 0 && line) {
        resolvePromise(JSON.parse(line.slice(RESULT_PREFIX.length)) as RunnerOutput);
        return;
      }
      const detail = stderr.trim().split('\n').slice(-3).join(' | ') || `exit code ${code}${signal ? `, signal ${signal}` : ''}`;
      reject(
        new ChessError('BENCH_RUN_FAILED', `speed measurement of ${input.modelPath} (${input.threads} threads) failed: ${detail}`, {
          model: input.modelPath,
          threads: input.threads,
          code,
          signal,
        }),
      );
    });
  }).finally(() => rm(reportDir, { recursive: true, force: true }));
}

/** Decode-only sparsity figures of one measurement (from the child's two report snapshots) and the weight bytes they imply. */
export function decodeSparsity(
  out: Pick<RunnerOutput, 'sparsityReports'>,
  tensors: readonly WeightTensor[],
  source: string,
): Pick<BenchMeasurement, 'weightBytesReadFraction' | 'layerSparsity' | 'sparsity'> {
  const end = out.sparsityReports?.end ? parseSparsityReport(out.sparsityReports.end, `${source} (end)`) : null;
  if (!end || end.layers.size === 0) {
    return { weightBytesReadFraction: weightTraffic(tensors, null).fraction, layerSparsity: null, sparsity: null };
  }
  const before = out.sparsityReports?.afterPrefill ? parseSparsityReport(out.sparsityReports.afterPrefill, `${source} (after prefill)`) : null;
  const decode = subtractCounters(end, before);
  const fraction = weightTraffic(tensors, decode).fraction;
  return {
    weightBytesReadFraction: fraction,
    layerSparsity: layerSparsity(decode),
    sparsity: { scope: before ? 'decoded tokens only' : 'every evaluated token (warm-up and prefill included)', sites: siteSparsity(decode), weightBytesReadFraction: fraction },
  };
}

/**
 * Speed of one or more models. Every measurement runs in its own child
 * process; models are interleaved within each repeat (A B A B ...) so slow
 * drifts of a noisy machine hit all models alike; speedups are the per-repeat
 * ratios to the first model, summarised as median/min/max.
 */
export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const log = options.log ?? (() => undefined);
  if (options.models.length === 0) throw new UsageError('BENCH_NO_MODEL', 'give at least one --model', {});
  const threads = parseThreads(options.threads);
  const tokens = positiveInteger('--tokens', options.tokens) ?? 64;
  const promptTokens = positiveInteger('--prompt-tokens', options.promptTokens) ?? 128;
  const repeat = positiveInteger('--repeat', options.repeat) ?? 3;
  const requested = options.runtimes && options.runtimes.length > 0 ? options.runtimes : ['auto'];
  if (requested.length !== 1 && requested.length !== options.models.length) {
    throw new UsageError('BENCH_BAD_OPTION', `--runtime: give one runtime, or one per --model (${options.models.length})`, {});
  }
  const infos: ModelInfo[] = [];
  for (const path of options.models) infos.push(await readModelInfo(path));
  const runtimes = infos.map((info, m) => resolveRuntime(requested.length === 1 ? requested[0] : requested[m], info));
  const tables: WeightTensor[][] = [];
  for (const info of infos) tables.push(await readWeightTable(info.path));
  const runOne = options.runOne ?? runInChild;

  const total = repeat * threads.length * infos.length;
  const measurements: BenchMeasurement[] = [];
  const runtimeOf = new Map<number, RunnerOutput['runtime']>();
  let done = 0;
  for (let r = 0; r < repeat; r++) {
    for (const t of threads) {
      for (let m = 0; m < infos.length; m++) {
        const info = infos[m]!;
        const runtime = runtimes[m]!;
        options.onProgress?.(done, total, `${info.fileName} ${t}t #${r + 1}`);
        const out = await runOne({ modelPath: info.path, runtime, threads: t, promptTokens, tokens });
        if (!runtimeOf.has(m)) {
          runtimeOf.set(m, out.runtime);
          log(`model ${m} ${info.fileName} (${info.architecture ?? 'unknown'}, ${info.method}): runtime ${out.runtime.name}, ${out.runtime.buildType} binary ${out.runtime.binary}`);
        }
        measurements.push({
          model: m,
          threads: t,
          repeat: r,
          promptTokens,
          generatedTokens: out.generatedTokens,
          prefillTokPerSec: out.prefillTokPerSec,
          decodeTokPerSec: out.decodeTokPerSec,
          timeToFirstTokenMs: out.timeToFirstTokenMs,
          loadMs: out.loadMs,
          peakRssBytes: out.peakRssBytes,
          ...decodeSparsity(out, tables[m]!, `${info.fileName} run ${r + 1} ${t}t`),
        });
        done++;
        options.onProgress?.(done, total, `${info.fileName} ${t}t #${r + 1}`);
      }
    }
  }
  const cpu = cpus();
  return {
    kind: 'chess-bench',
    version: 1,
    createdAt: new Date().toISOString(),
    machine: { cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, memoryBytes: totalmem() },
    settings: { threads, tokens, promptTokens, repeat },
    models: infos.map((info, m) => ({ ...info, runtime: runtimeOf.get(m)! })),
    measurements,
    summary: summarise(measurements, infos.length, threads),
  };
}

/** Per (model, threads): spreads over repeats, and per-repeat speedups against model 0. */
export function summarise(measurements: readonly BenchMeasurement[], models: number, threads: readonly number[]): BenchSummary[] {
  const out: BenchSummary[] = [];
  for (const t of threads) {
    const base = new Map(measurements.filter((x) => x.model === 0 && x.threads === t).map((x) => [x.repeat, x]));
    for (let m = 0; m < models; m++) {
      const rows = measurements.filter((x) => x.model === m && x.threads === t);
      if (rows.length === 0) continue;
      const ratios = (pick: (x: BenchMeasurement) => number): Spread | null => {
        if (m === 0) return null;
        const values = rows.filter((x) => base.has(x.repeat)).map((x) => pick(x) / pick(base.get(x.repeat)!));
        return values.length > 0 ? spread(values) : null;
      };
      const fractions = rows.map((x) => x.weightBytesReadFraction).filter((x): x is number => x !== null);
      out.push({
        model: m,
        threads: t,
        decodeTokPerSec: spread(rows.map((x) => x.decodeTokPerSec)),
        prefillTokPerSec: spread(rows.map((x) => x.prefillTokPerSec)),
        timeToFirstTokenMs: spread(rows.map((x) => x.timeToFirstTokenMs)),
        peakRssBytes: Math.max(...rows.map((x) => x.peakRssBytes)),
        weightBytesReadFraction: fractions.length > 0 ? spread(fractions).median : null,
        decodeSpeedup: ratios((x) => x.decodeTokPerSec),
        prefillSpeedup: ratios((x) => x.prefillTokPerSec),
      });
    }
  }
  return out;
}
