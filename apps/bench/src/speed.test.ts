import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isChessError } from '@chess/core';
import { fetchDefaultModel } from '@chess/assets';
import { buildBackend } from '@chess/backend-llamacpp';
import { benchResultSchema, type BenchMeasurement } from './schema.ts';
import { parseThreads, runBench, runInChild, spread, summarise } from './speed.ts';
import type { RunnerInput, RunnerOutput } from './speed-runner.ts';

let model: string;
let work: string;
beforeAll(async () => {
  model = await fetchDefaultModel();
  work = await mkdtemp(join(tmpdir(), 'chess-bench-speed-'));
}, 600_000);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const runtime = { name: 'stock', buildType: 'prebuilt', llamaCppRelease: 'test', binary: 'test', systemInfo: '' };

function measurement(model: number, repeat: number, decode: number, prefill: number): BenchMeasurement {
  return {
    model,
    threads: 1,
    repeat,
    promptTokens: 8,
    generatedTokens: 4,
    prefillTokPerSec: prefill,
    decodeTokPerSec: decode,
    timeToFirstTokenMs: 1000 / prefill,
    loadMs: 1,
    peakRssBytes: 100 + model,
    weightBytesReadFraction: null,
    layerSparsity: null,
  };
}

describe('speed statistics', () => {
  it('spread gives median, min and max', () => {
    expect(spread([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3 });
    expect(spread([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4 });
  });

  it('speedups are per-repeat ratios to the first model', () => {
    // Repeat 0: B/A = 30/10 = 3; repeat 1: 40/20 = 2; repeat 2: 25/10 = 2.5 -> median 2.5, min 2, max 3.
    const rows = [
      measurement(0, 0, 10, 100),
      measurement(1, 0, 30, 100),
      measurement(0, 1, 20, 100),
      measurement(1, 1, 40, 300),
      measurement(0, 2, 10, 100),
      measurement(1, 2, 25, 200),
    ];
    const [a, b] = summarise(rows, 2, [1]);
    expect(a!.decodeSpeedup).toBeNull();
    expect(a!.decodeTokPerSec).toEqual({ median: 10, min: 10, max: 20 });
    expect(b!.decodeSpeedup).toEqual({ median: 2.5, min: 2, max: 3 });
    expect(b!.prefillSpeedup).toEqual({ median: 2, min: 1, max: 3 });
    expect(b!.peakRssBytes).toBe(101);
  });

  it('rejects bad options', () => {
    for (const spec of ['0', '-1', '1,x', '1.5']) {
      try {
        parseThreads(spec);
        expect.unreachable(spec);
      } catch (error) {
        expect(isChessError(error) && error.code).toBe('BENCH_BAD_OPTION');
      }
    }
    expect(parseThreads('2, 1,2')).toEqual([2, 1]);
  });
});

describe('chess bench', () => {
  it('interleaves models within each repeat (A B A B ...)', async () => {
    const order: string[] = [];
    const fake = async (input: RunnerInput): Promise<RunnerOutput> => {
      order.push(`${input.modelPath === model ? 'A' : 'B'}${input.threads}`);
      return { prefillTokPerSec: 100, decodeTokPerSec: 10, timeToFirstTokenMs: 5, loadMs: 1, peakRssBytes: 1, generatedTokens: input.tokens, sparsityReports: null, runtime };
    };
    const { copyFile } = await import('node:fs/promises');
    const other = join(work, 'copy.gguf');
    await copyFile(model, other);
    const result = await runBench({ models: [model, other], threads: '1,2', repeat: 2, tokens: 4, promptTokens: 8, runOne: fake });
    expect(order).toEqual(['A1', 'B1', 'A2', 'B2', 'A1', 'B1', 'A2', 'B2']);
    expect(benchResultSchema.safeParse(result).success).toBe(true);
    expect(result.summary).toHaveLength(4);
    expect(result.summary.find((s) => s.model === 1 && s.threads === 2)!.decodeSpeedup).toEqual({ median: 1, min: 1, max: 1 });
  });

  it('measures the default model in a child process with the stock binary', async () => {
    const out = await runInChild({ modelPath: model, runtime: 'stock', threads: 1, promptTokens: 16, tokens: 4 });
    expect(out.runtime.buildType).toBe('prebuilt');
    expect(out.runtime.binary).toContain('@node-llama-cpp/linux-x64');
    expect(out.decodeTokPerSec).toBeGreaterThan(0);
    expect(out.prefillTokPerSec).toBeGreaterThan(0);
    expect(out.timeToFirstTokenMs).toBeGreaterThan(0);
    // The child maps the 98 MB model: its peak RSS is at least that, and below a few GB.
    expect(out.peakRssBytes).toBeGreaterThan(50 * 2 ** 20);
    expect(out.peakRssBytes).toBeLessThan(4 * 2 ** 30);
    // Stock llama.cpp writes no sparsity report.
    expect(out.sparsityReports).toBeNull();
  }, 120_000);

  it('reports a failing child with the model path', async () => {
    const error = await runInChild({ modelPath: join(work, 'missing.gguf'), runtime: 'stock', threads: 1, promptTokens: 8, tokens: 2 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isChessError(error) && error.code).toBe('BENCH_RUN_FAILED');
    expect((error as Error).message).toContain('missing.gguf');
  }, 120_000);
});

describe('chess bench: runtime per model and decode sparsity', () => {
  // The patched build: 20-40 minutes on a cold cache, or a wait for another package's
  // build of it (cache lock). Done here, under its own timeout, not inside a test's.
  beforeAll(() => buildBackend({ log: (line) => process.stderr.write(`${line}\n`) }), 120 * 60_000);
  it('auto runs a sparse GGUF on the patched build and a dense one on stock; --runtime stock on a sparse GGUF is refused before any run', async () => {
    const { makeSparseTestModel } = await import('../../../packages/backend-llamacpp/src/test-models.ts');
    const { GGMLType } = await import('@chess/gguf');
    const sparse = await makeSparseTestModel({ source: model, method: 'chess+', transposedType: GGMLType.Q8_0, denseType: GGMLType.F32, layers: 2 });
    const seen: string[] = [];
    // Cumulative counters after prefill and at the end: the decode-only difference is 50% on attn_q_in, 25% on the gate.
    const report = (q: number, g: number) =>
      JSON.stringify({ format: 'chess-sparsity-report/1', n_layer: 2, layers: [0, 1].map((layer) => ({ layer, attn_q_in: { seen: 100, zeroed: q }, ffn_gate_act: { seen: 100, zeroed: g } })) });
    const fake = async (input: RunnerInput): Promise<RunnerOutput> => {
      seen.push(input.runtime);
      const isSparse = input.modelPath === sparse;
      return {
        prefillTokPerSec: 100,
        decodeTokPerSec: 10,
        timeToFirstTokenMs: 5,
        loadMs: 1,
        peakRssBytes: 1,
        generatedTokens: input.tokens,
        sparsityReports: isSparse ? { afterPrefill: report(10, 10).replaceAll('"seen":100', '"seen":50'), end: report(35, 22) } : null,
        runtime: { ...runtime, name: input.runtime },
      };
    };
    const result = await runBench({ models: [model, sparse], threads: '1', repeat: 1, tokens: 4, promptTokens: 8, runOne: fake });
    expect(seen).toEqual(['stock', 'patched']);
    expect(benchResultSchema.safeParse(result).success).toBe(true);
    const m = result.measurements.find((x) => x.model === 1)!;
    // decode: attn_q_in (35-10)/(100-50) = 0.5, ffn_gate_act (22-10)/(100-50) = 0.24 -> layer (25+12)/(50+50) = 0.37
    expect(m.layerSparsity).toEqual([0.37, 0.37]);
    expect(m.sparsity!.sites.attn_q_in).toEqual([0.5, 0.5]);
    expect(m.sparsity!.scope).toBe('decoded tokens only');
    expect(m.weightBytesReadFraction).toBeGreaterThan(0);
    expect(m.weightBytesReadFraction).toBeLessThan(1);
    // The dense model has no counters: it reads every byte of its (tied-embedding) file.
    expect(result.measurements.find((x) => x.model === 0)!.weightBytesReadFraction).toBe(1);

    const refused = await runBench({ models: [sparse], runtimes: ['stock'], threads: '1', repeat: 1, runOne: fake }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isChessError(refused) && refused.code).toBe('BENCH_RUNTIME_CANNOT_LOAD');
    const unknown = await runBench({ models: [model], runtimes: ['nope'], threads: '1', repeat: 1, runOne: fake }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isChessError(unknown) && unknown.code).toBe('BENCH_UNKNOWN_RUNTIME');
    const missing = await runBench({ models: [join(work, 'absent.gguf')], threads: '1', repeat: 1, runOne: fake }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isChessError(missing) && missing.code).toBe('BENCH_MODEL_NOT_FOUND');
    expect(seen).toEqual(['stock', 'patched']);
  }, 300_000);

  it('a patched child snapshots the sparsity counters after prefill and at the end', async () => {
    const { makeSparseTestModel } = await import('../../../packages/backend-llamacpp/src/test-models.ts');
    const { GGMLType } = await import('@chess/gguf');
    const { parseSparsityReport } = await import('./sparsity.ts');
    const sparse = await makeSparseTestModel({ source: model, method: 'chess+', transposedType: GGMLType.Q8_0, denseType: GGMLType.F32, layers: 2 });
    const out = await runInChild({ modelPath: sparse, runtime: 'patched', threads: 1, promptTokens: 16, tokens: 4 });
    expect(out.runtime.name).toBe('patched');
    const before = parseSparsityReport(out.sparsityReports!.afterPrefill!);
    const end = parseSparsityReport(out.sparsityReports!.end!);
    // Every site sees n_embd (576) or n_ff (1536) values per token: 4 decoded tokens after the snapshot.
    const q0 = (c: typeof end) => c.layers.get(0)!.attn_q_in!.seen;
    expect(q0(end) - q0(before)).toBe(4 * 576);
    const g0 = (c: typeof end) => c.layers.get(0)!.ffn_gate_act!.seen;
    expect(g0(end) - g0(before)).toBe(4 * 1536);
  }, 300_000);
});
