import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ChessError, UsageError } from '@chess/core';
import { positiveInteger } from './eval.ts';
import { readModelInfo } from './model-info.ts';
import { selectRuntime } from './runtime.ts';
import type { BenchMeasurement, BenchResult, BenchSummary, ModelInfo, Spread } from './schema.ts';
import { RESULT_PREFIX, type RunnerInput, type RunnerOutput } from './speed-runner.ts';

export interface BenchOptions {
  models: string[];
  /** Runtime per model (same length as models) or one for all; default 'stock'. */
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

export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const median = n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  return { median, min: sorted[0]!, max: sorted[n - 1]! };
}

const RUNNER = fileURLToPath(new URL('./speed-runner.ts', import.meta.url));

/** Spawn the runner in a fresh Node process (TypeScript through tsx's loader) and parse its result line. */
export async function runInChild(input: RunnerInput): Promise<RunnerOutput> {
  const tsx = import.meta.resolve('tsx');
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', tsx, RUNNER, JSON.stringify(input)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
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
  });
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
  const runtimes = options.runtimes ?? ['stock'];
  if (runtimes.length !== 1 && runtimes.length !== options.models.length) {
    throw new UsageError('BENCH_BAD_OPTION', `--runtime: give one runtime, or one per --model (${options.models.length})`, {});
  }
  for (const r of runtimes) selectRuntime(r);
  const infos: ModelInfo[] = [];
  for (const path of options.models) infos.push(await readModelInfo(path));
  const runOne = options.runOne ?? runInChild;

  const total = repeat * threads.length * infos.length;
  const measurements: BenchMeasurement[] = [];
  const runtimeOf = new Map<number, RunnerOutput['runtime']>();
  let done = 0;
  for (let r = 0; r < repeat; r++) {
    for (const t of threads) {
      for (let m = 0; m < infos.length; m++) {
        const info = infos[m]!;
        const runtime = runtimes.length === 1 ? runtimes[0]! : runtimes[m]!;
        options.onProgress?.(done, total, `${info.fileName} ${t}t #${r + 1}`);
        const out = await runOne({ modelPath: info.path, runtime, threads: t, promptTokens, tokens });
        if (!runtimeOf.has(m)) {
          runtimeOf.set(m, out.runtime);
          log(`model ${m} ${info.fileName}: runtime ${out.runtime.name}, ${out.runtime.buildType} binary ${out.runtime.binary}`);
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
          weightBytesReadFraction: out.weightBytesReadFraction,
          layerSparsity: out.layerSparsity,
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
