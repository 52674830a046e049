import { describe, expect, it } from 'vitest';
import { aggregateTask, argmax, averageOverTasks, normalisationLength, scoreDocument, stderrOfMean } from './metrics.ts';

/**
 * A hand-made request set with known log-likelihoods. Expected values are
 * worked out by hand below (lm-eval definitions), and the standard errors were
 * checked with Python's statistics.stdev(x) / sqrt(n):
 *   stdev([1,0,0,1]) / 2 = 0.28867513459481287
 *   stdev([1,1,1,0]) / 2 = 0.25
 *   sqrt(0.2886751^2 + 0.25^2) / 2 = 0.19094065395649332
 */
const docs = [
  {
    // acc: argmax(-1.0, -1.2) = 0 = label -> 1
    // acc_norm: -1.0/len("yes")=-0.333, -1.2/len("no")=-0.6 -> 0 -> 1
    label: 0,
    choices: [
      { continuation: ' yes', logLikelihood: -1.0 },
      { continuation: ' no', logLikelihood: -1.2 },
    ],
  },
  {
    // acc: argmax(-4.0, -5.5) = 0 != 1 -> 0
    // acc_norm: -4/len("a cat")=-0.8, -5.5/len("an elephant")=-0.5 -> 1 -> 1
    label: 1,
    choices: [
      { continuation: ' a cat', logLikelihood: -4.0 },
      { continuation: ' an elephant', logLikelihood: -5.5 },
    ],
  },
  {
    // acc: argmax(-2, -2, -9): tie, the first wins (numpy.argmax) -> 0 != 2 -> 0
    // acc_norm: -2/1, -2/2, -9/3 = -2, -1, -3 -> 1 != 2 -> 0
    label: 2,
    choices: [
      { continuation: ' x', logLikelihood: -2.0 },
      { continuation: ' yy', logLikelihood: -2.0 },
      { continuation: ' zzz', logLikelihood: -9.0 },
    ],
  },
  {
    // Lengths are code points (Python len): "𝔸𝔸" is 2 (4 UTF-16 units, 8 UTF-8 bytes).
    // acc: argmax(-3.0, -3.3) = 0 -> 1
    // acc_norm: -3/2 = -1.5, -3.3/3 = -1.1 -> 1 != 0 -> 0 (with UTF-16 length 4 it would be 1)
    label: 0,
    choices: [
      { continuation: ' 𝔸𝔸', logLikelihood: -3.0 },
      { continuation: ' abc', logLikelihood: -3.3 },
    ],
  },
];

describe('lm-eval multiple-choice metrics', () => {
  it('scores each document by hand-computed acc / acc_norm', () => {
    const scores = docs.map((d) => scoreDocument(d.choices, d.label));
    expect(scores.map((s) => s.acc)).toEqual([1, 0, 0, 1]);
    expect(scores.map((s) => s.accNorm)).toEqual([1, 1, 0, 0]);
    expect(scores.map((s) => s.pred)).toEqual([0, 0, 0, 0]);
    expect(scores.map((s) => s.predNorm)).toEqual([0, 1, 1, 1]);
  });

  it('normalises by the code points of the choice without the delimiter space', () => {
    expect(normalisationLength(' yes')).toBe(3);
    expect(normalisationLength(' 𝔸𝔸')).toBe(2);
    expect(normalisationLength('no-space')).toBe(8);
    expect(normalisationLength('  two')).toBe(4); // only one delimiter space is removed
  });

  it('aggregates with the sample standard error of the mean', () => {
    const task = aggregateTask(docs.map((d) => scoreDocument(d.choices, d.label)));
    expect(task.documents).toBe(4);
    expect(task.acc.value).toBe(0.5);
    expect(task.acc.stderr).toBeCloseTo(0.28867513459481287, 14);
    expect(task.accNorm.value).toBe(0.5);
    expect(task.accNorm.stderr).toBeCloseTo(0.28867513459481287, 14);
    expect(stderrOfMean([1, 1, 1, 0])).toBeCloseTo(0.25, 14);
    expect(Number.isNaN(stderrOfMean([1]))).toBe(true);
  });

  it('averages tasks unweighted, combining standard errors as independent', () => {
    const a = aggregateTask(docs.map((d) => scoreDocument(d.choices, d.label)));
    const b = { documents: 4, acc: { value: 0.75, stderr: 0.25 }, accNorm: { value: 0.75, stderr: 0.25 } };
    const avg = averageOverTasks([a, b]);
    expect(avg.acc.value).toBeCloseTo(0.625, 14);
    expect(avg.acc.stderr).toBeCloseTo(0.19094065395649332, 14);
  });

  it('argmax returns the first maximum', () => {
    expect(argmax([1, 3, 3, 2])).toBe(1);
    expect(argmax([-5])).toBe(0);
  });
});
