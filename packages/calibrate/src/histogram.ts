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

/**
 * One coarse log-linear histogram of |v| PER CHANNEL (same bin layout as
 * Histogram, its own spec; counts as u32, slot 0 = exact zeros, 1 = underflow,
 * 2 = overflow, 3.. = the bins), with the exact min / max of every channel's
 * non-zero values. This is what CHESS needs from the gate: the layer's score
 * threshold t is the root of
 *
 *     sum_i n_i F_i(t / m_i) = s sum_i n_i        (F_i: CDF of |g_i|)
 *
 * for any per-channel statistic m (decided at transform time), and a channel
 * with m_i = 0 (score 0, always dropped) counts as F_i = 1.
 */
export class ChannelHistograms {
  readonly spec: Readonly<HistogramSpec>;
  readonly channels: number;
  /** Slots per channel: 3 + bins. */
  readonly slots: number;
  readonly counts: Uint32Array;
  /** Smallest non-zero value per channel (+Infinity when none). */
  readonly min: Float32Array;
  /** Largest value per channel (0 when none). */
  readonly max: Float32Array;
  private readonly edges: Float64Array;
  private readonly loBits: number;
  private readonly hiBits: number;
  private readonly base: number;
  private readonly shift: number;
  private cum: Float64Array | undefined;
  private totals: Float64Array | undefined;

  constructor(spec: Readonly<HistogramSpec>, channels: number, counts?: Uint32Array) {
    new Histogram(spec); // validates the spec
    if (!Number.isInteger(channels) || channels < 0) throw new RangeError(`ChannelHistograms: bad channel count ${channels}`);
    this.spec = Object.freeze({ subBits: spec.subBits, minExp: spec.minExp, maxExp: spec.maxExp });
    this.channels = channels;
    this.slots = histogramBins(spec) + 3;
    if (counts && counts.length !== channels * this.slots) throw new RangeError(`ChannelHistograms: ${counts.length} counts, expected ${channels * this.slots}`);
    this.counts = counts ?? new Uint32Array(channels * this.slots);
    this.min = new Float32Array(channels).fill(Number.POSITIVE_INFINITY);
    this.max = new Float32Array(channels);
    const bins = this.slots - 3;
    const s = 2 ** spec.subBits;
    this.edges = new Float64Array(bins + 1);
    for (let i = 0; i <= bins; i++) this.edges[i] = 2 ** (spec.minExp + Math.floor(i / s)) * (1 + (i % s) / s);
    this.loBits = (spec.minExp + 127) * 2 ** 23;
    this.hiBits = (spec.maxExp + 127) * 2 ** 23;
    this.shift = 23 - spec.subBits;
    this.base = (spec.minExp + 127) * 2 ** spec.subBits;
  }

  /** Slot of a magnitude: 0 zero, 1 underflow, 2 overflow, 3 + bin. */
  slotOf(value: number): number {
    f32[0] = Math.abs(value);
    const b = u32[0]!;
    if (b === 0) return 0;
    if (b < this.loBits) return 1;
    if (b >= this.hiBits) return 2;
    return 3 + (b >>> this.shift) - this.base;
  }

  /** Add |value| (rounded to float32) to channel i. */
  add(channel: number, value: number): void {
    f32[0] = Math.abs(value);
    const v = f32[0]!;
    if (!Number.isFinite(v)) throw new RangeError(`ChannelHistograms.add: non-finite value ${value}`);
    this.counts[channel * this.slots + this.slotOf(v)]! += 1;
    if (v > 0 && v < this.min[channel]!) this.min[channel] = v;
    if (v > this.max[channel]!) this.max[channel] = v;
    this.cum = undefined;
  }

  /** Values counted in channel i. */
  count(channel: number): number {
    this.prepare();
    return this.totals![channel]!;
  }

