/**
 * A calibrator for sparsity 0: every threshold is then 0 whatever the statistics (only exact
 * zeros are dropped, so the sparse file computes the dense function), and a profile of the
 * model's shape is all the pass needs. For exactness checks of layouts and routes without a
 * calibration run.
 */
import { importGGUF } from '@chess/import-gguf';
import { PROJECTIONS, type Projection, type QuantileSource, type ThresholdProfile } from '@chess/pass-chess';
import { type Calibrator, fixedCalibrator } from './calibrator.ts';

/** The shape-only profile of `model` (statistics all 1: any value works at sparsity 0). */
export async function shapeOnlyProfile(model: string): Promise<ThresholdProfile> {
  const { module, file } = await importGGUF(model);
  await file.close();
  const nLayer = module.hparams.get('n_layer') as number;
  const nFF = module.hparams.get('n_ff') as number;
  const q: QuantileSource = { quantile: () => 1 };
  const m = new Float64Array(nFF).fill(1);
  const inputs = Object.fromEntries(PROJECTIONS.map((p) => [p, q])) as Record<Projection, QuantileSource>;
  return {
    model: { arch: module.arch, nLayer, nEmbd: module.hparams.get('n_embd') as number, nFF },
    calibration: { source: 'none (sparsity 0)', tokens: 0, seed: 0 },
    layers: Array.from({ length: nLayer }, () => ({ upMeanAbs: m, upRms: m, gateAbs: q, score: { rms: q, 'mean-abs': q }, inputs })),
  };
}

/** compile(..., { calibrator: await zeroSparsityCalibrator(model) }) with sparsity 0 and no refinement. */
export async function zeroSparsityCalibrator(model: string): Promise<Calibrator> {
  return fixedCalibrator(await shapeOnlyProfile(model));
}
