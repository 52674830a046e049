import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isChessError } from '@chess/core';
import { accuracyDifferenceSeries, accuracySeries, layerSeries, loadResults, renderHtml, renderMarkdown, speedupSeries } from './report.ts';
import { seededRandom } from './intervals.ts';
import { pairedComparison } from './paired.ts';
import type { BenchResult, EvalResult } from './schema.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-bench-report-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const runtime = { name: 'stock', buildType: 'prebuilt', llamaCppRelease: 'b1', binary: '/x/llama-addon.node', systemInfo: 'AVX2 = 1' };

function evalResult(method: string, sparsity: number, accNorm: number, layers: number[] | null = null): EvalResult {
  const metric = { value: accNorm, stderr: 0.02 };
  return {
    kind: 'chess-eval',
    version: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    model: { path: `/m/${method}-${sparsity}.gguf`, fileName: `${method}-${sparsity}.gguf`, sizeBytes: 1000, method, sparsity, architecture: 'llama' },
    runtime,
    settings: { tasks: ['piqa', 'arc_easy'], limit: 100, threads: 2, contextSize: 512 },
    note: 'CHESS thresholds apply to every token, prefill included.',
    tasks: {
      piqa: { documents: 100, acc: metric, accNorm: metric, seconds: 1, scoredTokens: 10 },
      arc_easy: { documents: 100, acc: metric, accNorm: { value: accNorm, stderr: null }, seconds: 1, scoredTokens: 10 },
    },
    average: { tasks: ['piqa', 'arc_easy'], acc: metric, accNorm: metric },
    perplexity: { source: 'lambada', ctx: 512, windows: 4, windowsAvailable: 800, textTokens: 400000, scoredTokens: 1020, perplexity: 20.5, perplexityStderr: 1.1, meanNll: 3.02, seconds: 9 },
    layerSparsity: layers,
  };
}

function benchResult(): BenchResult {
  const spreadOf = (v: number) => ({ median: v, min: v * 0.9, max: v * 1.1 });
  const model = (method: string, sparsity: number) => ({
    path: `/m/${method}.gguf`,
    fileName: `${method}.gguf`,
    sizeBytes: 2 ** 20,
    method,
    sparsity,
    architecture: 'llama',
    runtime,
  });
  return {
    kind: 'chess-bench',
    version: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    machine: { cpu: 'Test CPU', cores: 2, memoryBytes: 2 ** 34 },
    settings: { threads: [1], tokens: 32, promptTokens: 64, repeat: 3 },
    models: [model('dense', 0), model('chess', 0.5)],
    measurements: [],
    summary: [
      { model: 0, threads: 1, decodeTokPerSec: spreadOf(10), prefillTokPerSec: spreadOf(100), timeToFirstTokenMs: spreadOf(640), peakRssBytes: 2 ** 27, weightBytesReadFraction: null, decodeSpeedup: null, prefillSpeedup: null },
      { model: 1, threads: 1, decodeTokPerSec: spreadOf(15), prefillTokPerSec: spreadOf(110), timeToFirstTokenMs: spreadOf(600), peakRssBytes: 2 ** 27, weightBytesReadFraction: 0.55, decodeSpeedup: spreadOf(1.5), prefillSpeedup: spreadOf(1.1) },
    ],
  };
}

async function file(name: string, value: unknown): Promise<string> {
  const path = join(work, name);
  await writeFile(path, typeof value === 'string' ? value : JSON.stringify(value));
  return path;
}

