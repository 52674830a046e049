/**
 * Test support: the numpy reference thresholds (thresholds_ref.py, run in the
 * pinned Python reference environment), the golden values of the threshold
 * tests. Two ways in: a module's weights and calibration tokens (the reference
 * runs its own forward pass), or a profile given by its statistics.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensurePythonEnv } from '@chess/core';
import type { Module } from '@chess/ir';
import { expect } from 'vitest';
import { PROJECTIONS } from '../methods.ts';
import type { ThresholdProfile } from '../thresholds.ts';

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, 'thresholds_ref.py');

export interface ThresholdRequest {
  method: string;
  statistic?: string;
  sparsity: number;
}

export interface ReferenceThresholds extends ThresholdRequest {
  layers: Array<{ gate: number[] | null; inputs: Record<string, number> }>;
}

async function runReference(mode: 'activations' | 'statistics', write: (dir: string) => Promise<void>): Promise<ReferenceThresholds[]> {
  const python = await ensurePythonEnv();
  const dir = await mkdtemp(join(tmpdir(), 'chess-thresholds-ref-'));
  try {
    await write(dir);
    await run(python, [SCRIPT, mode, dir], { maxBuffer: 64 << 20 });
    return JSON.parse(await readFile(join(dir, 'thresholds.json'), 'utf8')) as ReferenceThresholds[];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Thresholds of `module` (float64 weights by name) calibrated on `tokens`, per request. */
export function referenceThresholdsOfModel(
  module: Module,
  weights: ReadonlyMap<string, Float64Array>,
  tokens: readonly number[],
  requests: readonly ThresholdRequest[],
): Promise<ReferenceThresholds[]> {
  return runReference('activations', async (dir) => {
    let offset = 0;
    const tensors = [...module.weights.values()].map((w) => {
      const entry = { name: w.name, shape: w.shape, offset };
      offset += weights.get(w.name)!.length;
      return entry;
    });
    const blob = new Float64Array(offset);
    for (const t of tensors) blob.set(weights.get(t.name)!, t.offset);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'weights.bin'), new Uint8Array(blob.buffer));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ hparams: Object.fromEntries(module.hparams), tokens, tensors, requests }));
  });
}

/** A profile given by its statistics: per layer m_i and the quantiles the requests need, as [p, value] pairs. */
export interface StatisticsLayer {
  upRms: ArrayLike<number>;
  upMeanAbs: ArrayLike<number>;
  /** Keys: 'score:rms', 'score:mean-abs', 'gate', and projection names. */
  quantiles: Record<string, Array<[number, number]>>;
}

export function referenceThresholdsOfStatistics(layers: readonly StatisticsLayer[], requests: readonly ThresholdRequest[]): Promise<ReferenceThresholds[]> {
  return runReference('statistics', async (dir) => {
    const plain = layers.map((l) => ({ upRms: Array.from(l.upRms), upMeanAbs: Array.from(l.upMeanAbs), quantiles: l.quantiles }));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ layers: plain, requests }));
  });
}

/**
 * A profile whose quantiles are given (functions of p), as the reference's
 * statistics input: m_i and, for each sparsity, the quantile values the
 * profile states. The reference then applies the method's formulas itself.
 */
export function statisticsOfProfile(profile: ThresholdProfile, sparsities: readonly number[]): StatisticsLayer[] {
  const at = (source: { quantile(p: number): number }): Array<[number, number]> => sparsities.map((p) => [p, source.quantile(p)]);
  return profile.layers.map((lp) => ({
    upRms: lp.upRms,
    upMeanAbs: lp.upMeanAbs,
    quantiles: {
      'score:rms': at(lp.score.rms),
      'score:mean-abs': at(lp.score['mean-abs']),
      gate: at(lp.gateAbs),
      ...Object.fromEntries(PROJECTIONS.map((p) => [p, at(lp.inputs[p])])),
    },
  }));
}

/** |a - b| within one float32 rounding of b (the reference runs its own float64 forward pass). */
export function closeToFloat32(a: number, b: number): boolean {
  return Math.abs(a - b) <= 2 ** -22 * Math.abs(b);
}

/** Per-layer thresholds (gate vector, input scalars) equal the reference's, to float32 rounding. */
export function expectThresholdsMatch(
  actual: ReadonlyArray<{ gate?: ArrayLike<number> | undefined; inputs: Partial<Record<string, number>> }>,
  want: ReferenceThresholds,
): void {
  const what = `${want.method} ${want.statistic ?? ''} s=${want.sparsity}`;
  expect(actual, what).toHaveLength(want.layers.length);
  for (const [il, w] of want.layers.entries()) {
    const got = actual[il]!;
    if (w.gate === null) expect(got.gate, `${what} layer ${il} gate`).toBeUndefined();
    else {
      expect(got.gate?.length, `${what} layer ${il} gate`).toBe(w.gate.length);
      for (let i = 0; i < w.gate.length; i++) expect(closeToFloat32(got.gate![i]!, w.gate[i]!), `${what} layer ${il} gate ${i}: ${got.gate![i]} vs numpy ${w.gate[i]}`).toBe(true);
    }
    expect(Object.keys(got.inputs).sort(), `${what} layer ${il} inputs`).toEqual(Object.keys(w.inputs).sort());
    for (const [p, v] of Object.entries(w.inputs)) expect(closeToFloat32(got.inputs[p]!, v), `${what} layer ${il} ${p}: ${got.inputs[p]} vs numpy ${v}`).toBe(true);
  }
}
