/**
 * The frontier's task evaluation at one budget: the dense model and the budget model on the same
 * first N documents of the 8 tasks (one `chess eval` per model and task, cached), compared per
 * task and on the 8-task average with the report's paired comparison (`comparisons` of
 * @chess/bench: the difference of lm-eval's primary metric, a seeded paired bootstrap over
 * documents).
 */
import { ChessError } from '@chess/core';
import { METRIC_NOTE, comparisons, verdict, type EvalResult } from '@chess/bench';

export interface Interval3 {
  value: number;
  /** null when there are too few documents for an interval (JSON has no NaN). */
  lo: number | null;
  hi: number | null;
}

export interface TasksAtBudget {
  budget: number;
  /** The --task-limit: the first N documents of each task (fewer where a task has fewer). */
  documentsPerTask: number;
  /** The budget model's weight bytes per token on the held-out text over the dense model's (its row of the table). */
  bytesFraction: number | null;
  runtimes: { dense: string; budget: string };
  metric: string;
  interval: string;
  tasks: Array<{ task: string; metric: 'acc' | 'acc_norm'; documents: number; dense: number; budget: number; difference: Interval3 }>;
  /** Unweighted mean over the tasks of the primary metric's difference (budget - dense), fractions (0.01 = 1 point). */
  average: Interval3;
  /** The report's verdict on the average (`verdict` of @chess/bench). */
  verdict: string;
  /** Scoring seconds of the two models' task evals, as the eval results record them. */
  evalSeconds: { dense: number; budget: number };
  /** Compiler sources the budget model was compiled with. */
  compilerSources: string;
}

/** One eval result from per-task results of the same model (`chess eval --tasks T` each): their tasks side by side. */
export function mergeTaskParts(parts: readonly EvalResult[]): EvalResult {
  const first = parts[0];
  if (!first) throw new ChessError('FRONTIER_NO_TASK_RESULTS', 'no task results to merge', {});
  const tasks: EvalResult['tasks'] = {};
  for (const p of parts) {
    if (p.model.path !== first.model.path) {
      throw new ChessError('FRONTIER_TASK_RESULTS_DIFFER', `task results of different models: ${first.model.path} and ${p.model.path}`, { models: [first.model.path, p.model.path] });
    }
    for (const [task, t] of Object.entries(p.tasks)) {
      if (tasks[task]) throw new ChessError('FRONTIER_TASK_RESULTS_DIFFER', `task ${task} is in two of the results of ${first.model.path}`, { task });
      tasks[task] = t;
    }
  }
  // the per-part averages would mislead: the comparison averages the tasks itself
  return { ...first, settings: { ...first.settings, tasks: Object.keys(tasks) }, tasks, average: null };
}

const interval3 = (i: { value: number; low: number; high: number }): Interval3 => ({
  value: i.value,
  lo: Number.isFinite(i.low) ? i.low : null,
  hi: Number.isFinite(i.high) ? i.high : null,
});

/** The budget model against dense on the same documents of every task both scored, as the report compares a sparse model with dense. */
export function summariseTasksAtBudget(
  dense: EvalResult,
  budgetModel: EvalResult,
  meta: { budget: number; documentsPerTask: number; bytesFraction: number | null; compilerSources: string },
): TasksAtBudget {
  if (dense.model.method !== 'dense') throw new ChessError('FRONTIER_NOT_DENSE', `${dense.model.fileName} is not a dense model (method ${dense.model.method})`, { model: dense.model.path });
  const [c] = comparisons({ evals: [{ file: dense.model.path, result: dense }, { file: budgetModel.model.path, result: budgetModel }], benches: [] });
  const paired = c?.paired;
  if (!c || !paired?.average) {
    throw new ChessError('FRONTIER_NO_PAIRED_SCORES', `${budgetModel.model.fileName} and ${dense.model.fileName}: no task scored per document in both`, {});
  }
  const seconds = (r: EvalResult) => Object.values(r.tasks).reduce((s, t) => s + t.seconds, 0);
  return {
    budget: meta.budget,
    documentsPerTask: meta.documentsPerTask,
    bytesFraction: meta.bytesFraction,
    runtimes: { dense: dense.runtime.name, budget: budgetModel.runtime.name },
    metric: METRIC_NOTE,
    interval: `95 % percentile interval of a seeded paired bootstrap over documents (apps/bench/src/paired.ts: seed ${paired.seed}, ${paired.resamples} resamples; the same resampled documents for both models and, per replicate, for every task of the average)`,
    tasks: paired.tasks.map((t) => ({
      task: t.task,
      metric: t.metric === 'acc' ? 'acc' : 'acc_norm',
      documents: t.documents,
      dense: t.base,
      budget: t.other,
      difference: interval3(t.difference),
    })),
    average: interval3(paired.average),
    verdict: verdict(c),
    evalSeconds: { dense: seconds(dense), budget: seconds(budgetModel) },
    compilerSources: meta.compilerSources,
  };
}
