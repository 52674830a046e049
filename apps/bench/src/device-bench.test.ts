// A bundle's `./run bench` result (chess-device-bench) read by `chess report`: validated, turned
// into a llama-bench result (per-round speedups, achieved sparsity from the device's counters,
// bytes per token from the bundle's tensor table) and labelled with the device's CPU.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { GGMLType } from '@chess/gguf';
import { loadResults, renderMarkdown } from './report.ts';
import { readResultFile } from './schema.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chess-device-bench-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// one layer: a dense model and a TEAL-like file whose ffn_down is stored transposed (F32, 64 x 32)
const tensors = (sparse: boolean) => [
  { name: 'token_embd.weight', type: GGMLType.F32, shape: [32, 10], bytes: 1280 },
  { name: 'output.weight', type: GGMLType.F32, shape: [32, 10], bytes: 1280 },
  { name: sparse ? 'blk.0.ffn_down_t.weight' : 'blk.0.ffn_down.weight', type: GGMLType.F32, shape: sparse ? [32, 64] : [64, 32], bytes: 8192 },
];
const row = (tps: number) => [{ avg_ts: tps, n_gen: 4, cpu_info: 'Cortex-A76' }];
const report = { format: 'chess-sparsity-report/1', n_layer: 1, layers: [{ layer: 0, ffn_down_in: { seen: 640, zeroed: 480, sparsity: 0.75 } }] };

function result(): Record<string, unknown> {
  return {
    kind: 'chess-device-bench',
    version: 1,
    createdAt: '2026-12-07T12:00:00Z',
    bundle: { id: '0123456789abcdef', target: 'linux-aarch64' },
    device: { cpu: 'Raspberry Pi 5 Model B Rev 1.0', machine: 'aarch64', cores: 4, memoryBytes: 8e9, features: 'asimd asimddp', variant: 'dotprod (ARMv8.2-A SDOT)' },
    settings: { threads: 4, tg: 4, pp: 0, rounds: 2 },
    models: [
      { file: 'models/d.gguf', role: 'dense', fileName: 'd.gguf', sizeBytes: 20000, method: 'dense', sparsity: 0, architecture: 'llama', layout: 'dense', tensors: tensors(false) },
      { file: 'models/s.gguf', role: 'sparse', fileName: 's.gguf', sizeBytes: 20000, method: 'teal', sparsity: 0.75, architecture: 'chess', layout: 'transposed', tensors: tensors(true) },
    ],
    runs: [
      { model: 0, round: 0, test: 'tg', llamaBench: row(10), sparsityReport: null },
      { model: 1, round: 0, test: 'tg', llamaBench: row(15), sparsityReport: report },
      { model: 1, round: 1, test: 'tg', llamaBench: row(18), sparsityReport: report },
      { model: 0, round: 1, test: 'tg', llamaBench: row(12), sparsityReport: null },
    ],
  };
}

it('reads a device result as a llama-bench result: paired speedups, achieved sparsity, bytes per token, the device CPU', async () => {
  const file = join(dir, 'device.json');
  await writeFile(file, JSON.stringify(result()));
  const r = readResultFile(file);
  expect(r.kind).toBe('llama-bench');
  if (r.kind !== 'llama-bench') return;
  const b = r.result;
  expect(b.machine.cpu).toBe('Raspberry Pi 5 Model B Rev 1.0 (device aarch64, bundle 0123456789abcdef linux-aarch64, dotprod (ARMv8.2-A SDOT))');
  expect(b.summary[0]!.decodeTokPerSec).toEqual({ median: 11, min: 10, max: 12 });
  // per round: 15 / 10 = 1.5, 18 / 12 = 1.5
  expect(b.summary[1]!.decodeSpeedup).toEqual({ median: 1.5, min: 1.5, max: 1.5 });
  expect(b.models[1]!.achievedSparsity).toBe(0.75);
  expect(b.models[0]!.achievedSparsity).toBeNull();
  // dense: embedding row (1280 / 10) + output 1280 + down 8192 = 9600; sparse: down reads a quarter, 2048 -> 3456
  expect(b.models[0]!.weightBytesPerToken).toBe(9600);
  expect(b.models[1]!.weightBytesPerToken).toBe(3456);
  expect(b.models[1]!.byteIdealSpeedup).toBe(Math.round((9600 / 3456) * 1e4) / 1e4);
  const md = renderMarkdown(loadResults([file]));
  expect(md).toContain('Raspberry Pi 5 Model B Rev 1.0 (device aarch64');
  expect(md).toContain('| s.gguf | teal | 75% | patched | transposed |');
});

it('names the file and the field of a malformed device result', async () => {
  const bad = result();
  (bad.runs as { llamaBench: unknown }[])[2]!.llamaBench = [{ avg_ts: -1 }];
  const file = join(dir, 'bad.json');
  await writeFile(file, JSON.stringify(bad));
  expect(() => readResultFile(file)).toThrow(/bad\.json: field 'runs\[2\]\.llamaBench\[0\]\.avg_ts': must be > 0/);
  const wrongModel = result();
  (wrongModel.runs as { model: number }[])[0]!.model = 5;
  await writeFile(file, JSON.stringify(wrongModel));
  expect(() => readResultFile(file)).toThrow(/run of model 5, the result has 2 model\(s\)/);
});
