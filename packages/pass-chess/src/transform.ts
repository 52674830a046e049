/**
 * File to file: import a dense GGUF, run the CHESS pass with a calibration
 * profile, emit the sparse GGUF (atomically, streaming; the input-sparse
 * projections' column-block or transposed copies are produced one at a time
 * while they are written).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EmitResult, emitGGUF } from '@chess/codegen-gguf';
import { GGML_TYPE_TRAITS, ggmlTypeFromName } from '@chess/gguf';
import { importGGUF } from '@chess/import-gguf';
import { type DType, type Module, type StepReport, memoryWeight } from '@chess/ir';
import { ChessError } from '@chess/core';
import { PROJECTIONS, contractNames } from './methods.ts';
import { type ApplyChessOptions, applyChess, checkModule, replaceWeight } from './passes.ts';
import type { Placement } from './placement.ts';
import { type ThresholdProfile, type Thresholds, checkThresholdOptions, computeThresholds } from './thresholds.ts';

/**
 * Calibration on the partially sparsified model: given a sparse GGUF written
 * with the current thresholds, return the profile MEASURED ON IT (same model
 * identity, same per-channel statistics m_i; every histogram taken at the
 * pre-threshold sites of the sparse model, on calibration text). Thresholds
 * recomputed from it account for the upstream layers being sparsified.
 */
export type SparseRefiner = (sparseModel: string, iteration: number) => Promise<ThresholdProfile>;

/** Per refinement iteration: the thresholds' achieved sparsity on the sparse model measured (min / max over layers, per site). */
export interface RefinementStep {
  readonly iteration: number;
  /** site -> [min, max] over layers of the fraction dropped by the thresholds in force during the measurement. */
  readonly achieved: Readonly<Record<string, readonly [number, number]>>;
}

export interface TransformOptions extends ApplyChessOptions {
  /** Dense source GGUF. */
  readonly model: string;
  /** Output sparse GGUF (written atomically). */
  readonly out: string;
  /**
   * The calibration profile, or a function producing it (called only after
   * every check on the options and the model passed: calibration is the
   * expensive part, so it runs last).
   */
  readonly profile: ThresholdProfile | (() => Promise<ThresholdProfile>);
  /** Bytes written so far, total bytes expected, tensor being written. */
  readonly progress?: (written: number, total: number, tensor: string) => void;
  /**
   * Re-calibrate on the partially sparsified model: write the sparse GGUF,
   * measure it with `refine`, recompute every threshold from the measurement
   * (same method, statistic and target), `refineIterations` times (default 1).
   */
  readonly refine?: SparseRefiner;
  readonly refineIterations?: number;
  /** Called after each refinement measurement. */
  readonly onRefinement?: (step: RefinementStep) => void;
}

export interface TransformResult {
  readonly path: string;
  readonly thresholds: Thresholds;
  /** Where each input-sparse projection went (`rows`: kept in its row layout, with the reason). */
  readonly placements: readonly Placement[];
  readonly reports: readonly StepReport[];
  readonly emit: EmitResult;
  readonly refinement: readonly RefinementStep[];
}

/** Bytes of a weight's data once written (from its dtype and shape). */
export function weightByteSize(dtype: DType, shape: readonly number[]): number {
  const traits = GGML_TYPE_TRAITS.get(ggmlTypeFromName(dtype)!);
  const n = shape.reduce((a, b) => a * b, 1);
  return traits ? (n / traits.blockSize) * traits.typeSize : 0;
}

export function moduleTensorBytes(module: Module): number {
  let total = 0;
  for (const w of module.weights.values()) total += weightByteSize(w.dtype, w.shape);
  return total;
}

