import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '@chess/core';
import { FRONTIER_BEGIN, FRONTIER_END, type FrontierReport, renderFrontier, withFrontier } from './frontier.ts';

describe("README's accuracy-per-byte table", () => {
  it('is what the committed results/frontier.json gives (run pnpm -C benchmarks readme-measured after new results)', () => {
    const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8');
    expect(readme.includes(FRONTIER_BEGIN) && readme.includes(FRONTIER_END)).toBe(true);
    expect(withFrontier(readme, renderFrontier(join(repoRoot(), 'benchmarks', 'results')))).toBe(readme);
  });

  it('renders each row and each budget verdict of a result file, with its command, machine, date and revision', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chess-frontier-'));
    const iv = (value: number) => ({ value, lo: value * 0.9, hi: value * 1.1 });
    const report: FrontierReport = {
      command: 'pnpm -C benchmarks frontier --windows 2',
      date: '2026-01-02T03:04:05.000Z',
      gitRevision: 'abcdef0123456789',
      machine: { cpu: 'Test CPU', cores: 2 },
      heldOut: 'LAMBADA, 2 windows',
      rows: [
        { method: 'teal', sparsity: 0.5, budget: null, bytesFraction: 0.7312, meanKl: iv(0.5), pplRatio: iv(1.5), sameTop: 0.8, transformSeconds: 10 },
        { method: 'budget', sparsity: null, budget: 0.72, bytesFraction: 0.7201, meanKl: iv(0.3), pplRatio: iv(1.3), sameTop: 0.85, transformSeconds: 12 },
      ],
      comparisons: [{ budget: 0.72, bytesFraction: 0.7201, meanKl: iv(0.3), bestPeer: { method: 'teal', at: iv(0.52) }, verdict: 'better', ratioToBestPeer: 0.3 / 0.52 }],
    };
    writeFileSync(join(dir, 'frontier.json'), JSON.stringify(report));
    const table = renderFrontier(dir);
    expect(table).toContain('| budget | budget 0.72 | 0.720 | 0.300 [0.270, 0.330] | 1.300 [1.170, 1.430] | 85.0 % |');
    expect(table).toContain('| teal | sparsity 0.5 | 0.731 | 0.500 [0.450, 0.550] |');
    expect(table.indexOf('| budget |')).toBeLessThan(table.indexOf('| teal |'));
    expect(table).toContain('- budget 0.72 (reads 0.720): KL 0.300 [0.270, 0.330] vs the best peer at the same bytes, teal interpolated 0.520 [0.468, 0.572] (×0.58): **better**');
    expect(table).toContain('`pnpm -C benchmarks frontier --windows 2` (Test CPU, 2 cores, 2026-01-02, abcdef0');
    expect(withFrontier(`a\n${FRONTIER_BEGIN}\nold\n${FRONTIER_END}\nb`, 'new')).toBe(`a\n${FRONTIER_BEGIN}\nnew\n${FRONTIER_END}\nb`);
    // a result without the task comparison (runs before it) says nothing about tasks
    expect(table).not.toContain('-task average');
    expect(table).not.toContain('per task');
  });

  it('renders the task-average difference at the budget with its paired interval, and per task, when the result has one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chess-frontier-'));
    const iv = (value: number) => ({ value, lo: value * 0.9, hi: value * 1.1 });
    const base: FrontierReport = {
      command: 'pnpm -C benchmarks frontier --tasks-at 0.72',
      date: '2026-01-02T03:04:05.000Z',
      gitRevision: 'abcdef0123456789',
      machine: { cpu: 'Test CPU', cores: 2 },
      heldOut: 'LAMBADA, 2 windows',
      rows: [{ method: 'budget', sparsity: null, budget: 0.72, bytesFraction: 0.7201, meanKl: iv(0.3), pplRatio: iv(1.3), sameTop: 0.85, transformSeconds: 12 }],
      comparisons: [{ budget: 0.72, bytesFraction: 0.7201, meanKl: iv(0.3), bestPeer: null, verdict: 'no peer reaches these bytes', ratioToBestPeer: null }],
    };
    const report: FrontierReport = {
      ...base,
      tasksAtBudget: {
        budget: 0.72,
        runtimes: { dense: 'stock', budget: 'patched' },
        tasks: [
          { task: 'arc_easy', metric: 'acc_norm', documents: 200, difference: { value: -0.025, lo: -0.06, hi: 0.01 } },
          { task: 'boolq', metric: 'acc', documents: 200, difference: { value: 0.015, lo: -0.02, hi: 0.05 } },
        ],
        average: { value: -0.0127, lo: -0.031, hi: 0.004 },
        verdict: 'not distinguishable from dense on these documents (interval includes 0)',
      },
    };
    writeFileSync(join(dir, 'frontier.json'), JSON.stringify(report));
    const table = renderFrontier(dir);
    expect(table).toContain(
      '- 2-task average difference to dense at budget 0.72: −1.3 points [−3.1, +0.4] (200 documents per task, paired bootstrap): **not distinguishable from dense on these documents (interval includes 0)**',
    );
    expect(table).toContain("  - per task, lm-eval's primary metric (dense on the stock build, the budget model on the patched build): arc_easy (acc_norm) −2.5 [−6.0, +1.0], boolq (acc) +1.5 [−2.0, +5.0]");
    // after the per-budget verdicts
    expect(table.indexOf('- budget 0.72 (reads')).toBeLessThan(table.indexOf('- 2-task average'));

    // skipped (--tasks-at none writes null) and absent: no task line
    for (const tasksAtBudget of [null, undefined]) {
      writeFileSync(join(dir, 'frontier.json'), JSON.stringify({ ...base, tasksAtBudget }));
      const without = renderFrontier(dir);
      expect(without).toContain('- budget 0.72 (reads 0.720)');
      expect(without).not.toContain('-task average');
    }

    // tasks with fewer documents than the limit, and an average without an interval
    writeFileSync(
      join(dir, 'frontier.json'),
      JSON.stringify({
        ...report,
        tasksAtBudget: {
          ...report.tasksAtBudget!,
          tasks: [report.tasksAtBudget!.tasks[0]!, { ...report.tasksAtBudget!.tasks[1]!, documents: 1, difference: { value: 0, lo: null, hi: null } }],
          average: { value: -0.0127, lo: null, hi: null },
        },
      }),
    );
    const few = renderFrontier(dir);
    expect(few).toContain('- 2-task average difference to dense at budget 0.72: −1.3 points, no interval (1-200 documents per task, paired bootstrap)');
    expect(few).toContain('boolq (acc) +0.0 (no interval)');
  });
});
