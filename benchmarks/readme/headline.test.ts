import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '@chess/core';
import { HEADLINE_BEGIN, HEADLINE_END, type HeadlineReport, renderHeadline, withHeadline } from './headline.ts';

describe("README's headline table (speed and accuracy of the same files)", () => {
  it('is what the committed results/headline.json gives (run pnpm -C benchmarks readme-measured after new results)', () => {
    const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8');
    expect(readme.includes(HEADLINE_BEGIN) && readme.includes(HEADLINE_END)).toBe(true);
    expect(withHeadline(readme, renderHeadline(join(repoRoot(), 'benchmarks', 'results')))).toBe(readme);
  });

  it('renders each file with its speed, accuracy, size and hash, and the run with its command, machine, date and revision', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chess-headline-'));
    const sp = (median: number) => ({ median, min: median - 0.05, max: median + 0.05 });
    const report: HeadlineReport = {
      command: 'pnpm -C benchmarks headline --windows 2',
      date: '2026-01-02T03:04:05.000Z',
      gitRevision: 'abcdef0123456789',
      machine: { cpu: 'Test CPU', cores: 2, loadAverage: [1.2, 2.5] },
      dense: { fileBytes: 2 ** 20 * 94, sha256: 'f'.repeat(64), stockDecodeTokPerSec: sp(50), stockPrefillTokPerSec: sp(900) },
      patchedDense: { decodeSpeedup: sp(0.99), prefillSpeedup: sp(1) },
      accuracy: 'LAMBADA',
      speed: 'llama-bench',
      rows: [
        {
          method: 'chess+',
          sparsity: 0.5,
          sha256: 'abc123def4567890'.padEnd(64, '0'),
          fileBytes: 2 ** 20 * 94.2,
          sizeVsDense: 1.0021,
          accuracy: { meanKl: { value: 0.2, low: 0.19, high: 0.21 }, pplRatio: { value: 1.167, low: 1.146, high: 1.191 }, sameTop: { value: 0.705, low: 0.69, high: 0.72 }, bytesVsDense: 0.7991 },
          speed: { decodeSpeedup: sp(1.2), prefillSpeedup: sp(1.01), byteIdealSpeedup: 1.25 },
        },
      ],
    };
    report.rows.push({ ...report.rows[0]!, method: 'teal', sparsity: 0, accuracy: { ...report.rows[0]!.accuracy, meanKl: { value: 0, low: 0, high: 2e-7 } } });
    writeFileSync(join(dir, 'headline.json'), JSON.stringify(report));
    const table = renderHeadline(dir);
    expect(table).toContain('| chess+ 50 % | 94.2 MiB (×1.002) | **1.20x** (1.15–1.25) | **1.01x** (0.96–1.06) | 0.799 | 0.2000 [0.1900, 0.2100] | 1.167 [1.146, 1.191] | 70.5 [69.0, 72.0] % | `abc123def456` |');
    expect(table).toContain('| teal 0 % | 94.2 MiB (×1.002) | **1.20x** (1.15–1.25) | **1.01x** (0.96–1.06) | 0.799 | 0 [0, 2.0e-7] |');
    expect(table).toContain('`pnpm -C benchmarks headline --windows 2` (Test CPU, 2 cores, load 1.2–2.5, 2026-01-02, abcdef0');
    expect(table).toContain('stock llama.cpp 50.0 tok/s decode, 900 tok/s prefill');
    expect(withHeadline(`a\n${HEADLINE_BEGIN}\nold\n${HEADLINE_END}\nb`, 'new')).toBe(`a\n${HEADLINE_BEGIN}\nnew\n${HEADLINE_END}\nb`);
  });
});
