/**
 * The README's accuracy-per-byte table, generated from benchmarks/results/frontier.json
 * (`pnpm -C benchmarks frontier`) and written between the markers
 *
 *   <!-- frontier:begin -->
 *   <!-- frontier:end -->
 *
 * by `pnpm -C benchmarks readme-measured` (with the Measured table); `frontier.test.ts`
 * fails while the README differs from what the committed JSON gives.
 */
import { join } from 'node:path';
import { ChessError } from '@chess/core';
import { readResultJson, replaceBetweenMarkers } from './markers.ts';

export const FRONTIER_BEGIN = '<!-- frontier:begin -->';
export const FRONTIER_END = '<!-- frontier:end -->';

interface Interval {
  value: number;
  lo: number;
  hi: number;
}

export interface FrontierReport {
  command: string;
  date: string;
  gitRevision: string;
  machine: { cpu: string; cores: number };
  heldOut: string;
  rows: Array<{ method: string; sparsity: number | null; budget: number | null; bytesFraction: number; meanKl: Interval; pplRatio: Interval; sameTop: number; transformSeconds: number | null }>;
  comparisons: Array<{ budget: number; bytesFraction: number; meanKl: Interval; bestPeer: { method: string; at: Interval } | null; verdict: string; ratioToBestPeer: number | null }>;
}

const f3 = (v: number) => v.toFixed(3);
const iv = (x: Interval) => `${f3(x.value)} [${f3(x.lo)}, ${f3(x.hi)}]`;

/** The table and the per-budget verdicts, from results/frontier.json of `dir`. */
export function renderFrontier(dir: string): string {
  const r = readResultJson<FrontierReport>(dir, 'frontier.json');
  if (!r) throw new ChessError('MEASURED_RESULTS_INVALID', `${join(dir, 'frontier.json')}: no result file (run pnpm -C benchmarks frontier)`, { path: join(dir, 'frontier.json') });
  const order = ['budget', 'chess', 'chess+', 'cats', 'teal'];
  const rows = [...r.rows].sort((a, b) => order.indexOf(a.method) - order.indexOf(b.method) || a.bytesFraction - b.bytesFraction);
  const lines = [
    `\`${r.command}\` (${r.machine.cpu}, ${r.machine.cores} cores, ${r.date.slice(0, 10)}, ${r.gitRevision.slice(0, 7)}; \`benchmarks/results/frontier.json\`). ${r.heldOut}.`,
    '',
    '| method | target | bytes / token vs dense | mean KL to dense [95 %] | perplexity ratio [95 %] | same top token |',
    '|---|---|---|---|---|---|',
    ...rows.map(
      (x) =>
        `| ${x.method} | ${x.budget !== null ? `budget ${x.budget}` : `sparsity ${x.sparsity}`} | ${f3(x.bytesFraction)} | ${iv(x.meanKl)} | ${iv(x.pplRatio)} | ${(100 * x.sameTop).toFixed(1)} % |`,
    ),
    '',
    ...r.comparisons.map((c) =>
      c.bestPeer
        ? `- budget ${c.budget} (reads ${f3(c.bytesFraction)}): KL ${iv(c.meanKl)} vs the best peer at the same bytes, ${c.bestPeer.method} interpolated ${iv(c.bestPeer.at)} (×${c.ratioToBestPeer!.toFixed(2)}): **${c.verdict}**`
        : `- budget ${c.budget} (reads ${f3(c.bytesFraction)}): KL ${iv(c.meanKl)}; **${c.verdict}**`,
    ),
  ];
  return lines.join('\n');
}

/** `readme` with the text between the frontier markers replaced by `table`. */
export function withFrontier(readme: string, table: string): string {
  return replaceBetweenMarkers(readme, FRONTIER_BEGIN, FRONTIER_END, table);
}
