/**
 * Streaming, mergeable histogram of non-negative magnitudes on fixed
 * log-spaced bins. Memory is O(bins), independent of how many values are
 * added, and two histograms with the same spec merge by adding counts.
 *
 * Layout (spec `{ bins, lo, hi }`, step = ln(hi / lo) / bins):
 *   - `zeros`:     values exactly 0
 *   - `underflow`: values in (0, lo)
 *   - `counts[i]`: values in [lo * e^(i step), lo * e^((i+1) step))
 *   - `overflow`:  values >= hi (finite)
 * plus the exact minimum and maximum of the non-zero values, used to clamp the
 * outer bins.
 *
 * Quantile error: `quantile(p)` returns a value inside the bin that holds the
 * exact sample quantile (the smallest value v with at least p * count values
 * <= v), interpolated geometrically inside that bin. With the default spec
 * (8192 bins over [1e-10, 1e4]) the relative bin width is e^step - 1 =
 * 0.394 %, so for values in [lo, hi) the relative error against the exact
 * sample quantile is below 0.4 %; in the underflow range the absolute error is
 * below `lo`; in the overflow range the answer lies in [hi, max].
 */
export interface HistogramSpec {
  bins: number;
  lo: number;
  hi: number;
}

export const DEFAULT_HISTOGRAM_SPEC: Readonly<HistogramSpec> = Object.freeze({ bins: 8192, lo: 1e-10, hi: 1e4 });

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
  private readonly logLo: number;
  private readonly step: number;

  constructor(spec: Readonly<HistogramSpec> = DEFAULT_HISTOGRAM_SPEC) {
    if (!Number.isInteger(spec.bins) || spec.bins < 1 || !(spec.lo > 0) || !(spec.hi > spec.lo) || !Number.isFinite(spec.hi)) {
      throw new RangeError(`invalid histogram spec ${JSON.stringify(spec)}: need integer bins >= 1 and 0 < lo < hi < Infinity`);
    }
    this.spec = Object.freeze({ bins: spec.bins, lo: spec.lo, hi: spec.hi });
    this.counts = new Float64Array(spec.bins);
    this.logLo = Math.log(spec.lo);
    this.step = (Math.log(spec.hi) - this.logLo) / spec.bins;
  }

  /** Total number of values added. */
  get count(): number {
    let total = this.zeros + this.underflow + this.overflow;
    for (let i = 0; i < this.counts.length; i++) total += this.counts[i]!;
    return total;
  }

  /** Relative width of one bin (e^step - 1): the bound on the relative quantile error inside [lo, hi). */
  get relativeBinWidth(): number {
    return Math.expm1(this.step);
  }

  /** Lower edge of bin i (i = bins gives hi). */
  edge(i: number): number {
    return i >= this.spec.bins ? this.spec.hi : Math.exp(this.logLo + i * this.step);
  }

  /** Bin index of a value in [lo, hi). */
  binOf(value: number): number {
    const i = Math.floor((Math.log(value) - this.logLo) / this.step);
    return i < 0 ? 0 : i >= this.spec.bins ? this.spec.bins - 1 : i;
  }

  /** Add |value| (NaN is rejected: it has no place in a magnitude histogram). */
  add(value: number, weight = 1): void {
    const v = Math.abs(value);
    if (Number.isNaN(v)) throw new RangeError('Histogram.add: NaN');
    if (v === 0) {
      this.zeros += weight;
      return;
    }
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    if (v < this.spec.lo) this.underflow += weight;
    else if (v >= this.spec.hi) this.overflow += weight;
    else this.counts[this.binOf(v)]! += weight;
  }

  addAll(values: ArrayLike<number>): void {
    for (let i = 0; i < values.length; i++) this.add(values[i]!);
  }

  /** Add the counts of another histogram with the same spec. */
  merge(other: Histogram): void {
    const a = this.spec;
    const b = other.spec;
    if (a.bins !== b.bins || a.lo !== b.lo || a.hi !== b.hi) {
      throw new RangeError(`cannot merge histograms with different specs ${JSON.stringify(a)} and ${JSON.stringify(b)}`);
    }
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.zeros += other.zeros;
    this.underflow += other.underflow;
    this.overflow += other.overflow;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
  }

  /**
   * Approximate p-quantile, p in [0, 1]: a value v with about p * count values <= v.
   * Exact-zero mass is honoured exactly (returns 0 while p * count <= zeros).
   */
  quantile(p: number): number {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`quantile: p must be in [0, 1], got ${p}`);
    const n = this.count;
    if (n === 0) throw new RangeError('quantile of an empty histogram');
    const rank = p * n;
    let cum = this.zeros;
    if (rank <= cum && this.zeros > 0) return 0;
    if (this.underflow > 0) {
      if (rank <= cum + this.underflow) {
        const a = this.min;
        const b = Math.min(this.spec.lo, this.max);
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
        return a * Math.pow(b / a, clamp01((rank - cum) / c));
      }
      cum += c;
    }
    if (this.overflow > 0) {
      const a = Math.max(this.spec.hi, Math.min(this.min, this.max));
      return a + (this.max - a) * clamp01((rank - cum) / this.overflow);
    }
    return this.max;
  }

  /** Approximate fraction of values <= v (inverse of quantile; interpolated inside a bin). */
  cdf(value: number): number {
    const n = this.count;
    if (n === 0) throw new RangeError('cdf of an empty histogram');
    const v = Math.abs(value);
    if (v >= this.max) return 1;
    let cum = this.zeros;
    if (v === 0) return cum / n;
    if (v < this.spec.lo) {
      const a = this.min;
      const b = Math.min(this.spec.lo, this.max);
      const frac = v <= a ? 0 : b > a ? (v - a) / (b - a) : 1;
      return (cum + this.underflow * clamp01(frac)) / n;
    }
    cum += this.underflow;
    if (v >= this.spec.hi) {
      const a = Math.max(this.spec.hi, this.min);
      return (cum + this.binTotal() + this.overflow * clamp01((v - a) / (this.max - a))) / n;
    }
    const k = this.binOf(v);
    for (let i = 0; i < k; i++) cum += this.counts[i]!;
    const a = this.edge(k);
    const b = this.edge(k + 1);
    return (cum + this.counts[k]! * clamp01(Math.log(v / a) / Math.log(b / a))) / n;
  }

  private binTotal(): number {
    let t = 0;
    for (let i = 0; i < this.counts.length; i++) t += this.counts[i]!;
    return t;
  }

  /** Range [first, end) of bins holding a non-zero count (first === end when none). */
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
  return x < 0 ? 0 : x > 1 ? 1 : Number.isNaN(x) ? 0 : x;
}
