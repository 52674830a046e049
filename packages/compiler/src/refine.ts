/**
 * Refinement: calibration on the partially sparsified model. Thresholds taken
 * from the dense model's activations miss their target at run time, because
 * every layer then sees what its sparsified predecessors produce. Each
 * iteration writes the sparse GGUF with the thresholds in force (to a
 * temporary file), has the calibrator measure it on calibration text,
 * recomputes every threshold from the measurement (same method, statistic and
 * target) and puts them in with the pass pipeline's `place-thresholds`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emitGGUF } from '@chess/codegen-gguf';
import { GATE_ACT_SITE, inputSite } from '@chess/contract';
import { type Module, type StepReport } from '@chess/ir';
import { type BudgetPlan, PROJECTIONS, type PassContext, REFINE_PIPELINE, type ThresholdProfile, type Thresholds, computeThresholds } from '@chess/pass-chess';
import type { Calibrator, CalibrationRequest } from './calibrator.ts';
import type { RefinementStep } from './events.ts';
import { runPasses } from './run-passes.ts';

/** Fraction of the measured distribution each threshold drops, per site (min / max over layers). */
export function achievedOnProfile(profile: ThresholdProfile, thresholds: Thresholds, gateScale?: readonly ArrayLike<number>[]): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  const note = (site: string, v: number) => {
    const r = out[site] ?? [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    out[site] = [Math.min(r[0], v), Math.max(r[1], v)];
  };
  for (const lt of thresholds.layers) {
    const lp = profile.layers[lt.layer]!;
    if (lt.gate && gateScale && thresholds.statistic !== 'none' && lp.gateChannels) {
      // budget: weight-aware scores |g_i| m_i c_i, taus t / (m_i c_i)
      const m = thresholds.statistic === 'rms' ? lp.upRms : lp.upMeanAbs;
      const c = gateScale[lt.layer]!;
      const w = Float64Array.from({ length: m.length }, (_, i) => m[i]! * c[i]!);
      let t = 0;
      for (let i = 0; i < w.length; i++) if (w[i]! > 0) (t = lt.gate[i]! * w[i]!), (i = w.length);
      note(GATE_ACT_SITE, lp.gateChannels.mixtureCdf(w, t));
    } else if (lt.gate && thresholds.statistic !== 'none' && lp.score[thresholds.statistic].cdf) {
      // per-channel taus t / m_i: the fraction of scores <= t (t = tau_i * m_i for any channel with m_i > 0)
      const m = thresholds.statistic === 'rms' ? lp.upRms : lp.upMeanAbs;
      let t = 0;
      for (let i = 0; i < m.length; i++) if (m[i]! > 0) (t = lt.gate[i]! * m[i]!), (i = m.length);
      note(GATE_ACT_SITE, lp.score[thresholds.statistic].cdf!(t));
    } else if (lt.gate && lp.gateAbs.cdf) note(GATE_ACT_SITE, lp.gateAbs.cdf(lt.gate[0]!));
    for (const p of PROJECTIONS) {
      const v = lt.inputs[p];
      const src = lp.inputs[p];
      if (v !== undefined && src.cdf) note(inputSite(p), src.cdf(v));
    }
  }
  return out;
}

export interface RefineResult {
  readonly thresholds: Thresholds;
  readonly steps: RefinementStep[];
  readonly reports: StepReport[];
}

/** `iterations` rounds of measure -> recompute -> place, starting from `thresholds` (in force in `module`). */
export async function refineThresholds(
  module: Module,
  context: PassContext & { readonly thresholds: Thresholds },
  dense: ThresholdProfile,
  calibrator: Calibrator,
  request: CalibrationRequest,
  budgetPlan?: BudgetPlan,
): Promise<RefineResult> {
  const { options } = request;
  let { thresholds } = context;
  const steps: RefinementStep[] = [];
  const reports: StepReport[] = [];
  const work = await mkdtemp(join(tmpdir(), 'chess-refine-'));
  try {
    for (let iteration = 1; iteration <= options.refineIterations; iteration++) {
      const sparseModel = join(work, `refine-${iteration}.gguf`);
      await emitGGUF(module, sparseModel);
      const measured = await calibrator.measure!({ ...request, sparseModel, iteration, dense });
      await rm(sparseModel, { force: true });
      const step = { iteration, achieved: achievedOnProfile(measured, thresholds, budgetPlan?.gateScale) };
      steps.push(step);
      request.events({ type: 'refinement', step });
      // the budget method keeps its allocation: each site's threshold at its allocated level on the new measurement
      thresholds = computeThresholds(measured, { ...options, ...(budgetPlan && { budgetPlan }) });
      reports.push(...runPasses(module, REFINE_PIPELINE, { ...context, thresholds }, 'refine', request.events));
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { thresholds, steps, reports };
}
