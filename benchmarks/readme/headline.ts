/**
 * The README's headline table: speed and accuracy of the same default sparse files
 * (benchmarks/results/headline.json, `pnpm -C benchmarks headline`), written between
 *
 *   <!-- headline:begin -->
 *   <!-- headline:end -->
 *
 * by `pnpm -C benchmarks readme-measured`; `headline.test.ts` fails while the README differs
 * from what the committed JSON gives.
 */
import { join } from 'node:path';
import { ChessError } from '@chess/core';
import { readResultJson, replaceBetweenMarkers } from './markers.ts';

export const HEADLINE_BEGIN = '<!-- headline:begin -->';
export const HEADLINE_END = '<!-- headline:end -->';

interface Interval {
  value: number;
  low: number | null;
  high: number | null;
}
interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface HeadlineReport {
  command: string;
  date: string;
  gitRevision: string;
  machine: { cpu: string; cores: number; loadAverage?: number[] };
  dense: { fileBytes: number; sha256: string; stockDecodeTokPerSec: Spread; stockPrefillTokPerSec: Spread | null };
  patchedDense: { decodeSpeedup: Spread | null; prefillSpeedup: Spread | null };
  accuracy: string;
  speed: string;
  rows: Array<{
    method: string;
    sparsity: number;
    sha256: string;
    fileBytes: number;
    sizeVsDense: number;
    accuracy: { meanKl: Interval; pplRatio: Interval; sameTop: Interval; bytesVsDense: number | null };
    speed: { decodeSpeedup: Spread | null; prefillSpeedup: Spread | null; byteIdealSpeedup: number };
  }>;
}

const x2 = (s: Spread | null) => (s ? `**${s.median.toFixed(2)}x** (${s.min.toFixed(2)}–${s.max.toFixed(2)})` : '–');
const iv = (x: Interval, digits: number) => `${x.value.toFixed(digits)} [${x.low?.toFixed(digits) ?? '?'}, ${x.high?.toFixed(digits) ?? '?'}]`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
// a KL of exactly 0 (identical distributions) or too small for 4 decimals is shown as such
const klText = (v: number | null | undefined) => (v === null || v === undefined ? '?' : v === 0 ? '0' : v < 1e-3 ? v.toExponential(1) : v.toFixed(4));
const klInterval = (x: Interval) => `${klText(x.value)} [${klText(x.low)}, ${klText(x.high)}]`;

/** The table, from results/headline.json of `dir`. */
export function renderHeadline(dir: string): string {
  const r = readResultJson<HeadlineReport>(dir, 'headline.json');
  if (!r) throw new ChessError('MEASURED_RESULTS_INVALID', `${join(dir, 'headline.json')}: no result file (run pnpm -C benchmarks headline)`, { path: join(dir, 'headline.json') });
  const load = r.machine.loadAverage && r.machine.loadAverage.length > 0 ? `, load ${Math.min(...r.machine.loadAverage).toFixed(1)}–${Math.max(...r.machine.loadAverage).toFixed(1)}` : '';
  return [
    `\`${r.command}\` (${r.machine.cpu}, ${r.machine.cores} cores${load}, ${r.date.slice(0, 10)}, ${r.gitRevision.slice(0, 7)}; \`benchmarks/results/headline.json\`).`,
    `Dense source: ${mib(r.dense.fileBytes)}, stock llama.cpp ${r.dense.stockDecodeTokPerSec.median.toFixed(1)} tok/s decode${r.dense.stockPrefillTokPerSec ? `, ${r.dense.stockPrefillTokPerSec.median.toFixed(0)} tok/s prefill` : ''}; the patched build on the dense file: decode ${x2(r.patchedDense.decodeSpeedup)}, prefill ${x2(r.patchedDense.prefillSpeedup)}.`,
    `Accuracy: ${r.accuracy}. Speed: ${r.speed}.`,
    '',
    '| file (default options) | size vs dense | decode vs stock dense | prefill vs stock dense | bytes / token vs dense | mean KL to dense [95 %] | perplexity ratio [95 %] | same top token [95 %] | sha256 |',
    '|---|---|---|---|---|---|---|---|---|',
    ...r.rows.map(
      (x) =>
        `| ${x.method} ${x.sparsity * 100} % | ${mib(x.fileBytes)} (×${x.sizeVsDense.toFixed(3)}) | ${x2(x.speed.decodeSpeedup)} | ${x2(x.speed.prefillSpeedup)} | ${x.accuracy.bytesVsDense?.toFixed(3) ?? '–'} | ${klInterval(x.accuracy.meanKl)} | ${iv(x.accuracy.pplRatio, 3)} | ${iv({ value: 100 * x.accuracy.sameTop.value, low: x.accuracy.sameTop.low === null ? null : 100 * x.accuracy.sameTop.low, high: x.accuracy.sameTop.high === null ? null : 100 * x.accuracy.sameTop.high }, 1)} % | \`${x.sha256.slice(0, 12)}\` |`,
    ),
  ].join('\n');
}

/** `readme` with the text between the headline markers replaced by `table`. */
export function withHeadline(readme: string, table: string): string {
  return replaceBetweenMarkers(readme, HEADLINE_BEGIN, HEADLINE_END, table);
}
