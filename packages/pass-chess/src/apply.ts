/**
 * The pass on a module in memory, given a profile: the checks, the thresholds,
 * the transform pipeline. For IR-level use (golden fixtures, the reference
 * interpreter, experiments); files, calibration and refinement go through the
 * compiler driver (@chess/compiler), which runs the same named pipelines.
 */
import { DEFAULT_LAYOUT, type Layout } from '@chess/contract';
import { type DType, type PipelineOptions, type StepReport, type Module, runPipeline } from '@chess/ir';
import type { LayoutEncoder } from './encoder.ts';
import { registerSparseOps } from './ops.ts';
import { DEFAULT_TRANSPOSED_TYPE, checkProfileMatchesModule } from './passes.ts';
import { type Placement, checkLayoutOptions, inputSparsePlacements } from './placement.ts';
import { CHECK_PIPELINE, TRANSFORM_PIPELINE, passSteps } from './registry.ts';
import { type ThresholdOptions, type ThresholdProfile, type Thresholds, checkThresholdOptions, computeThresholds } from './thresholds.ts';

export interface ApplyChessOptions extends ThresholdOptions {
  /** Storage layout of the input-sparse projections. Default `column-blocks`. */
  readonly layout?: Layout;
  /** Storage type of transposed projections: only with layout `transposed` (default DEFAULT_TRANSPOSED_TYPE). */
  readonly transposedType?: DType;
  readonly tool?: string;
  /** Bytes of the projections in their storage layout; none: the new weights carry no data. */
  readonly encoder?: LayoutEncoder;
  readonly pipeline?: PipelineOptions;
}

export interface ApplyChessResult {
  readonly thresholds: Thresholds;
  /** Where each input-sparse projection went (`rows`: kept in its row layout, with the reason). */
  readonly placements: Placement[];
  readonly reports: StepReport[];
}

/** Check the options and the module, compute the thresholds from `profile` (same model shape), run the transform pipeline. */
export function applyChess(module: Module, profile: ThresholdProfile, options: ApplyChessOptions): ApplyChessResult {
  registerSparseOps();
  checkLayoutOptions(options);
  checkThresholdOptions(options);
  const layout = options.layout ?? DEFAULT_LAYOUT;
  const context = {
    method: options.method,
    layout,
    transposedType: options.transposedType ?? DEFAULT_TRANSPOSED_TYPE,
    ...(options.tool !== undefined && { tool: options.tool }),
    ...(options.encoder && { encoder: options.encoder }),
  };
  const reports = runPipeline(module, passSteps(CHECK_PIPELINE, context), options.pipeline);
  checkProfileMatchesModule(profile, module);
  const thresholds = computeThresholds(profile, options);
  const placements = inputSparsePlacements(module, options.method, layout);
  reports.push(...runPipeline(module, passSteps(TRANSFORM_PIPELINE, { ...context, thresholds, calibration: profile.calibration }), options.pipeline));
  return { thresholds, placements, reports };
}
