/**
 * Streaming, mergeable histogram of magnitudes |x| on fixed log-linear bins
 * (the float32 bit pattern: exponent + the top `subBits` mantissa bits).
 * Memory is O(bins), independent of how many values are added; two
 * histograms with the same spec merge by adding counts. The native collector
 * (native/chess-profile.cpp) bins exactly the same way, so binning is a shift
 * of the float32 bits, not a logarithm.
 *
 * Layout for spec `{ subBits, minExp, maxExp }` (S = 2^subBits):
 *   - `zeros`:     values exactly 0
 *   - `underflow`: values in (0, 2^minExp)
 *   - `counts[i]`: values in [2^e (1 + j/S), 2^e (1 + (j+1)/S)) with
 *                  e = minExp + floor(i / S), j = i mod S
 *   - `overflow`:  finite values >= 2^maxExp
 * plus the exact minimum and maximum of the non-zero values (clamping the
 * outermost occupied bins). Values are rounded to float32 before binning
 * (activations are float32 in llama.cpp anyway).
 *
 * Quantile error: `quantile(p)` answers inside the bin that holds the exact
 * sample quantile (the smallest value v with at least p * count values <= v),
 * interpolating linearly inside that bin. A bin [a, b) has (b - a) / a <= 1/S,
 * so inside [2^minExp, 2^maxExp) the relative error against the exact sample
 * quantile is at most 1/S = 0.39 % with the default subBits = 8 (plus the
 * float32 rounding of the inputs, 6e-8 relative). Default range: [2^-34, 2^14)
 * = [5.8e-11, 16384), 12288 bins. Below the range the absolute error is below
 * 2^minExp; above it the answer lies in [2^maxExp, max].
 */
export interface HistogramSpec {
  /** Linear sub-bins per power of two: 2^subBits. */
  subBits: number;
  /** Smallest binned power of two (values below: underflow). */
  minExp: number;
  /** End of the binned range, exclusive (values from 2^maxExp: overflow). */
  maxExp: number;
}

export const DEFAULT_HISTOGRAM_SPEC: Readonly<HistogramSpec> = Object.freeze({ subBits: 8, minExp: -34, maxExp: 14 });

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Number of bins of a spec. */
export function histogramBins(spec: Readonly<HistogramSpec>): number {
  return (spec.maxExp - spec.minExp) * 2 ** spec.subBits;
}

export function sameHistogramSpec(a: Readonly<HistogramSpec>, b: Readonly<HistogramSpec>): boolean {
  return a.subBits === b.subBits && a.minExp === b.minExp && a.maxExp === b.maxExp;
}

export class Histogram {
  readonly spec: Readonly<HistogramSpec>;
  readonly counts: Float64Array;
  zeros = 0;
  underflow = 0;
  overflow = 0;
  /** Smallest non-zero value seen (+Infinity when none). */
  min = Number.POSITIVE_INFINITY;
  /** Largest value seen (0 when none). */
  max = 0;
  private readonly loBits: number;
  private readonly hiBits: number;
  private readonly base: number;
  private readonly shift: number;

  constructor(spec: Readonly<HistogramSpec> = DEFAULT_HISTOGRAM_SPEC) {
    const { subBits, minExp, maxExp } = spec;
    if (!Number.isInteger(subBits) || subBits < 0 || subBits > 16 || !Number.isInteger(minExp) || !Number.isInteger(maxExp) || minExp < -126 || maxExp > 128 || minExp >= maxExp) {
      throw new RangeError(`invalid histogram spec ${JSON.stringify(spec)}: need integers 0 <= subBits <= 16, -126 <= minExp < maxExp <= 128`);
    }
    this.spec = Object.freeze({ subBits, minExp, maxExp });
    this.counts = new Float64Array(histogramBins(spec));
    this.loBits = (minExp + 127) * 2 ** 23;
    this.hiBits = (maxExp + 127) * 2 ** 23;
    this.shift = 23 - subBits;
    this.base = (minExp + 127) * 2 ** subBits;
  }

  /** Total number of values added. */
  get count(): number {
    let total = this.zeros + this.underflow + this.overflow;
    for (let i = 0; i < this.counts.length; i++) total += this.counts[i]!;
    return total;
  }

  /** Largest relative width of a bin, 2^-subBits: the bound on the relative quantile error inside the range. */
  get relativeBinWidth(): number {
    return 2 ** -this.spec.subBits;
  }

  /** Lower edge of bin i (i = bins gives 2^maxExp). */
  edge(i: number): number {
    const s = 2 ** this.spec.subBits;
    const e = this.spec.minExp + Math.floor(i / s);
    return 2 ** e * (1 + (i % s) / s);
  }

