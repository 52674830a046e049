/**
 * Where the driver's profiles come from: the dense profile the thresholds
 * start from, and (for refinement) measurements of the sparse model written
 * with the thresholds in force. Passed in, so that tests substitute their own
 * and only `runtime-calibrator.ts` needs the patched runtime.
 */
import { UsageError } from '@chess/core';
import type { ThresholdProfile } from '@chess/pass-chess';
import type { CompileEvents } from './events.ts';
import type { CompileOptions } from './options.ts';

export interface CalibrationRequest {
  /** The dense source GGUF (already checked: it imports, and the module can take the method). */
  readonly model: string;
  readonly options: CompileOptions;
  /** How to name an option in a message (the CLI names its flags). */
  readonly optionName: (key: keyof CompileOptions) => string;
  readonly events: CompileEvents;
}

export interface MeasureRequest extends CalibrationRequest {
  /** A sparse GGUF holding the thresholds in force. */
  readonly sparseModel: string;
  /** 1, 2, ... */
  readonly iteration: number;
  /** What `profile` returned: the measurement keeps its model identity and per-channel statistics. */
  readonly dense: ThresholdProfile;
}

export interface Calibrator {
  /** The dense model's profile. Checks what it can before any expensive work. */
  profile(request: CalibrationRequest): Promise<ThresholdProfile>;
  /**
   * The profile measured on the sparse model: the distribution each threshold
   * meets once the layers before it are sparse. Without it the calibrator
   * cannot refine (the driver refuses refinement before any work).
   */
  measure?(request: MeasureRequest): Promise<ThresholdProfile>;
}

/** A calibrator with a profile at hand (tests, benchmarks that made one); `measure` for refinement, if any. */
export function fixedCalibrator(profile: ThresholdProfile, measure?: (sparseModel: string, iteration: number) => Promise<ThresholdProfile>): Calibrator {
  return {
    profile: async () => profile,
    ...(measure && { measure: (r: MeasureRequest) => measure(r.sparseModel, r.iteration) }),
  };
}

/** Refuse refinement a calibrator cannot do (before any work). */
export function checkCalibratorCanRefine(calibrator: Calibrator, optionName: (key: keyof CompileOptions) => string): void {
  if (calibrator.measure) return;
  throw new UsageError(
    'TRANSFORM_REFINE_UNAVAILABLE',
    `${optionName('refineTokens')}: this calibrator cannot measure a sparse model to refine the thresholds; pass ${optionName('refineTokens')} 0 to use the profile's thresholds as they are`,
    { option: optionName('refineTokens') },
  );
}
