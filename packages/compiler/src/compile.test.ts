/**
 * The driver with a fake calibrator: IR in / IR out (the module rewritten,
 * thresholds as their definitions give them for the fake profile), the
 * sequence of events of a whole file-to-file run with refinement, and
 * every refusal before any work (the calibrator never asked, nothing written).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGMLType, dequantize, openGGUF } from '@chess/gguf';
import { importGGUF } from '@chess/import-gguf';
import { type Node, type WeightRef, weightBytes } from '@chess/ir';
import type { ThresholdProfile } from '@chess/pass-chess';
import { type Calibrator, type MeasureRequest, fixedCalibrator } from './calibrator.ts';
import { compile, compileModule } from './compile.ts';
import type { CompileEvent } from './events.ts';
import { TINY, inputScale, meanAbsOf, scoreScale, tinyModel, tinyProfile } from './__fixtures__/tiny.ts';

let work: string;
let model: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-compiler-'));
  model = await tinyModel(join(work, 'tiny.gguf'));
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/**
 * A calibrator that records its calls and answers with the tiny profile;
 * measurement k is the profile scaled by k + 1. It reads the layer-1 W_q input
 * threshold of each sparse model it measures (chess+ and the like).
 */
function recordingCalibrator(): Calibrator & { calls: string[]; measured: MeasureRequest[]; qTau: number[] } {
  const calls: string[] = [];
  const measured: MeasureRequest[] = [];
  const qTau: number[] = [];
  return {
    calls,
    measured,
    qTau,
    async profile(r) {
      calls.push(`profile ${r.model}`);
      return tinyProfile();
    },
    async measure(r) {
      calls.push(`measure ${r.iteration}`);
      measured.push(r);
      const file = await openGGUF(r.sparseModel);
      try {
        const t = file.tensor('blk.1.attn_q_in_tau');
        if (t) qTau.push(dequantize(GGMLType.F32, await file.readTensorData(t), 1)[0]!);
      } finally {
        await file.close();
      }
      return tinyProfile(r.iteration + 1);
    },
  };
}

const f32 = async (module: Parameters<typeof weightBytes>[0], name: string) => {
  const bytes = await weightBytes(module, name);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
};

describe('IR in, IR out', () => {
  it('chess+ / mean-abs at 0.5: the sites rewritten, the thresholds their definitions give for the profile, nothing written', async () => {
    const { module, file } = await importGGUF(model);
    try {
      const calibrator = recordingCalibrator();
      const result = await compileModule(module, model, { method: 'chess+', statistic: 'mean-abs', sparsity: 0.5, refineTokens: 0 }, { calibrator });
      expect(calibrator.calls).toEqual([`profile ${model}`]);
      const ops = (op: string) => module.nodes.filter((n) => n.op === op);
      expect(ops('sparse_linear_out')).toHaveLength(TINY.nLayer);
      expect(ops('threshold').map((n) => (n.operands[1] as WeightRef).name)).toEqual(
        [0, 1].flatMap((il) => [`blk.${il}.attn_q_in_tau`, `blk.${il}.attn_output_in_tau`]),
      );
      expect(ops('sparse_linear_in').map((n) => (n.operands[1] as WeightRef).name)).toEqual(
        [0, 1].flatMap((il) => [`blk.${il}.attn_q_cb.weight`, `blk.${il}.attn_output_cb.weight`, `blk.${il}.ffn_down_cb.weight`]),
      );
      expect(module.weight('blk.0.ffn_down.weight')).toBeUndefined();
      expect(module.meta.find((e) => e.key === 'general.architecture')?.value).toBe('chess');
      for (let il = 0; il < TINY.nLayer; il++) {
        // CHESS: t = the s-quantile of the scores (uniform on [0, scoreScale]), tau_i = t / m_i (mean-abs m_i)
        const gate = await f32(module, `blk.${il}.ffn_gate_tau`);
        const t = 0.5 * scoreScale(il);
        for (let i = 0; i < TINY.nFF; i++) expect(gate[i]).toBe(Math.fround(t / meanAbsOf(i)));
        // tensor-wise: the s-quantile of |x|
        for (const p of ['attn_q', 'attn_output'] as const) expect((await f32(module, `blk.${il}.${p}_in_tau`))[0]).toBe(Math.fround(0.5 * inputScale(il, p)));
      }
      expect(result.thresholds.statistic).toBe('mean-abs');
      expect(result.refinement).toEqual([]);
      expect(result.reports.map((r) => r.step)).toEqual(['check-module', 'sparsify-chess+', 'place-thresholds', 'input-sparse-layout', 'sparse-gguf-layout', 'sparse-gguf-meta']);
      expect(result.placements.every((p) => p.layout === 'column-blocks')).toBe(true);
    } finally {
      await file.close();
    }
  });
});