  /** Bin of a magnitude; -1 for zero, -2 underflow, -3 overflow. */
  binOf(value: number): number {
    f32[0] = Math.abs(value);
    const b = u32[0]!;
    if (b === 0) return -1;
    if (b < this.loBits) return -2;
    if (b >= this.hiBits) return -3;
    return (b >>> this.shift) - this.base;
  }

  /** Add |value| (rounded to float32). NaN and infinities are rejected. */
  add(value: number, weight = 1): void {
    f32[0] = Math.abs(value);
    const v = f32[0]!;
    if (!Number.isFinite(v)) throw new RangeError(`Histogram.add: non-finite value ${value}`);
    const bin = this.binOf(v);
    if (bin === -1) {
      this.zeros += weight;
      return;
    }
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    if (bin === -2) this.underflow += weight;
    else if (bin === -3) this.overflow += weight;
    else this.counts[bin]! += weight;
  }

  addAll(values: ArrayLike<number>): void {
    for (let i = 0; i < values.length; i++) this.add(values[i]!);
  }

  /** Add the counts of another histogram with the same spec. */
  merge(other: Histogram): void {
    if (!sameHistogramSpec(this.spec, other.spec)) {
      throw new RangeError(`cannot merge histograms with different specs ${JSON.stringify(this.spec)} and ${JSON.stringify(other.spec)}`);
    }
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.zeros += other.zeros;
    this.underflow += other.underflow;
    this.overflow += other.overflow;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
  }

  /**
   * Approximate p-quantile, p in [0, 1]: about p * count values are <= the
   * answer. The exact-zero mass is honoured exactly (0 while p * count <= zeros).
   */
  quantile(p: number): number {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`quantile: p must be in [0, 1], got ${p}`);
    const n = this.count;
    if (n === 0) throw new RangeError('quantile of an empty histogram');
    const rank = p * n;
    let cum = this.zeros;
    if (this.zeros > 0 && rank <= cum) return 0;
    if (this.underflow > 0) {
      if (rank <= cum + this.underflow) {
        const a = this.min;
        const b = Math.min(2 ** this.spec.minExp, this.max);
        return a + (b - a) * clamp01((rank - cum) / this.underflow);
      }
      cum += this.underflow;
    }
    for (let i = 0; i < this.counts.length; i++) {
      const c = this.counts[i]!;
      if (c === 0) continue;
      if (rank <= cum + c) {
        const a = Math.max(this.edge(i), this.min);
        const b = Math.max(a, Math.min(this.edge(i + 1), this.max));
        return a + (b - a) * clamp01((rank - cum) / c);
      }
      cum += c;
    }
    if (this.overflow > 0) {
      const a = Math.min(Math.max(2 ** this.spec.maxExp, this.min), this.max);
      return a + (this.max - a) * clamp01((rank - cum) / this.overflow);
    }
    return this.max;
  }

  /** Approximate fraction of values <= v (the inverse of quantile; interpolated inside a bin). */
  cdf(value: number): number {
    const n = this.count;
    if (n === 0) throw new RangeError('cdf of an empty histogram');
    const v = Math.abs(value);
    if (v >= this.max) return 1;
    let cum = this.zeros;
    if (v === 0) return cum / n;
    const bin = this.binOf(v);
    if (bin === -2) {
      const a = this.min;
      const b = Math.min(2 ** this.spec.minExp, this.max);
      return (cum + this.underflow * (v <= a ? 0 : b > a ? clamp01((v - a) / (b - a)) : 1)) / n;
    }
    cum += this.underflow;
    if (bin === -3) {
      for (let i = 0; i < this.counts.length; i++) cum += this.counts[i]!;
      const a = Math.max(2 ** this.spec.maxExp, this.min);
      return (cum + this.overflow * clamp01((v - a) / (this.max - a))) / n;
    }
    for (let i = 0; i < bin; i++) cum += this.counts[i]!;
    const a = this.edge(bin);
    const b = this.edge(bin + 1);
    return (cum + this.counts[bin]! * clamp01((v - a) / (b - a))) / n;
  }

  /** Range [first, end) of bins holding a non-zero count (first === end === 0 when none). */
  occupiedRange(): { first: number; end: number } {
    let first = 0;
    while (first < this.counts.length && this.counts[first] === 0) first++;
    if (first === this.counts.length) return { first: 0, end: 0 };
    let end = this.counts.length;
    while (end > first && this.counts[end - 1] === 0) end--;
    return { first, end };
  }
}

function clamp01(x: number): number {
  return Number.isNaN(x) ? 0 : x < 0 ? 0 : x > 1 ? 1 : x;
}
