/**
 * Decode and prefill speed through llama.cpp's own `llama-bench`: a stock build of the pristine
 * tree (the baseline users have) against the patched build, one process per (model, test,
 * round), models interleaved in rotated order per round so that drift on a shared machine hits
 * all of them alike; speedups paired per round against the first model. The patched decode runs
 * write the runtime's sparsity counters, which with the file's tensor table give the weight bytes
 * a token reads (sparsity.ts) and so the byte-ideal speedup beside the measured one.
 * `benchmarks/e2e-speed` (7B shapes, read ceilings) and `chess llama-bench` (the main job's
 * edge-size model) both run on this.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChessError, UsageError } from '@chess/core';
import { readModelInfo } from './model-info.ts';
import { gitRevision, machineInfo } from './provenance.ts';
import type { LlamaBenchResult, ModelInfo, Spread } from './schema.ts';
import { layerSparsity, readSparsityReport, readWeightTable, weightTraffic, type SparsityCounters, type WeightTensor } from './sparsity.ts';
import { pairedSummary, round4 } from './spread.ts';

export type LlamaBuild = 'stock' | 'patched';
export type LlamaBenchTest = 'tg' | 'pp';

export interface LlamaBenchRun {
  binary: string;
  model: string;
  test: LlamaBenchTest;
  /** Tokens decoded (tg) or prompt tokens (pp). */
  tokens: number;
  threads: number;
  env?: NodeJS.ProcessEnv;
}

/** One llama-bench process (`-r 1` after its own warm-up run): tokens per second of the test. */
export async function llamaBenchOnce(run: LlamaBenchRun): Promise<number> {
  const args = ['-m', run.model, '-t', String(run.threads), '-r', '1', '-o', 'json'];
  args.push(...(run.test === 'tg' ? ['-p', '0', '-n', String(run.tokens)] : ['-p', String(run.tokens), '-n', '0']));
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolvePromise, reject) => {
    const child = spawn(run.binary, args, { env: run.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-16_000)));
    child.on('error', (error) => reject(new ChessError('BENCH_RUN_FAILED', `could not run ${run.binary}: ${error.message}`, { binary: run.binary }, { cause: error })));
    child.on('close', (c, signal) => resolvePromise({ code: c ?? (signal ? 128 : -1), stdout: out, stderr: err }));
  });
  const failed = (why: string): never => {
    throw new ChessError('BENCH_RUN_FAILED', `${run.binary} ${args.join(' ')}: ${why}\n${stderr.split('\n').slice(-12).join('\n')}`, {
      binary: run.binary,
      model: run.model,
      code,
    });
  };
  if (code !== 0) failed(`exit ${code}`);
  let rows: Array<{ avg_ts?: unknown }>;
  try {
    rows = JSON.parse(stdout) as Array<{ avg_ts?: unknown }>;
  } catch {
    return failed(`output is not llama-bench JSON: ${stdout.slice(0, 200)}`);
  }
  const tps = rows.length === 1 ? rows[0]!.avg_ts : undefined;
  if (typeof tps !== 'number' || !(tps > 0)) failed(`expected one result row with avg_ts > 0, got ${stdout.slice(0, 200)}`);
  return tps as number;
}

export type WeightLayout = 'dense' | 'column-blocks' | 'transposed' | 'column-blocks+transposed';

/** How a file stores its input-sparse projections: `_cb` tensors (docs/gguf-sparse.md §3.1), `_t` (§3.2), or none. */
export function weightLayout(tensors: readonly WeightTensor[]): WeightLayout {
  const cb = tensors.some((t) => /_cb\.weight$/.test(t.name));
  const transposed = tensors.some((t) => /_t\.weight$/.test(t.name));
  return cb && transposed ? 'column-blocks+transposed' : cb ? 'column-blocks' : transposed ? 'transposed' : 'dense';
}

export interface LlamaBenchModel {
  path: string;
  build: LlamaBuild;
}

