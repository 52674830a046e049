/**
 * The README's "Measured" table, generated from the committed benchmark results
 * (benchmarks/results/*.json) and written between the markers
 *
 *   <!-- measured:begin -->
 *   <!-- measured:end -->
 *
 * in README.md: every figure there is a field of a JSON file that a command in benchmarks/
 * wrote, with that command, the machine, the date and the git revision beside it. Run
 * `pnpm -C benchmarks readme-measured` after committing new results; `measured.test.ts`
 * fails while the README differs from what the committed JSON gives.
 */
import { ChessError } from '@chess/core';
import { readResultJson, replaceBetweenMarkers } from './markers.ts';

export const BEGIN = '<!-- measured:begin -->';
export const END = '<!-- measured:end -->';

/** One rendered row: what was measured, the command that measures it, the figures and where they come from. */
interface Row {
  what: string;
  command: string;
  result: string;
  source: string;
}

interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

const pct = (v: number, digits = 2) => `${v >= 0 ? '+' : '−'}${Math.abs(100 * v).toFixed(digits)} %`;
const ratio = (s: Spread | null | undefined) => (s ? `**${s.median.toFixed(2)}x** (${s.min.toFixed(2)}–${s.max.toFixed(2)}, n=${s.n})` : '–');
const day = (iso: string | undefined) => (iso ? iso.slice(0, 10) : 'undated');
const rev = (r: string | undefined) => (r ? r.slice(0, 7) : 'no revision');
// llama-perplexity prints KL with 6 decimals: 0 there means below 5e-7
const kl = (v: number) => (v === 0 ? '< 5e-7' : v.toExponential(1));



interface ColumnBlocksReport {
  command: string;
  date: string;
  revision?: string;
  machine: { cpu: string; cores: number };
  windows?: { batch: { ctx: number; chunks: number } };
  results: Array<{ type: string; method: string; route: string; meanKl: number; maxKl: number; pplRatio: number; fileBytes: number; sizeRatio: number }>;
}

/** Exactness at sparsity 0 and file sizes (benchmarks/column-blocks). */
function columnBlocksRows(dir: string): Row[] {
  const r = readResultJson<ColumnBlocksReport>(dir, 'column-blocks.json');
  if (!r || !r.results.every((x) => typeof x.type === 'string')) return [];
  const types = [...new Set(r.results.map((x) => x.type))];
  const cells = types.map((type) => {
    const of = (method: string) => r.results.find((x) => x.type === type && x.method === method && x.route === 'batch');
    const parts = ['teal', 'chess+'].map((m) => {
      const x = of(m);
      return x ? `${m} mean KL ${kl(x.meanKl)}, PPL ×${x.pplRatio.toFixed(6)}, size ${pct(x.sizeRatio - 1)}` : `${m} –`;
    });
    return `${type.toUpperCase()}: ${parts.join('; ')}`;
  });
  const windows = r.windows ? `${r.windows.batch.chunks} x ${r.windows.batch.ctx} LAMBADA tokens, one batch per window` : 'LAMBADA';
  return [
    {
      what: `exactness at sparsity 0 and file size: SmolLM2-135M (PyPI Q4_1 and its llama-quantize re-quantizations) compiled with default options vs its dense source, patched llama-perplexity --kl-divergence (${windows})`,
      command: `\`${r.command}\``,
      result: cells.join('<br>'),
      source: `${r.machine.cpu}, ${r.machine.cores} cores, ${day(r.date)}, ${rev(r.revision)}; \`results/column-blocks.json\``,
    },
  ];
}

interface E2eReport {
  started: string;
  git_revision?: string;
  command?: string;
  machine: { cpu: string; cores: number; loadavg_start?: number[]; loadavg_end?: number[] };
  /** The llama-bench binaries compared (absent in files written before they were recorded). */
  llama_bench?: { stock: string; patched: string };
  options: { shape: string; types: string[]; sparsity: number; threads: number; tg: number; pp: number; rounds: number; layout?: string };
  results: Array<{
    type: string;
    variant: string;
    method: string;
    read_ceiling_mode: boolean;
    decode_speedup_vs_stock_dense: Spread | null;
    prefill_speedup_vs_stock_dense: Spread | null;
    ideal_decode_speedup: number | null;
    read_ceiling_decode_speedup: Spread | number | null;
    decode_tps: Spread | null;
  }>;
}

