/**
 * Result files that come back from devices: `./run bench` of a bundle made by `chess pack`
 * writes `chess-device-bench` (raw llama-bench rows and the patched runtime's sparsity
 * counters per run, the bundle's model table, the device's CPU); `chess report` reads it as a
 * `chess-llama-bench` result (the same summaries, speedups and byte model as `chess
 * llama-bench`), labelled with the device's CPU.
 */
import { z } from 'zod';
import { GGMLType } from '@chess/gguf';
import type { LlamaBenchResult, Spread } from './schema.ts';
import { layerSparsity, parseSparsityReport, weightTraffic, type SparsityCounters, type WeightTensor } from './sparsity.ts';
import { pairedSummary, round4 } from './spread.ts';

const finite = z.number().refine(Number.isFinite, { message: 'must be a finite number' });

const benchModelSchema = z.object({
  file: z.string(),
  role: z.enum(['dense', 'sparse']),
  fileName: z.string(),
  sizeBytes: z.number().int().nonnegative(),
  method: z.string(),
  sparsity: z.number().min(0).max(1),
  architecture: z.string().nullable(),
  layout: z.enum(['dense', 'column-blocks', 'transposed', 'column-blocks+transposed']),
  tensors: z.array(
    z.object({
      name: z.string(),
      type: z.number().int().nonnegative(),
      shape: z.array(z.number().int().nonnegative()),
      bytes: z.number().int().nonnegative(),
    }),
  ),
});

export const deviceBenchResultSchema = z.object({
  kind: z.literal('chess-device-bench'),
  version: z.literal(1),
  createdAt: z.string(),
  bundle: z.object({ id: z.string(), target: z.string() }),
  device: z.object({
    cpu: z.string(),
    machine: z.string(),
    cores: z.number().int().positive(),
    memoryBytes: z.number().nonnegative(),
    features: z.string(),
    variant: z.string(),
  }),
  settings: z.object({
    threads: z.number().int().positive(),
    tg: z.number().int().positive(),
    pp: z.number().int().nonnegative(),
    rounds: z.number().int().positive(),
  }),
  models: z.array(benchModelSchema).min(1),
  runs: z.array(
    z.object({
      model: z.number().int().nonnegative(),
      round: z.number().int().nonnegative(),
      test: z.enum(['tg', 'pp']),
      /** llama-bench `-o json`: one row per test. */
      llamaBench: z.array(z.object({ avg_ts: finite.refine((v) => v > 0, { message: 'must be > 0' }) }).passthrough()).length(1),
      /** CHESS_SPARSITY_REPORT of the run (chess-sparsity-report/1), null when the runtime wrote none. */
      sparsityReport: z.unknown().nullable(),
    }),
  ),
});
export type DeviceBenchResult = z.infer<typeof deviceBenchResultSchema>;


/** The device's CPU as a report names it. */
export function deviceLabel(r: DeviceBenchResult): string {
  return `${r.device.cpu} (device ${r.device.machine}, bundle ${r.bundle.id} ${r.bundle.target}, ${r.device.variant})`;
}

/** A device result as a `chess-llama-bench` result (what the report renders). `source` names the file in errors. */
export function deviceBenchToLlamaBench(r: DeviceBenchResult, source = 'device result'): LlamaBenchResult {
  const counters = new Map<number, SparsityCounters>();
  for (const run of r.runs) {
    if (run.model >= r.models.length) throw new Error(`${source}: run of model ${run.model}, the result has ${r.models.length} model(s)`);
    if (run.sparsityReport !== null && run.test === 'tg' && r.models[run.model]!.method !== 'dense') {
      counters.set(run.model, parseSparsityReport(JSON.stringify(run.sparsityReport), `${source}: run ${run.model}/${run.round}`));
    }
  }
  const samples = r.runs.map((run) => ({ model: run.model, round: run.round, test: run.test, tokensPerSecond: run.llamaBench[0]!.avg_ts }));
  const tables = r.models.map((m) => m.tensors.map((t) => ({ ...t, type: t.type as GGMLType })) as WeightTensor[]);
  const bytes = tables.map((table, m) => weightTraffic(table, counters.get(m) ?? null).readBytes);
  const tests: ('tg' | 'pp')[] = r.settings.pp > 0 ? ['tg', 'pp'] : ['tg'];
  return {
    kind: 'chess-llama-bench',
    version: 1,
    createdAt: r.createdAt,
    finishedAt: r.createdAt,
    machine: { cpu: deviceLabel(r), cores: r.device.cores, memoryBytes: r.device.memoryBytes },
    gitRevision: null,
    settings: { ...r.settings },
    binaries: { stock: null, patched: `bundle ${r.bundle.id} (${r.bundle.target}) bin/llama-bench` },
    models: r.models.map((m, i) => {
      const c = counters.get(i);
      const layers = c ? layerSparsity(c) : null;
      return {
        path: m.file,
        fileName: m.fileName,
        sizeBytes: m.sizeBytes,
        method: m.method,
        sparsity: m.sparsity,
        architecture: m.architecture,
        build: 'patched' as const,
        layout: m.layout,
        weightBytesPerToken: Math.round(bytes[i]!),
        byteIdealSpeedup: round4(bytes[0]! / bytes[i]!),
        achievedSparsity: layers && layers.length > 0 ? round4(layers.reduce((a, b) => a + b, 0) / layers.length) : null,
      };
    }),
    samples,
    summary: pairedSummary(r.models.length, samples, tests.includes('pp')),
  };
}
