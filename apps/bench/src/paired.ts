import { ChessError } from '@chess/core';
import { BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, quantile, seededRandom, type Interval } from './intervals.ts';
import type { EvalResult } from './schema.ts';

/**
 * Paired comparison of two eval results on the same documents: per task and
 * for the average over tasks, the difference (other - base) of the primary
 * metric with a 95 % percentile interval from a seeded bootstrap over
 * documents (the same resampled documents for both models: their per-document
 * scores are paired).
 */

/**
 * The metric lm-evaluation-harness's task configs report for each task:
 * acc_norm where the config lists it (ARC, HellaSwag, OpenBookQA, PIQA, SciQ),
 * acc where it is the only metric (BoolQ; Winogrande's partial scoring has no
 * length normalisation). BoolQ's acc_norm would divide by the answer length
 * (" yes" 3 characters, " no" 2) and favour "no".
 */
export const PRIMARY_METRIC: Readonly<Record<string, 'acc' | 'accNorm'>> = {
  arc_challenge: 'accNorm',
  arc_easy: 'accNorm',
  boolq: 'acc',
  hellaswag: 'accNorm',
  openbookqa: 'accNorm',
  piqa: 'accNorm',
  sciq: 'accNorm',
  winogrande: 'acc',
};

export function primaryMetric(task: string): 'acc' | 'accNorm' {
  return PRIMARY_METRIC[task] ?? 'accNorm';
}

export const METRIC_NOTE =
  'Primary metric per task as lm-evaluation-harness reports it: acc for boolq and winogrande, acc_norm (log-likelihood divided by the answer length in characters) for ' +
  'arc_challenge, arc_easy, hellaswag, openbookqa, piqa and sciq; the average is the unweighted mean of the primary metrics.';

export interface TaskDifference {
  task: string;
  metric: 'acc' | 'accNorm';
  documents: number;
  base: number;
  other: number;
  difference: Interval;
}

export interface PairedComparison {
  tasks: TaskDifference[];
  /** Unweighted mean over the tasks of the primary metric's difference. */
  average: Interval | null;
  seed: number;
  resamples: number;
}

type PerDocument = NonNullable<EvalResult['tasks'][string]['perDocument']>;

/** The per-document scores of `task` in both results, aligned by document id; an error when they do not cover the same documents. */
function aligned(task: string, base: EvalResult, other: EvalResult, metric: 'acc' | 'accNorm'): { a: number[]; b: number[] } | null {
  const pa = base.tasks[task]?.perDocument;
  const pb = other.tasks[task]?.perDocument;
  if (!pa || !pb) return null;
  const index = new Map<number, number>();
  pa.docId.forEach((id, i) => index.set(id, i));
  if (pa.docId.length !== pb.docId.length || pb.docId.some((id) => !index.has(id))) {
    throw new ChessError(
      'REPORT_DOCUMENTS_DIFFER',
      `task ${task}: ${base.model.fileName} and ${other.model.fileName} were scored on different documents (${pa.docId.length} vs ${pb.docId.length}); evaluate both with the same --limit`,
      { task },
    );
  }
  const pick = (p: PerDocument) => (metric === 'acc' ? p.acc : p.accNorm);
  const va = pick(pa);
  const vb = pick(pb);
  return { a: pb.docId.map((id) => va[index.get(id)!]!), b: vb.slice() };
}

/** Paired differences other - base over the tasks both results scored per document (null when there are none). */
export function pairedComparison(base: EvalResult, other: EvalResult, options: { seed?: number; resamples?: number } = {}): PairedComparison | null {
  const seed = options.seed ?? BOOTSTRAP_SEED;
  const resamples = options.resamples ?? BOOTSTRAP_RESAMPLES;
  const tasks = Object.keys(base.tasks).filter((t) => other.tasks[t]);
  const data: { task: string; metric: 'acc' | 'accNorm'; d: number[]; a: number[]; b: number[] }[] = [];
  for (const task of tasks) {
    const metric = primaryMetric(task);
    const pair = aligned(task, base, other, metric);
    if (!pair) continue;
    data.push({ task, metric, a: pair.a, b: pair.b, d: pair.b.map((v, i) => v - pair.a[i]!) });
  }
  if (data.length === 0) return null;
  const mean = (v: readonly number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  // One resampling per task and replicate, shared by the task's interval and the average's.
  const random = seededRandom(seed);
  const perTask = data.map(() => new Float64Array(resamples));
  const average = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    data.forEach((t, k) => {
      const n = t.d.length;
      let s = 0;
      for (let i = 0; i < n; i++) s += t.d[Math.floor(random() * n)]!;
      perTask[k]![r] = s / n;
      sum += s / n;
    });
    average[r] = sum / data.length;
  }
  const interval = (value: number, stats: Float64Array, n: number): Interval => {
    if (n < 2) return { value, low: Number.NaN, high: Number.NaN };
    const sorted = Float64Array.from(stats).sort();
    return { value, low: quantile(sorted, 0.025), high: quantile(sorted, 0.975) };
  };
  const taskDiffs = data.map((t, k) => ({
    task: t.task,
    metric: t.metric,
    documents: t.d.length,
    base: mean(t.a),
    other: mean(t.b),
    difference: interval(mean(t.d), perTask[k]!, t.d.length),
  }));
  const minDocs = Math.min(...data.map((t) => t.d.length));
  return {
    tasks: taskDiffs,
    average: interval(mean(taskDiffs.map((t) => t.difference.value)), average, minDocs),
    seed,
    resamples,
  };
}

/** Average of the primary metrics over tasks (the 8-task average), from per-task values. */
export function primaryAverage(result: EvalResult): number | null {
  const tasks = Object.entries(result.tasks);
  if (tasks.length === 0) return null;
  return tasks.reduce((s, [task, t]) => s + (primaryMetric(task) === 'acc' ? t.acc.value : t.accNorm.value), 0) / tasks.length;
}
