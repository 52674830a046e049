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
  /** The 8 tasks at one budget against dense on the same documents (frontier/tasks.ts); absent in runs before it, null when skipped. */
  tasksAtBudget?: TasksAtBudgetReport | null;
}

/** Differences are fractions (0.01 = 1 point); an interval end is null when there were too few documents for one. */
interface PointsInterval {
  value: number;
  lo: number | null;
  hi: number | null;
}

export interface TasksAtBudgetReport {
  budget: number;
  runtimes: { dense: string; budget: string };
  tasks: Array<{ task: string; metric: string; documents: number; difference: PointsInterval }>;
  average: PointsInterval;
  verdict: string;
}

const f3 = (v: number) => v.toFixed(3);
const iv = (x: Interval) => `${f3(x.value)} [${f3(x.lo)}, ${f3(x.hi)}]`;
const points = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(100 * v).toFixed(1)}`;
const pointsIv = (x: PointsInterval) => (x.lo !== null && x.hi !== null ? `${points(x.value)} [${points(x.lo)}, ${points(x.hi)}]` : `${points(x.value)} (no interval)`);

/** The task comparison's lines (none when the result has no task comparison). */
function tasksLines(t: TasksAtBudgetReport | null | undefined): string[] {
  if (!t) return [];
  const docs = t.tasks.map((x) => x.documents);
  const a = t.average;
  const n = Math.min(...docs) === Math.max(...docs) ? `${docs[0]}` : `${Math.min(...docs)}-${Math.max(...docs)}`;
  return [
    `- ${t.tasks.length}-task average difference to dense at budget ${t.budget}: ${points(a.value)} points${a.lo !== null && a.hi !== null ? ` [${points(a.lo)}, ${points(a.hi)}]` : ', no interval'} (${n} documents per task, paired bootstrap): **${t.verdict}**`,
    `  - per task, lm-eval's primary metric (dense on the ${t.runtimes.dense} build, the budget model on the ${t.runtimes.budget} build): ` +
      t.tasks.map((x) => `${x.task} (${x.metric}) ${pointsIv(x.difference)}`).join(', '),
  ];
}

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
    ...tasksLines(r.tasksAtBudget),
  ];
  return lines.join('\n');
}

/** `readme` with the text between the frontier markers replaced by `table`. */
export function withFrontier(readme: string, table: string): string {
  return replaceBetweenMarkers(readme, FRONTIER_BEGIN, FRONTIER_END, table);
}
