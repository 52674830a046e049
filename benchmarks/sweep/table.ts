/**
 * The README's SmolLM2 table, generated from the committed sweep results
 * (benchmarks/results/sweep/*.json) and written between the markers
 *
 *   <!-- sweep-table:begin -->
 *   <!-- sweep-table:end -->
 *
 * in README.md. Run `pnpm -C benchmarks sweep-table` (the sweep runs it too).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChessError, writeFileAtomic } from '@chess/core';
import { excludesZero, pairedComparison, readResultFile, type BenchResult, type EvalResult, type Interval } from '@chess/bench';

export const METHODS = ['cats', 'chess', 'chess+', 'teal'] as const;
export const SPARSITIES = [0.3, 0.5, 0.7] as const;
export const modelTag = (method: string, sparsity: number) => (method === 'dense' ? 'dense' : `${method.replace('+', 'plus')}-${Math.round(sparsity * 100)}`);

export const BEGIN = '<!-- sweep-table:begin -->';
export const END = '<!-- sweep-table:end -->';

const pct = (v: number, digits = 1) => (100 * v).toFixed(digits);
const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;

interface SweepSummary {
  command: string;
  date: string;
  settings: { limit: number; tasks?: string; pplWindows: number; calibTokens: number; repeat: number; tokens: number; promptTokens: number; threads: number };
  machine: { cpu: string; cores: number; loadAverage: { before: number; after: number } };
  wallSeconds: Record<string, number>;
  files: { evals: { tag: string; method: string; sparsity: number; file: string }[]; bench: string };
}

/** The Markdown block (table and its notes) from a results directory. */
export function renderSweepTable(resultsDir: string): string {
  const summaryPath = join(resultsDir, 'sweep.json');
  if (!existsSync(summaryPath)) throw new ChessError('SWEEP_RESULTS_MISSING', `${summaryPath}: no sweep summary; run pnpm -C benchmarks sweep first`, { path: summaryPath });
  const summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as SweepSummary;
  const evals = new Map<string, EvalResult>();
  for (const e of summary.files.evals) {
    const r = readResultFile(join(resultsDir, e.file));
    if (r.kind !== 'eval') throw new ChessError('SWEEP_RESULTS_INVALID', `${e.file}: expected an eval result`, { file: e.file });
    evals.set(e.tag, r.result);
  }
  const benchFile = readResultFile(join(resultsDir, summary.files.bench));
  if (benchFile.kind !== 'bench') throw new ChessError('SWEEP_RESULTS_INVALID', `${summary.files.bench}: expected a bench result`, { file: summary.files.bench });
  const bench: BenchResult = benchFile.result;
  const threads = bench.settings.threads[0]!;
  // Bench model index by (file, runtime); model 0 is dense on the stock build (the baseline).
  const speedOf = (path: string, runtime: string) => {
    const index = bench.models.findIndex((m) => m.path === path && m.runtime.name === runtime);
    return index < 0 ? undefined : bench.summary.find((s) => s.model === index && s.threads === threads);
  };
  // Per-repeat decode ratio to dense on the patched build (same binary as the sparse models).
  const patchedDense = bench.models.findIndex((m, i) => i > 0 && m.method === 'dense' && m.runtime.name === 'patched');
  const vsPatched = (path: string | undefined): string => {
    const index = bench.models.findIndex((m) => m.path === path && m.runtime.name === 'patched');
    if (index < 0 || patchedDense < 0) return '–';
    if (index === patchedDense) return '1 (baseline)';
    const base = new Map(bench.measurements.filter((x) => x.model === patchedDense && x.threads === threads).map((x) => [x.repeat, x.decodeTokPerSec]));
    const ratios = bench.measurements
      .filter((x) => x.model === index && x.threads === threads && base.has(x.repeat))
      .map((x) => x.decodeTokPerSec / base.get(x.repeat)!)
      .sort((a, b) => a - b);
    if (ratios.length === 0) return '–';
    const n = ratios.length;
    const median = n % 2 ? ratios[(n - 1) / 2]! : (ratios[n / 2 - 1]! + ratios[n / 2]!) / 2;
    return `${median.toFixed(2)}× (${ratios[0]!.toFixed(2)}–${ratios[n - 1]!.toFixed(2)})`;
  };
  const speedCell = (s: ReturnType<typeof speedOf>) =>
    !s ? '–' : s.decodeSpeedup ? `${s.decodeSpeedup.median.toFixed(2)}× (${s.decodeSpeedup.min.toFixed(2)}–${s.decodeSpeedup.max.toFixed(2)})` : '1 (baseline)';
  const rows: string[][] = [];
  const dense = evals.get('dense');
  const withInterval = (i: { value: number; low: number | null; high: number | null }, f: (v: number) => string) =>
    i.low !== null && i.high !== null && Number.isFinite(i.low) ? `${f(i.value)} [${f(i.low)}, ${f(i.high)}]` : f(i.value);
  const points = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(100 * v).toFixed(1)}`;
  // bytes a token reads relative to the dense source (read whole), and in MiB
  const denseBytes = dense?.weightBytes?.perToken ?? null;
  const bytesCell = (e: EvalResult | undefined) => {
    const b = e?.weightBytes;
    if (!b) return '–';
    const ref = denseBytes ?? b.referencePerToken;
    return `${ref ? `${(b.perToken / ref).toFixed(2)}× ` : ''}(${(b.perToken / 2 ** 20).toFixed(1)} MiB)`;
  };
  const row = (label: string, target: string, e: EvalResult | undefined, runtime: string, accuracyFrom?: string) => {
    const s = e ? speedOf(e.model.path, runtime) : undefined;
    const paired = e && dense && e !== dense ? pairedComparison(dense, e) : null;
    const avg = paired?.average as Interval | undefined;
    const d = e?.divergence;
    rows.push([
      label,
      target,
      e?.layerSparsity ? `${pct(mean(e.layerSparsity))}%` : '–',
      accuracyFrom ?? (e === dense ? (e?.average?.primary ? `${pct(e.average.primary.value)} (average)` : '–') : avg ? `${withInterval(avg, points)}${excludesZero(avg) ? '' : ' ≈0'}` : '–'),
      accuracyFrom ?? (d ? withInterval(d.meanKl, (v) => v.toFixed(3)) : e === dense ? '0' : '–'),
      accuracyFrom ?? (d ? withInterval(d.pplRatio, (v) => v.toFixed(3)) : e?.perplexity ? `1 (PPL ${e.perplexity.perplexity.toFixed(2)})` : '–'),
      speedCell(s),
      runtime === 'stock' ? '–' : vsPatched(e?.model.path),
      accuracyFrom ?? bytesCell(e),
    ]);
  };
  row('dense (stock llama.cpp)', '0%', dense, 'stock');
  row('dense (patched llama.cpp)', '0%', dense, 'patched', 'same model');
  for (const method of METHODS) {
    for (const sparsity of SPARSITIES) {
      row(method === 'chess+' ? 'chess+ (CHESS w/)' : method === 'chess' ? 'chess (CHESS w/o)' : method, `${Math.round(sparsity * 100)}%`, evals.get(modelTag(method, sparsity)), 'patched');
    }
  }
  const docs = summary.settings.limit === 0 ? 'all documents' : `first ${summary.settings.limit} docs/task`;
  const header = ['method', 'target sparsity', 'achieved sparsity', `8-task avg Δ vs dense, points [95% paired CI] (${docs})`, 'KL to dense [95% CI]', 'PPL ratio [95% CI]', `decode speedup vs dense stock (${threads} thread${threads > 1 ? 's' : ''})`, 'vs dense patched', 'weight bytes read/token vs dense'];
  const table = [
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
  const ppl = dense?.perplexity;
  const st = summary.settings;
  const notes = [
    `Generated by \`pnpm -C benchmarks sweep-table\` from \`benchmarks/results/sweep/\` (${summary.date.slice(0, 10)}; command: \`${summary.command}\`; ` +
      `wall time ${(summary.wallSeconds.total! / 60).toFixed(0)} min${summary.wallSeconds.calibrate === undefined ? ' with the calibration profile and sparse models cached by an earlier run' : ''} ` +
      `on ${summary.machine.cores} shared cores, load average ${summary.machine.loadAverage.before.toFixed(1)}–${summary.machine.loadAverage.after.toFixed(1)}).`,
    `SmolLM2-135M-Instruct Q4_1; one calibration profile (${st.calibTokens} tokens of the Brown corpus, seed 0) for every method and sparsity. ` +
      `Accuracy: zero-shot, the 8 CHESS tasks (arc_challenge, arc_easy, boolq, hellaswag, openbookqa, piqa, sciq, winogrande), ` +
      `**${st.limit === 0 ? 'all documents' : `first ${st.limit} documents`} of each task**, lm-eval's primary metric per task (acc for boolq and winogrande, acc_norm for the others), ` +
      'unweighted mean over tasks; Δ: difference from dense on the same documents with a 95% interval from a seeded paired bootstrap over documents (≈0: the interval includes 0, no supported difference); ' +
      'KL: mean KL(dense || model) of the next-token distributions and the perplexity ratio on held-out LAMBADA windows (never the calibration text), 95% interval by bootstrap over windows; ' +
      `thresholds apply to every token, prefill included. Perplexity: LAMBADA test text, ${ppl ? `${ppl.windows} windows of ${ppl.ctx} tokens, second half of each scored` : ''} (same scorer as llama-perplexity, see the cross-check above). ` +
      `Speed: decode of ${st.tokens} tokens after a ${st.promptTokens}-token prompt, ${st.repeat} repeats, each in its own process, models interleaved; ` +
      'speedup = per-repeat ratio to dense on the stock prebuilt build (and to dense on the patched build, the same binary as the sparse models), median (min–max). Weight bytes read/token: at the achieved sparsity over the held-out text (runtime counters) and the GGUF\'s tensor sizes ([how](docs/gguf-sparse.md#7-weight-bytes-read-per-token)), relative to the dense source model read whole, and in MiB. ' +
      'Full report with plots: `benchmarks/results/sweep/report.html`. Speed on 7B shapes: `benchmarks/e2e-speed`.',
  ];
  return [...table, '', ...notes].join('\n');
}

/** Replace the block between the markers in the README (atomically). */
export async function updateReadmeTable(options: { resultsDir: string; readme: string }): Promise<void> {
  const text = readFileSync(options.readme, 'utf8');
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (begin < 0 || end < begin) {
    throw new ChessError('SWEEP_README_MARKERS', `${options.readme}: no '${BEGIN}' ... '${END}' block to rewrite`, { path: options.readme });
  }
  const block = renderSweepTable(options.resultsDir);
  const next = `${text.slice(0, begin + BEGIN.length)}\n${block}\n${text.slice(end)}`;
  if (next !== text) await writeFileAtomic(options.readme, next);
}