describe('events', () => {
  it('a whole run: the stages in order, each pass, each refinement, the bytes written', async () => {
    const events: CompileEvent[] = [];
    const calibrator = recordingCalibrator();
    const out = join(work, 'events.gguf');
    const result = await compile({ model, out, method: 'chess+', sparsity: 0.5, refineIterations: 2 }, { calibrator, events: (e) => events.push(e) });
    const shape = events
      .filter((e) => e.type !== 'progress')
      .map((e) =>
        e.type === 'stage-start' || e.type === 'stage-end'
          ? `${e.type} ${e.stage}`
          : e.type === 'pass'
            ? `pass ${e.stage} ${e.pass}`
            : e.type === 'refinement'
              ? `refinement ${e.step.iteration}`
              : e.type,
      );
    expect(shape).toEqual([
      'stage-start import',
      'stage-end import',
      'stage-start check',
      'pass check check-module',
      'stage-end check',
      'stage-start calibrate',
      'stage-end calibrate',
      'stage-start thresholds',
      'stage-end thresholds',
      'stage-start passes',
      'pass passes sparsify',
      'pass passes place-thresholds',
      'pass passes input-sparse-layout',
      'pass passes sparse-gguf-layout',
      'pass passes sparse-gguf-meta',
      'stage-end passes',
      'stage-start refine',
      'refinement 1',
      'pass refine place-thresholds',
      'refinement 2',
      'pass refine place-thresholds',
      'stage-end refine',
      'stage-start emit',
      'stage-end emit',
    ]);
    // the sparse model was measured twice, each time a file holding the thresholds in force
    expect(calibrator.calls).toEqual([`profile ${model}`, 'measure 1', 'measure 2']);
    expect(calibrator.measured.map((r) => [r.iteration, r.options.refineTokens, existsSync(r.sparseModel)])).toEqual([
      [1, 4096, false],
      [2, 4096, false],
    ]);
    // each measurement saw the thresholds in force: the dense profile's, then measurement 1's (scale 2); the file holds measurement 2's (scale 3)
    expect(calibrator.qTau).toEqual([1, 2].map((k) => Math.fround(0.5 * k * inputScale(1, 'attn_q'))));
    // what the thresholds in force dropped on each measurement: half of the distribution scaled by 2, then 2/3 of it scaled by 3/2
    const achieved = events.flatMap((e) => (e.type === 'refinement' ? [e.step.achieved.attn_q_in!] : []));
    expect(achieved.map(([lo, hi]) => [lo, hi].map((v) => Number(v.toFixed(6))))).toEqual([
      [0.25, 0.25],
      [0.333333, 0.333333],
    ]);
    // rule passes say what they rewrote: one gate per layer, the two thresholded inputs
    const sparsify = events.find((e) => e.type === 'pass' && e.pass === 'sparsify');
    expect(sparsify).toMatchObject({ step: 'sparsify-chess+', applied: { 'gate-threshold': TINY.nLayer, 'attn_q-input-threshold': TINY.nLayer, 'attn_output-input-threshold': TINY.nLayer } });
    // bytes written: only while emitting, never backwards, ending at the tensor bytes of the file
    const progress = events.filter((e) => e.type === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    const start = events.findIndex((e) => e.type === 'stage-start' && e.stage === 'emit');
    expect(events.indexOf(progress[0]!)).toBeGreaterThan(start);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.done).toBeGreaterThanOrEqual(progress[i - 1]!.done);
    const last = progress.at(-1)!;
    expect([last.stage, last.unit, last.done, last.total]).toEqual(['emit', 'bytes', result.emit.tensorBytes, result.emit.tensorBytes]);
    const file = await openGGUF(out);
    try {
      expect(file.tensors.reduce((n, t) => n + t.byteLength, 0)).toBe(result.emit.tensorBytes);
      expect(dequantize(GGMLType.F32, await file.readTensorData(file.tensor('blk.1.attn_q_in_tau')!), 1)[0]).toBe(Math.fround(0.5 * 3 * inputScale(1, 'attn_q')));
    } finally {
      await file.close();
    }
  });
});