/** End-to-end speed of the default artifacts (benchmarks/e2e-speed, column-block run). */
function e2eRows(dir: string, file: string): Row[] {
  const r = readResultJson<E2eReport>(dir, file);
  if (!r) return [];
  const o = r.options;
  const rows: Row[] = [];
  for (const type of o.types) {
    const variants = r.results.filter((x) => x.type === type && !x.read_ceiling_mode);
    const stock = variants.find((x) => x.variant === 'stock dense');
    const cells = variants
      .filter((x) => x.variant !== 'stock dense')
      .map((x) => {
        const extra =
          x.method === 'dense'
            ? ''
            : `; byte-ideal ${x.ideal_decode_speedup?.toFixed(2) ?? '–'}x, read ceiling ${typeof x.read_ceiling_decode_speedup === 'number' ? `${x.read_ceiling_decode_speedup.toFixed(2)}x` : x.read_ceiling_decode_speedup ? `${x.read_ceiling_decode_speedup.median.toFixed(2)}x (${x.read_ceiling_decode_speedup.min.toFixed(2)}–${x.read_ceiling_decode_speedup.max.toFixed(2)})` : '–'}`;
        return `${x.variant.replace(/^patched /, '')}: decode ${ratio(x.decode_speedup_vs_stock_dense)}, prefill ${ratio(x.prefill_speedup_vs_stock_dense)}${extra}`;
      });
    // e2e-speed records the builds it compared since it builds both alike; older files used a fixed-level static stock build
    const baseline = r.llama_bench
      ? 'stock: the pristine tree built like the patched build (GGML_NATIVE, shared, same release flags)'
      : 'stock: a fixed-level static build, not built like the patched build (its ratios include the build difference)';
    const load = r.machine.loadavg_start ? `, load ${r.machine.loadavg_start[0]?.toFixed(1)}→${r.machine.loadavg_end?.[0]?.toFixed(1) ?? '?'}` : '';
    rows.push({
      what: `end to end, synthetic ${o.shape} ${type.toUpperCase()}, ${o.sparsity * 100} % target, default options, patched vs stock llama-bench, ${o.threads} threads, tg${o.tg} / pp${o.pp}, ${o.rounds} interleaved rounds (stock dense: ${stock?.decode_tps ? `${stock.decode_tps.median.toFixed(2)} tok/s decode` : '–'}; ${baseline})`,
      command: `\`${r.command ?? `pnpm -C benchmarks e2e-speed --types ${o.types.join(',')} --rounds ${o.rounds} --pp ${o.pp} --tg ${o.tg} --json results/${file}`}\``,
      result: cells.join('<br>'),
      source: `${r.machine.cpu}, ${r.machine.cores} cores${load}, ${day(r.started)}, ${rev(r.git_revision)}; \`results/${file}\``,
    });
  }
  return rows;
}

/** The Markdown table, from a results directory. */
export function renderMeasured(resultsDir: string): string {
  // one end-to-end row set per machine kind measured (each row names its CPU, date and revision)
  const rows = [
    ...columnBlocksRows(resultsDir),
    ...e2eRows(resultsDir, 'e2e-speed-cb-q4_k_m.json'),
    ...e2eRows(resultsDir, 'e2e-speed-cb-q4_0.json'),
    ...e2eRows(resultsDir, 'e2e-speed-cb.json'),
  ];
  if (rows.length === 0) throw new ChessError('MEASURED_RESULTS_MISSING', `${resultsDir}: no result file the README table is made from`, { path: resultsDir });
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    '| what | command | result | machine, date, revision |',
    '|---|---|---|---|',
    ...rows.map((x) => `| ${esc(x.what)} | ${esc(x.command)} | ${esc(x.result)} | ${esc(x.source)} |`),
  ].join('\n');
}

/** README text with the block between the markers replaced. */
export function withMeasured(readme: string, table: string): string {
  return replaceBetweenMarkers(readme, BEGIN, END, table);
}