/** Put new threshold values into a module the CHESS pipeline already rewrote (same method, same layout). */
export function replaceThresholds(module: Module, thresholds: Thresholds): void {
  const put = (name: string, data: Float32Array) => {
    const w = module.weight(name);
    if (!w || w.dtype !== 'f32' || w.shape.reduce((a, b) => a * b, 1) !== data.length) {
      throw new ChessError('CHESS_THRESHOLDS_MISSING', `cannot replace threshold @${name}: not in the module or of another shape`, { weight: name });
    }
    replaceWeight(module, name, memoryWeight(name, 'f32', w.shape, data));
  };
  for (const lt of thresholds.layers) {
    if (lt.gate) put(contractNames.gateTau(lt.layer), lt.gate);
    for (const p of PROJECTIONS) {
      const v = lt.inputs[p];
      if (v !== undefined) put(contractNames.inputTau(lt.layer, p), Float32Array.of(v));
    }
  }
}

/** Fraction of the measured distribution each threshold drops, per site (min / max over layers). */
export function achievedOnProfile(profile: ThresholdProfile, thresholds: Thresholds): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  const note = (site: string, v: number) => {
    const r = out[site] ?? [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    out[site] = [Math.min(r[0], v), Math.max(r[1], v)];
  };
  for (const lt of thresholds.layers) {
    const lp = profile.layers[lt.layer]!;
    if (lt.gate && thresholds.statistic !== 'none' && lp.score[thresholds.statistic].cdf) {
      // per-channel taus t / m_i: the fraction of scores <= t (t = tau_i * m_i for any channel with m_i > 0)
      const m = thresholds.statistic === 'rms' ? lp.upRms : lp.upMeanAbs;
      let t = 0;
      for (let i = 0; i < m.length; i++) if (m[i]! > 0) (t = lt.gate[i]! * m[i]!), (i = m.length);
      note('ffn_gate_act', lp.score[thresholds.statistic].cdf!(t));
    } else if (lt.gate && lp.gateAbs.cdf) note('ffn_gate_act', lp.gateAbs.cdf(lt.gate[0]!));
    for (const p of PROJECTIONS) {
      const v = lt.inputs[p];
      const src = lp.inputs[p];
      if (v !== undefined && src.cdf) note(`${p}_in`, src.cdf(v));
    }
  }
  return out;
}

export async function transformModel(options: TransformOptions): Promise<TransformResult> {
  checkThresholdOptions(options);
  const iterations = options.refine ? (options.refineIterations ?? 1) : 0;
  if (!Number.isInteger(iterations) || iterations < 0 || iterations > 10) {
    throw new ChessError('CHESS_BAD_REFINEMENT', `refinement iterations must be an integer in [0, 10], got ${String(options.refineIterations)}`, { iterations: options.refineIterations });
  }
  const { module, file } = await importGGUF(options.model);
  try {
    checkModule(module, options);
    const profile = typeof options.profile === 'function' ? await options.profile() : options.profile;
    const applied = applyChess(module, profile, options);
    const { placements, reports } = applied;
    let { thresholds } = applied;
    const refinement: RefinementStep[] = [];
    if (iterations > 0 && options.sparsity > 0) {
      const work = await mkdtemp(join(tmpdir(), 'chess-refine-'));
      try {
        for (let it = 1; it <= iterations; it++) {
          const path = join(work, `refine-${it}.gguf`);
          await emitGGUF(module, path);
          const measured = await options.refine!(path, it);
          await rm(path, { force: true });
          const step = { iteration: it, achieved: achievedOnProfile(measured, thresholds) };
          refinement.push(step);
          options.onRefinement?.(step);
          thresholds = computeThresholds(measured, options);
          replaceThresholds(module, thresholds);
        }
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    }
    const total = moduleTensorBytes(module);
    const emit = await emitGGUF(module, options.out, {
      ...(options.progress && { progress: (written: number, _total: number, tensor: string) => options.progress!(written, Math.max(total, written), tensor) }),
    });
    return { path: options.out, thresholds, placements, reports, emit, refinement };
  } finally {
    await file.close();
  }
}