describe('refused before any work', () => {
  it('bad options: the calibrator is never asked, no event, nothing written', async () => {
    const calibrator = recordingCalibrator();
    const events: CompileEvent[] = [];
    const out = join(work, 'never.gguf');
    await expect(compile({ model, out, sparsity: 1 }, { calibrator, events: (e) => events.push(e) })).rejects.toMatchObject({ code: 'CHESS_BAD_SPARSITY' });
    await expect(compile({ model, out, layout: 'transposed', transposedType: 'q4_K' }, { calibrator })).rejects.toMatchObject({ code: 'CHESS_BAD_TRANSPOSED_TYPE' });
    expect(calibrator.calls).toEqual([]);
    expect(events).toEqual([]);
    expect(existsSync(out)).toBe(false);
  });

  it('refinement with a calibrator that cannot measure', async () => {
    const out = join(work, 'never.gguf');
    await expect(compile({ model, out }, { calibrator: fixedCalibrator(tinyProfile()) })).rejects.toMatchObject({
      code: 'TRANSFORM_REFINE_UNAVAILABLE',
      message: expect.stringMatching(/^refineTokens: this calibrator cannot measure a sparse model.*pass refineTokens 0/),
    });
    // sparsity 0 or refineTokens 0: nothing to refine
    await expect(compile({ model, out, sparsity: 0 }, { calibrator: fixedCalibrator(tinyProfile()) })).resolves.toMatchObject({ refinement: [] });
    expect(existsSync(out)).toBe(true);
  });

  it('a module the method cannot take: refused by the check stage, before calibration', async () => {
    const { module, file } = await importGGUF(model);
    await file.close();
    // W_down of layer 1 fed by something other than the gated product
    const down = module.nodes.find((n) => n.op === 'linear' && (n.operands[1] as WeightRef).name === 'blk.1.ffn_down.weight')!;
    down.operands[0] = (down.operands[0] as Node).operands[1]!;
    const calibrator = recordingCalibrator();
    const events: CompileEvent[] = [];
    await expect(compileModule(module, model, { method: 'chess', refineTokens: 0 }, { calibrator, events: (e) => events.push(e) })).rejects.toMatchObject({
      code: 'CHESS_NO_GATED_FFN',
      message: expect.stringMatching(/^layer 1:/),
    });
    expect(calibrator.calls).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['stage-start']);
  });

  it('a profile of another model shape: refused after calibration, before any pass', async () => {
    const other: ThresholdProfile = { ...tinyProfile(), model: { ...tinyProfile().model, nFF: 256 } };
    const events: CompileEvent[] = [];
    const { module, file } = await importGGUF(model);
    try {
      await expect(compileModule(module, model, { refineTokens: 0 }, { calibrator: fixedCalibrator(other), events: (e) => events.push(e) })).rejects.toMatchObject({
        code: 'CHESS_PROFILE_MODEL_MISMATCH',
      });
      expect(events.filter((e) => e.type === 'pass').map((e) => (e as { pass: string }).pass)).toEqual(['check-module']);
      expect(module.nodes.some((n) => n.op === 'threshold' || n.op === 'sparse_linear_out')).toBe(false);
    } finally {
      await file.close();
    }
  });
});

