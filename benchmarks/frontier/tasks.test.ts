import { describe, expect, it } from 'vitest';
import { type EvalResult } from '@chess/bench';
import { mergeTaskParts, summariseTasksAtBudget } from './tasks.ts';

type Scores = { acc: number[]; accNorm: number[] };

/** An eval result of one model on the given tasks, with per-document 0/1 scores (document ids 0..n-1). */
function evalResult(method: string, path: string, runtime: string, tasks: Record<string, Scores>): EvalResult {
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  return {
    kind: 'chess-eval',
    version: 1,
    createdAt: '2026-01-02T03:04:05.000Z',
    model: { path, fileName: path.split('/').pop()!, sizeBytes: 1000, method, sparsity: method === 'dense' ? 0 : 0.5, architecture: method === 'dense' ? 'llama' : 'chess' },
    runtime: { name: runtime, buildType: 'test', llamaCppRelease: 'test', binary: 'test', systemInfo: '' },
    settings: { tasks: Object.keys(tasks), limit: 200, threads: 2, contextSize: 512, scorer: 'native' },
    note: '',
    tasks: Object.fromEntries(
      Object.entries(tasks).map(([task, s]) => [
        task,
        {
          documents: s.acc.length,
          acc: { value: mean(s.acc), stderr: null },
          accNorm: { value: mean(s.accNorm), stderr: null },
          seconds: 10,
          scoredTokens: 100,
          perDocument: { docId: s.acc.map((_, i) => i), acc: s.acc as (0 | 1)[], accNorm: s.accNorm as (0 | 1)[], pred: s.acc.map(() => 0), predNorm: s.acc.map(() => 0) },
        },
      ]),
    ),
    average: null,
    perplexity: null,
    layerSparsity: null,
  };
}

/** n documents whose first k score 1. */
const ones = (n: number, k: number) => Array.from({ length: n }, (_, i) => (i < k ? 1 : 0));

