import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGMLType, ggufValue, writeGGUF } from '@chess/gguf';
import { runLlamaBench, weightLayout, type LlamaBenchRun } from './llama-bench.ts';
import { llamaBenchResultSchema } from './schema.ts';
import { renderMarkdown } from './report.ts';

let work: string;
let dense: string;
let sparse: string;

/** A Q4_0 tensor of [64 inputs, 32 rows]: 2 blocks per row of 18 bytes. */
const q40 = (name: string) => ({ name, shape: [64, 32], type: GGMLType.Q4_0, byteLength: 32 * 2 * 18, data: async () => new Uint8Array(32 * 2 * 18) });

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-llama-bench-'));
  dense = join(work, 'dense.gguf');
  sparse = join(work, 'sparse.gguf');
  await writeGGUF(dense, { metadata: [['general.architecture', ggufValue.string('llama')]], tensors: [q40('blk.0.attn_q.weight'), q40('output.weight')] });
  await writeGGUF(sparse, {
    metadata: [
      ['general.architecture', ggufValue.string('chess')],
      // the keys the sparse contract requires (readModelInfo checks them)
      ['chess.base_architecture', ggufValue.string('llama')],
      ['chess.format_version', ggufValue.u32(2)],
      ['chess.method', ggufValue.string('chess+')],
      ['chess.target_sparsity', ggufValue.f32(0.5)],
    ],
    tensors: [q40('blk.0.attn_q_cb.weight'), q40('output.weight')],
  });
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('runLlamaBench', () => {
  it('interleaves the models in rotated order, pairs speedups per round and gives the byte-ideal from the counters', async () => {
    // decode tok/s per (model, round), chosen so that per-round pairing differs from a ratio of medians
    const tg = [
      [10, 20, 40],
      [11, 19, 41],
      [12, 30, 44],
    ];
    const calls: { model: number; round: number; test: string; report: boolean }[] = [];
    const models = [
      { path: dense, build: 'stock' as const },
      { path: dense, build: 'patched' as const },
      { path: sparse, build: 'patched' as const },
    ];
    const seen = new Map<string, number>();
    const runOne = async (run: LlamaBenchRun): Promise<number> => {
      const key = `${run.model}|${run.binary}|${run.test}`;
      const round = seen.get(key) ?? 0;
      seen.set(key, round + 1);
      const model = run.binary === '/bin/stock' ? 0 : run.model === dense ? 1 : 2;
      const report = run.env?.CHESS_SPARSITY_REPORT;
      calls.push({ model, round, test: run.test, report: report !== undefined });
      expect(run.threads).toBe(2);
      expect(run.tokens).toBe(run.test === 'tg' ? 16 : 64);
      if (report && model === 1) {
        // the patched runtime reports all-zero counters for a dense file
        writeFileSync(report, JSON.stringify({ format: 'chess-sparsity-report/1', n_layer: 1, layers: [{ layer: 0, attn_q_in: { seen: 100, zeroed: 0 } }] }));
      }
      if (report && model === 2) {
        // the patched runtime's report: half of W_q's inputs dropped
        writeFileSync(report, JSON.stringify({ format: 'chess-sparsity-report/1', n_layer: 1, layers: [{ layer: 0, attn_q_in: { seen: 100, zeroed: 50 } }] }));
      }
      return run.test === 'tg' ? tg[model]![round]! : 100 + model;
    };
    const result = await runLlamaBench({ models, binaries: { stock: '/bin/stock', patched: '/bin/patched' }, threads: 2, tg: 16, pp: 64, rounds: 3, runOne });
    expect(calls.filter((c) => c.test === 'tg').map((c) => c.model)).toEqual([0, 1, 2, 1, 2, 0, 2, 0, 1]);
    expect(calls.map((c) => c.test)).toEqual(Array(9).fill(['tg', 'pp']).flat());
    // counters only where the patched build decodes
    expect(calls.filter((c) => c.report).map((c) => `${c.model}${c.test}`)).toEqual(['1tg', '2tg', '1tg', '2tg', '2tg', '1tg']);

    expect(llamaBenchResultSchema.parse(result)).toEqual(result);
    // model 2: per-round 12/10, 30/20, 44/40 = 1.2, 1.5, 1.1
    expect(result.summary[2]!.decodeSpeedup).toEqual({ median: 1.2, min: 1.1, max: 1.5 });
    expect(result.summary[2]!.decodeTokPerSec).toEqual({ median: 30, min: 12, max: 44 });
    expect(result.summary[0]!.decodeSpeedup).toBeNull();
    expect(result.summary[2]!.prefillSpeedup).toEqual({ median: 1.02, min: 1.02, max: 1.02 });
    // bytes: dense 2 x 1152; sparse: output 1152 + column blocks at s = 0.5: 2 groups x 32 rows x (2 (1 - 0.5^32) + 16 x 0.5)
    expect(result.models.map((m) => m.layout)).toEqual(['dense', 'dense', 'column-blocks']);
    expect(result.models[2]!.weightBytesPerToken).toBe(1152 + 640);
    expect(result.models[2]!.byteIdealSpeedup).toBe(Math.round((2304 / 1792) * 1e4) / 1e4);
    expect(result.models[1]!.achievedSparsity).toBeNull(); // a dense file: nothing to sparsify, whatever the counters say
    expect(result.models[2]!.achievedSparsity).toBe(0.5);
    expect(result.models.map((m) => [m.method, m.sparsity])).toEqual([
      ['dense', 0],
      ['dense', 0],
      ['chess+', 0.5],
    ]);
    const md = renderMarkdown({ evals: [], benches: [], llamaBenches: [{ file: 'lb.json', result }] });
    expect(md).toContain('## Speed, llama-bench: stock vs patched llama.cpp');
    expect(md).toContain('| sparse.gguf | chess+ | 50% | patched | column-blocks | 2 | 30.0 (12.0–44.0) | 102.0 (102.0–102.0) | 1.20 (1.10–1.50)× | 1.02 (1.02–1.02)× | 1.29× | 50.0% |');
  });

  it('names the layout of the input-sparse projections', () => {
    const t = (name: string) => ({ name, type: GGMLType.Q4_0, shape: [64, 32], bytes: 1152 });
    expect(weightLayout([t('blk.0.ffn_down.weight')])).toBe('dense');
    expect(weightLayout([t('blk.0.ffn_down_cb.weight')])).toBe('column-blocks');
    expect(weightLayout([t('blk.0.ffn_down_t.weight')])).toBe('transposed');
    expect(weightLayout([t('blk.0.ffn_down_t.weight'), t('blk.1.attn_q_cb.weight')])).toBe('column-blocks+transposed');
  });
});
