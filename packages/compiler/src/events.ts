/**
 * What the driver reports while it works. The CLI renders these (log lines,
 * progress bars on stderr); tests record them. The driver never writes to a
 * terminal itself.
 */
import { CHECK_PIPELINE, REFINE_PIPELINE, TRANSFORM_PIPELINE } from '@chess/pass-chess';

/** The stages of `compile`, in order. */
export const STAGES = [
  { name: 'import', summary: 'read the dense GGUF into the IR (weights stay references into the file); the default model is fetched first if none is given', passes: [] },
  { name: 'check', summary: 'the module can take the method with these options, before any calibration', passes: CHECK_PIPELINE },
  { name: 'calibrate', summary: "the dense profile: a given profile file (checked against the model), or the model calibrated through the patched runtime", passes: [] },
  { name: 'thresholds', summary: "the method's thresholds from the profile (target sparsity, statistic)", passes: [] },
  { name: 'passes', summary: 'the module rewritten into the sparse GGUF contract', passes: TRANSFORM_PIPELINE },
  { name: 'refine', summary: 'per iteration: write the sparse GGUF, measure it on calibration text, recompute the thresholds, put them in', passes: REFINE_PIPELINE },
  { name: 'emit', summary: 'write the sparse GGUF (atomically; the projections in their storage layout encoded as they are written)', passes: [] },
] as const satisfies ReadonlyArray<{ name: string; summary: string; passes: readonly string[] }>;

export type StageName = (typeof STAGES)[number]['name'];

/** Per refinement iteration: the thresholds' achieved sparsity on the sparse model measured (min / max over layers, per site). */
export interface RefinementStep {
  readonly iteration: number;
  /** site -> [min, max] over layers of the fraction dropped by the thresholds in force during the measurement. */
  readonly achieved: Readonly<Record<string, readonly [number, number]>>;
}

export type CompileEvent =
  | { readonly type: 'stage-start'; readonly stage: StageName }
  | { readonly type: 'stage-end'; readonly stage: StageName; readonly ms: number }
  /** A pass ran (verified after it); rule passes say how often each rule applied. */
  | { readonly type: 'pass'; readonly stage: StageName; readonly pass: string; readonly step: string; readonly applied?: Readonly<Record<string, number>> }
  /** Work counted in tokens (calibration, refinement) or bytes (writing). */
  | { readonly type: 'progress'; readonly stage: StageName; readonly label: string; readonly unit: 'tokens' | 'bytes'; readonly done: number; readonly total: number; readonly detail?: string }
  | { readonly type: 'refinement'; readonly step: RefinementStep }
  /** A line for a human (what is about to happen, warnings). */
  | { readonly type: 'log'; readonly message: string };

export type CompileEvents = (event: CompileEvent) => void;