  /** Channel i as a Histogram of the same spec. */
  channel(i: number): Histogram {
    const h = new Histogram(this.spec);
    const o = i * this.slots;
    h.zeros = this.counts[o]!;
    h.underflow = this.counts[o + 1]!;
    h.overflow = this.counts[o + 2]!;
    for (let k = 0; k < this.slots - 3; k++) h.counts[k] = this.counts[o + 3 + k]!;
    h.min = this.min[i]!;
    h.max = this.max[i]!;
    return h;
  }

  private prepare(): void {
    if (this.cum) return;
    const bins = this.slots - 3;
    const cum = new Float64Array(this.channels * (bins + 1));
    const totals = new Float64Array(this.channels);
    for (let i = 0; i < this.channels; i++) {
      const o = i * this.slots;
      const c = i * (bins + 1);
      let acc = 0;
      for (let k = 0; k < bins; k++) {
        cum[c + k] = acc;
        acc += this.counts[o + 3 + k]!;
      }
      cum[c + bins] = acc;
      totals[i] = acc + this.counts[o]! + this.counts[o + 1]! + this.counts[o + 2]!;
    }
    this.cum = cum;
    this.totals = totals;
  }

  /** Number of values of channel i that are <= v (interpolated inside a bin, clamped to the channel's min / max). */
  countAtMost(i: number, v: number): number {
    this.prepare();
    const total = this.totals![i]!;
    const max = this.max[i]!;
    if (v >= max) return total;
    const o = i * this.slots;
    const zeros = this.counts[o]!;
    if (v <= 0) return zeros;
    const min = this.min[i]!;
    if (v < min) return zeros;
    const under = this.counts[o + 1]!;
    const slot = this.slotOf(v);
    if (slot === 1) {
      const b = Math.min(2 ** this.spec.minExp, max);
      return zeros + under * (b > min ? clamp01((v - min) / (b - min)) : 1);
    }
    const bins = this.slots - 3;
    const c = i * (bins + 1);
    if (slot === 2) {
      const a = Math.max(2 ** this.spec.maxExp, min);
      return zeros + under + this.cum![c + bins]! + this.counts[o + 2]! * (max > a ? clamp01((v - a) / (max - a)) : 1);
    }
    const k = slot - 3;
    const a = Math.max(this.edges[k]!, min);
    const b = Math.min(this.edges[k + 1]!, max);
    return zeros + under + this.cum![c + k]! + this.counts[o + slot]! * (b > a ? clamp01((v - a) / (b - a)) : 1);
  }

  /**
   * Fraction of all (channel, value) pairs with |v_i| * scale_i <= t: the CDF
   * of the scores at t. A channel with scale_i = 0 scores 0 everywhere.
   */
  mixtureCdf(scale: ArrayLike<number>, t: number): number {
    this.prepare();
    let below = 0;
    let total = 0;
    for (let i = 0; i < this.channels; i++) {
      const n = this.totals![i]!;
      total += n;
      const m = scale[i]!;
      below += m > 0 ? this.countAtMost(i, t / m) : t >= 0 ? n : 0;
    }
    if (total === 0) throw new RangeError('mixtureCdf of empty channel histograms');
    return below / total;
  }

  /**
   * The p-quantile of the scores |v_i| * scale_i: the smallest t with
   * mixtureCdf(scale, t) >= p (bisection; the CDF is continuous and
   * non-decreasing between the exact-zero mass and the largest score).
   */
  mixtureQuantile(scale: ArrayLike<number>, p: number): number {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`mixtureQuantile: p must be in [0, 1], got ${p}`);
    if (this.mixtureCdf(scale, 0) >= p) return 0;
    let hi = 0;
    for (let i = 0; i < this.channels; i++) hi = Math.max(hi, this.max[i]! * Math.max(0, scale[i]!));
    let lo = 0;
    for (let it = 0; it < 200 && hi - lo > hi * 1e-12; it++) {
      const mid = 0.5 * (lo + hi);
      if (this.mixtureCdf(scale, mid) >= p) hi = mid;
      else lo = mid;
    }
    return hi;
  }
}
