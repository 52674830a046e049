/**
 * Zero-shot multiple-choice metrics as lm-evaluation-harness defines them:
 *  - acc: the choice with the largest log-likelihood (sum over its tokens) is
 *    the gold one (ties go to the first, like numpy.argmax);
 *  - acc_norm: the same after dividing each log-likelihood by the length in
 *    characters (Unicode code points, Python's len) of the choice text, i.e.
 *    the continuation without the single leading space lm-eval adds as target
 *    delimiter;
 *  - standard errors: sample standard deviation (n - 1) over the documents'
 *    0/1 scores divided by sqrt(n) (lm-eval's `mean_stderr`).
 */

import { primaryMetric } from './paired.ts';

export interface ScoredChoice {
  /** Sum of the log-probabilities (natural log) of the continuation's tokens. */
  logLikelihood: number;
  continuation: string;
}

export interface DocScore {
  acc: 0 | 1;
  accNorm: 0 | 1;
  pred: number;
  predNorm: number;
}

/** Index of the first maximum (numpy.argmax semantics). */
export function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** Length lm-eval divides by for acc_norm: code points of the choice text (continuation minus its leading delimiter space). */
export function normalisationLength(continuation: string): number {
  const choice = continuation.startsWith(' ') ? continuation.slice(1) : continuation;
  return Math.max(1, [...choice].length);
}

export function scoreDocument(choices: readonly ScoredChoice[], label: number): DocScore {
  const lls = choices.map((c) => c.logLikelihood);
  const pred = argmax(lls);
  const predNorm = argmax(choices.map((c) => c.logLikelihood / normalisationLength(c.continuation)));
  return { acc: pred === label ? 1 : 0, accNorm: predNorm === label ? 1 : 0, pred, predNorm };
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Standard error of the mean with the sample standard deviation (n - 1); NaN below two values. */
export function stderrOfMean(values: readonly number[]): number {
  const n = values.length;
  if (n < 2) return Number.NaN;
  const m = mean(values);
  let ss = 0;
  for (const v of values) ss += (v - m) ** 2;
  return Math.sqrt(ss / (n - 1)) / Math.sqrt(n);
}

export interface MetricWithError {
  value: number;
  stderr: number;
}

export interface TaskMetrics {
  documents: number;
  acc: MetricWithError;
  accNorm: MetricWithError;
}

export function aggregateTask(scores: readonly DocScore[]): TaskMetrics {
  const acc = scores.map((s) => s.acc);
  const accNorm = scores.map((s) => s.accNorm);
  return {
    documents: scores.length,
    acc: { value: mean(acc), stderr: stderrOfMean(acc) },
    accNorm: { value: mean(accNorm), stderr: stderrOfMean(accNorm) },
  };
}

/**
 * Unweighted average over tasks (as the CHESS paper reports it); its standard
 * error treats the tasks as independent: sqrt(sum se_i^2) / k.
 */
export function averageOverTasks(
  tasks: readonly TaskMetrics[],
  names?: readonly string[],
): { acc: MetricWithError; accNorm: MetricWithError; primary: MetricWithError } {
  const avg = (pick: (t: TaskMetrics, i: number) => MetricWithError): MetricWithError => ({
    value: mean(tasks.map((t, i) => pick(t, i).value)),
    stderr: Math.sqrt(tasks.reduce((s, t, i) => s + pick(t, i).stderr ** 2, 0)) / tasks.length,
  });
  // primary: each task's lm-eval metric (paired.ts PRIMARY_METRIC); acc_norm for unnamed tasks
  return { acc: avg((t) => t.acc), accNorm: avg((t) => t.accNorm), primary: avg((t, i) => (names && primaryMetric(names[i]!) === 'acc' ? t.acc : t.accNorm)) };
}