export interface LlamaBenchOptions {
  models: readonly LlamaBenchModel[];
  binaries: Partial<Record<LlamaBuild, string>>;
  threads: number;
  /** Tokens decoded per decode run. */
  tg: number;
  /** Prompt tokens per prefill run (0: no prefill runs). */
  pp: number;
  rounds: number;
  /** Environment of every run (CHESS_SPARSITY_REPORT is set per patched decode run). */
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  onProgress?: (done: number, total: number, label: string) => void;
  /** Replaceable for tests. */
  runOne?: (run: LlamaBenchRun) => Promise<number>;
}


/** The interleaved comparison: every model, every round, decode then prefill. */
export async function runLlamaBench(options: LlamaBenchOptions): Promise<LlamaBenchResult> {
  const log = options.log ?? (() => undefined);
  const runOne = options.runOne ?? llamaBenchOnce;
  if (options.models.length === 0) throw new UsageError('BENCH_NO_MODEL', 'give at least one --model', {});
  for (const m of options.models) {
    if (!options.binaries[m.build]) throw new UsageError('BENCH_BAD_OPTION', `no ${m.build} llama-bench for ${m.path}`, { build: m.build });
  }
  const started = new Date();
  const infos: ModelInfo[] = [];
  const tables: WeightTensor[][] = [];
  for (const m of options.models) {
    infos.push(await readModelInfo(m.path));
    tables.push(await readWeightTable(m.path));
  }
  const tests: LlamaBenchTest[] = options.pp > 0 ? ['tg', 'pp'] : ['tg'];
  const samples: LlamaBenchResult['samples'] = [];
  const counters = new Map<number, SparsityCounters>();
  const scratch = await mkdtemp(join(tmpdir(), 'chess-llama-bench-'));
  const total = options.rounds * options.models.length * tests.length;
  let done = 0;
  try {
    for (let round = 0; round < options.rounds; round++) {
      for (let k = 0; k < options.models.length; k++) {
        const index = (k + round) % options.models.length; // rotated order per round
        const model = options.models[index]!;
        for (const test of tests) {
          const env = { ...(options.env ?? process.env) };
          const report = model.build === 'patched' && test === 'tg' ? join(scratch, `sparsity-${index}-${round}.json`) : undefined;
          if (report) env.CHESS_SPARSITY_REPORT = report;
          else delete env.CHESS_SPARSITY_REPORT;
          options.onProgress?.(done, total, `${infos[index]!.fileName} ${model.build} ${test} #${round + 1}`);
          const tps = await runOne({ binary: options.binaries[model.build]!, model: model.path, test, tokens: test === 'tg' ? options.tg : options.pp, threads: options.threads, env });
          samples.push({ model: index, round, test, tokensPerSecond: tps });
          const read = report ? readSparsityReport(report) : null;
          if (read) counters.set(index, read);
          log(`round ${round + 1}/${options.rounds} ${infos[index]!.fileName} (${model.build}) ${test}: ${tps.toFixed(2)} tok/s`);
          done++;
        }
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const bytes = tables.map((table, m) => weightTraffic(table, counters.get(m) ?? null).readBytes);
  return {
    kind: 'chess-llama-bench',
    version: 1,
    createdAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: machineInfo(),
    gitRevision: gitRevision(),
    settings: { threads: options.threads, tg: options.tg, pp: options.pp, rounds: options.rounds },
    binaries: { stock: options.binaries.stock ?? null, patched: options.binaries.patched ?? null },
    models: options.models.map((m, i) => {
      const c = infos[i]!.method === 'dense' ? undefined : counters.get(i); // a dense file has no thresholds to count
      const layers = c ? layerSparsity(c) : null;
      return {
        ...infos[i]!,
        build: m.build,
        layout: weightLayout(tables[i]!),
        weightBytesPerToken: Math.round(bytes[i]!),
        byteIdealSpeedup: round4(bytes[0]! / bytes[i]!),
        achievedSparsity: layers && layers.length > 0 ? round4(layers.reduce((a, b) => a + b, 0) / layers.length) : null,
      };
    }),
    samples,
    summary: pairedSummary(options.models.length, samples, tests.includes('pp')),
  };
}