describe('frontier task comparison at a budget', () => {
  const n = 40;
  // dense: boolq acc 30/40 (acc_norm 10/40, not its metric), arc_easy acc_norm 20/40 (acc 35/40, not its metric)
  const denseBoolq = { acc: ones(n, 30), accNorm: ones(n, 10) };
  const denseArc = { acc: ones(n, 35), accNorm: ones(n, 20) };
  // budget: boolq loses 6 documents of acc, arc_easy gains 2 of acc_norm (the other metric moves the other way)
  const budgetBoolq = { acc: ones(n, 24), accNorm: ones(n, 20) };
  const budgetArc = { acc: ones(n, 5), accNorm: ones(n, 22) };
  const dense = [evalResult('dense', '/m/dense.gguf', 'stock', { boolq: denseBoolq }), evalResult('dense', '/m/dense.gguf', 'stock', { arc_easy: denseArc })];
  const budget = [evalResult('budget', '/m/budget.gguf', 'patched', { boolq: budgetBoolq }), evalResult('budget', '/m/budget.gguf', 'patched', { arc_easy: budgetArc })];
  const meta = { budget: 0.72, documentsPerTask: 200, bytesFraction: 0.7259, compilerSources: 'abc123' };

  it("merges one model's per-task results into one, and refuses results of different models or a task twice", () => {
    const merged = mergeTaskParts(dense);
    expect(Object.keys(merged.tasks)).toEqual(['boolq', 'arc_easy']);
    expect(merged.settings.tasks).toEqual(['boolq', 'arc_easy']);
    expect(merged.tasks.boolq!.acc.value).toBe(0.75);
    expect(merged.average).toBeNull();
    expect(() => mergeTaskParts([dense[0]!, budget[1]!])).toThrow(/different models/);
    expect(() => mergeTaskParts([dense[0]!, dense[0]!])).toThrow(/boolq is in two/);
    expect(() => mergeTaskParts([])).toThrow(/no task results/);
  });

  it("gives per task and on average lm-eval's primary metric difference with a paired interval, the runtimes and the report's verdict", () => {
    const t = summariseTasksAtBudget(mergeTaskParts(dense), mergeTaskParts(budget), meta);
    expect(t.budget).toBe(0.72);
    expect(t.documentsPerTask).toBe(200);
    expect(t.bytesFraction).toBe(0.7259);
    expect(t.runtimes).toEqual({ dense: 'stock', budget: 'patched' });
    expect(t.metric).toMatch(/acc for boolq and winogrande/);
    const boolq = t.tasks.find((x) => x.task === 'boolq')!;
    const arc = t.tasks.find((x) => x.task === 'arc_easy')!;
    expect(boolq).toMatchObject({ metric: 'acc', documents: n, dense: 30 / n, budget: 24 / n });
    expect(arc).toMatchObject({ metric: 'acc_norm', documents: n, dense: 20 / n, budget: 22 / n });
    expect(boolq.difference.value).toBeCloseTo(-6 / n, 12);
    expect(arc.difference.value).toBeCloseTo(2 / n, 12);
    expect(t.average.value).toBeCloseTo((-6 / n + 2 / n) / 2, 12);
    for (const d of [boolq.difference, arc.difference, t.average]) {
      expect(d.lo).not.toBeNull();
      expect(d.lo!).toBeLessThanOrEqual(d.value);
      expect(d.hi!).toBeGreaterThanOrEqual(d.value);
    }
    // boolq: 6 of 40 documents lost, none gained: the differences are -1 or 0, and a resample without a loss is rare (0.85^40)
    expect(boolq.difference.hi!).toBeLessThan(0);
    expect(boolq.difference.lo!).toBeGreaterThanOrEqual(-1);
    // arc_easy: 2 of 40 gained, none lost
    expect(arc.difference.lo!).toBeGreaterThanOrEqual(0);
    expect(t.verdict).toMatch(/dense/);
    expect(t.evalSeconds).toEqual({ dense: 20, budget: 20 });
    expect(t.compilerSources).toBe('abc123');
    // seeded: the same inputs give the same intervals
    expect(summariseTasksAtBudget(mergeTaskParts(dense), mergeTaskParts(budget), meta)).toEqual(t);
  });

  it('a clear loss on every document is reported as below dense with an interval excluding 0', () => {
    const worse = evalResult('budget', '/m/budget.gguf', 'patched', { boolq: { acc: ones(n, 0), accNorm: ones(n, 0) } });
    const t = summariseTasksAtBudget(mergeTaskParts([dense[0]!]), worse, meta);
    expect(t.average.value).toBeCloseTo(-0.75, 12);
    expect(t.average.hi!).toBeLessThan(0);
    expect(t.verdict).toMatch(/below dense \(interval excludes 0\)/);
  });

  it('one document per task: no interval (null in the JSON), not NaN', () => {
    const one = (m: string, p: string, r: string, v: number) => evalResult(m, p, r, { boolq: { acc: [v], accNorm: [v] } });
    const t = summariseTasksAtBudget(one('dense', '/m/d.gguf', 'stock', 1), one('budget', '/m/b.gguf', 'patched', 0), meta);
    expect(t.average).toEqual({ value: -1, lo: null, hi: null });
    expect(JSON.parse(JSON.stringify(t)).average).toEqual({ value: -1, lo: null, hi: null });
  });

  it('refuses a baseline that is not dense, results on different documents, and results without per-document scores', () => {
    expect(() => summariseTasksAtBudget(mergeTaskParts(budget), mergeTaskParts(budget), meta)).toThrow(/not a dense model/);
    const fewer = evalResult('budget', '/m/budget.gguf', 'patched', { boolq: { acc: ones(n - 1, 20), accNorm: ones(n - 1, 20) } });
    expect(() => summariseTasksAtBudget(mergeTaskParts([dense[0]!]), fewer, meta)).toThrow(/different documents/);
    const noScores = evalResult('budget', '/m/budget.gguf', 'patched', { boolq: budgetBoolq });
    delete noScores.tasks.boolq!.perDocument;
    expect(() => summariseTasksAtBudget(mergeTaskParts([dense[0]!]), noScores, meta)).toThrow(/no task scored per document/);
  });
});