describe('chess report', () => {
  it('renders eval and bench results as Markdown and a self-contained HTML page', async () => {
    const files = [
      await file('dense.json', evalResult('dense', 0, 0.6)),
      await file('chess50.json', evalResult('chess', 0.5, 0.58, [0.4, 0.5, 0.6])),
      await file('bench.json', benchResult()),
    ];
    const input = loadResults(files);
    const md = renderMarkdown(input);
    // Tasks in the paper's order (arc_easy before piqa).
    expect(md).toContain('| model | method | sparsity | docs/task | arc_easy (acc_norm) | piqa (acc_norm) | average |');
    expect(md).toContain('| chess-0.5.gguf | chess | 50% | ≤100 | 58.0 | 58.0 ± 2.0 | 58.0 |');
    // Achieved sparsity is the mean over layers: (0.4 + 0.5 + 0.6) / 3 = 50.0%.
    expect(md).toContain('| chess-0.5.gguf | chess | 50% | stock | 50.0% | – | – | 20.500 (LAMBADA, ctx 512, 4 windows) |');
    expect(md).toContain('1.50 (1.35–1.65)×');
    // bytes per decoded token relative to the dense baseline read whole: 0.55 of an equal-size file
    expect(md).toContain('| 1.0 MiB | 0.550× (0.6 MiB) |');
    expect(md).toContain('prefill included');
    const html = renderHtml(input);
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect((html.match(/<svg /g) ?? []).length).toBe(3);
    // Self-contained: no script, no stylesheet link, no remote resource (only the SVG namespace URI).
    expect(html).not.toMatch(/<script|<link|src=|url\(/i);
    expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '')).not.toMatch(/https?:/);
    expect(html).toContain('Achieved sparsity per layer');
  });

  it('plots accuracy per method with the dense point at sparsity 0, speedup per method, achieved sparsity per layer', () => {
    const input = { evals: [{ file: 'a', result: evalResult('dense', 0, 0.6) }, { file: 'b', result: evalResult('chess', 0.5, 0.58) }], benches: [{ file: 'c', result: benchResult() }] };
    const acc = accuracySeries(input);
    expect(acc).toHaveLength(1);
    expect(acc[0]!.name).toBe('chess');
    expect(acc[0]!.points.map((p) => p.x)).toEqual([0, 50]);
    expect(acc[0]!.points[0]!.y).toBeCloseTo(60, 10);
    expect(acc[0]!.points[1]!.y).toBeCloseTo(58, 10);
    const speed = speedupSeries(input);
    expect(speed.map((s) => s.name)).toEqual(['chess']);
    expect(speed[0]!.points.map((p) => [p.x, p.y])).toEqual([
      [0, 1],
      [50, 1.5],
    ]);
    const layers = layerSeries({ ...input, evals: [...input.evals, { file: 'd', result: evalResult('chess', 0.7, 0.5, [0.6, 0.7]) }] });
    expect(layers.map((s) => s.name)).toEqual(['chess 70% (eval)']);
    expect(layers[0]!.points.map((p) => [p.x, p.y])).toEqual([
      [0, 60],
      [1, 70],
    ]);
  });

  it('names the file and the field of an invalid result', async () => {
    const bad = evalResult('dense', 0, 0.6) as unknown as { tasks: { piqa: { acc: { value: unknown } } } };
    bad.tasks.piqa.acc.value = 'high';
    const cases: [string, unknown, RegExp][] = [
      ['bad-field.json', bad, /bad-field\.json: field 'tasks\.piqa\.acc\.value'/],
      ['bad-kind.json', { kind: 'other' }, /bad-kind\.json: field 'kind'/],
      ['bad-sparsity.json', { ...benchResult(), models: [{ ...benchResult().models[0]!, sparsity: 2 }] }, /bad-sparsity\.json: field 'models\[0\]\.sparsity'/],
      ['not-json.json', '{"kind":', /not-json\.json: not valid JSON/],
    ];
    for (const [name, value, pattern] of cases) {
      const path = await file(name, value);
      try {
        loadResults([path]);
        expect.unreachable(name);
      } catch (error) {
        expect(isChessError(error) && error.code).toBe('REPORT_BAD_RESULT');
        expect((error as Error).message).toMatch(pattern);
      }
    }
    try {
      loadResults([join(work, 'absent.json')]);
      expect.unreachable();
    } catch (error) {
      expect(isChessError(error) && error.code).toBe('REPORT_FILE_UNREADABLE');
    }
  });

  /** Per-document 0/1 scores: the dense ones from a seeded draw, the sparse ones with `down` of its 1s turned to 0 and `up` of its 0s to 1. */
  function withDocuments(e: EvalResult, dense: number[], down: number, up: number): EvalResult {
    const v = dense.slice();
    let d = down;
    let u = up;
    for (let i = 0; i < v.length; i++) {
      if (v[i] === 1 && d > 0) {
        v[i] = 0;
        d--;
      } else if (v[i] === 0 && u > 0) {
        v[i] = 1;
        u--;
      }
    }
    const per = { docId: v.map((_, i) => 1000 + i), acc: v as (0 | 1)[], accNorm: v as (0 | 1)[], pred: v.map(() => 0), predNorm: v.map(() => 0) };
    const metric = { value: v.reduce((a, b) => a + b, 0) / v.length, stderr: 0.03 };
    return {
      ...e,
      tasks: {
        piqa: { ...e.tasks.piqa!, documents: v.length, acc: metric, accNorm: metric, perDocument: per },
        arc_easy: { ...e.tasks.arc_easy!, documents: v.length, acc: metric, accNorm: metric, perDocument: per },
      },
    };
  }

  it('does not rank a sparse model whose paired difference from dense has an interval including 0, and says so', async () => {
    const random = seededRandom(7);
    const dense = Array.from({ length: 300 }, () => (random() < 0.6 ? 1 : 0));
    const base = withDocuments(evalResult('dense', 0, 0.6), dense, 0, 0);
    // 5 fewer and 2 more correct of 300: -1.0 point, well inside the noise of 300 paired documents
    const close = withDocuments(evalResult('chess', 0.5, 0.59), dense, 5, 2);
    // 60 fewer correct: -20 points, far outside it
    const far = withDocuments(evalResult('teal', 0.7, 0.4), dense, 60, 0);
    const files = [await file('p-dense.json', base), await file('p-chess.json', close), await file('p-teal.json', far)];
    const input = loadResults(files);
    const md = renderMarkdown(input);
    // the difference itself, computed here from the per-document scores: (2 - 5) / 300
    const c = pairedComparison(base, close)!;
    expect(c.average!.value).toBeCloseTo(-3 / 300, 12);
    expect(c.average!.low).toBeLessThan(0);
    expect(c.average!.high).toBeGreaterThan(0);
    expect(md).toContain('| chess-0.5.gguf | chess | 50% | – | – | – | – | −1.0 [');
    expect(md).toContain('not distinguishable from dense on these documents (interval includes 0)');
    expect(md).toMatch(/Not ranked: the task-average difference from dense of chess-0\.5\.gguf has a 95% interval that includes 0/);
    // the far one is supported, and not listed as unranked
    expect(md).toContain('task average below dense (interval excludes 0)');
    expect(md).toContain('teal-0.7.gguf: task average −20.0 points from dense, interval excludes 0.');
    expect(md).not.toMatch(/Not ranked:[^\n]*teal/);
    // the one-line conclusion: the teal loss is supported, the chess difference (and any ranking) is not; no divergence was measured
    expect(md).toMatch(/Supported by these numbers: [^\n]*a task-average loss of teal 70%/);
    expect(md).toMatch(/Not supported: [^\n]*a task-accuracy difference between chess 50% and dense, or a ranking of them \(−1\.0 \[[^\]]+\] points includes 0 on 300 documents per task\)/);
    expect(md).toMatch(/Not supported: [^\n]*any divergence figure for chess 50%/);
    // per-task cells of the close model carry the ≈0 mark
    expect(md).toMatch(/\| chess-0\.5\.gguf \| chess \| 50% \| −1\.0 \[[^\]]+\] ≈0 \|/);
    // the plot draws the paired interval as error bars
    const series = accuracyDifferenceSeries(input);
    const chess = series.find((x) => x.name === 'chess')!;
    expect(chess.points[1]!.yLow).toBeCloseTo(100 * c.average!.low, 10);
    expect(chess.points[1]!.yHigh).toBeCloseTo(100 * c.average!.high, 10);
    // a model scored on other documents is refused, not silently compared
    const shifted = withDocuments(evalResult('cats', 0.5, 0.6), dense.slice(0, 299), 0, 0);
    expect(() => pairedComparison(base, shifted)).toThrow(/different documents/);
  });
});
