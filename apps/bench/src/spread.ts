import type { Spread } from './schema.ts';

/** Median, min and max of a non-empty list. */
export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const median = n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  return { median, min: sorted[0]!, max: sorted[n - 1]! };
}

/** x rounded to 4 decimals (result files). */
export const round4 = (x: number): number => Math.round(x * 1e4) / 1e4;

/** spread() rounded to 4 decimals. */
export function spread4(values: readonly number[]): Spread {
  const s = spread(values);
  return { median: round4(s.median), min: round4(s.min), max: round4(s.max) };
}

/** One timed llama-bench run of model `model` (0: the baseline) in round `round`. */
export interface SpeedSample {
  model: number;
  round: number;
  test: 'tg' | 'pp';
  tokensPerSecond: number;
}

/** Per model: decode (and prefill) tokens/s and the speedups paired per round against model 0. */
export function pairedSummary(nModels: number, samples: readonly SpeedSample[], withPrefill: boolean) {
  const of = (m: number, test: 'tg' | 'pp') => samples.filter((s) => s.model === m && s.test === test);
  const paired = (m: number, test: 'tg' | 'pp'): Spread | null => {
    if (m === 0) return null;
    const ratios = of(m, test).flatMap((s) => {
      const base = samples.find((b) => b.model === 0 && b.test === test && b.round === s.round);
      return base ? [s.tokensPerSecond / base.tokensPerSecond] : [];
    });
    return ratios.length > 0 ? spread4(ratios) : null;
  };
  return Array.from({ length: nModels }, (_, m) => ({
    model: m,
    decodeTokPerSec: spread4(of(m, 'tg').map((s) => s.tokensPerSecond)),
    prefillTokPerSec: withPrefill ? spread4(of(m, 'pp').map((s) => s.tokensPerSecond)) : null,
    decodeSpeedup: paired(m, 'tg'),
    prefillSpeedup: withPrefill ? paired(m, 'pp') : null,
  }));
}
