/**
 * Reader of the native collector's stats file (little-endian, version 2):
 *   "CHPSTAT2", u32 version (2), u32 n_layer, u32 n_ff, u32 n_hist (5),
 *   i32 subBits, i32 minExp, i32 maxExp, u32 bins            (fine histograms)
 *   i32 chSubBits, i32 chMinExp, i32 chMaxExp, u32 chBins    (per-channel |g| histograms)
 *   u64 tokens, u32 moments (1: the up-projection moments were measured), u32 0,
 *   per layer: f64 meanAbs[n_ff], f64 rms[n_ff] (zeros without moments), then
 *   n_hist histograms (gate_abs, in_attn_qkv, in_attn_output, in_ffn_gate_up,
 *   in_ffn_down), each: u64 zeros, underflow, overflow, nonfinite,
 *   f64 min (-1 when empty), f64 max, u64 counts[bins];
 *   then the per-channel gate histograms: u64 nonfinite,
 *   u32 counts[n_ff][3 + chBins] (zeros, underflow, overflow, bins),
 *   f32 min[n_ff] (-1 when empty), f32 max[n_ff].
 */
import { ChessError } from '@chess/core';
import { ChannelHistograms, Histogram, histogramBins, type HistogramSpec } from './histogram.ts';

export const STATS_MAGIC = 'CHPSTAT2';
const HIST_NAMES = ['gate_abs', 'in_attn_qkv', 'in_attn_output', 'in_ffn_gate_up', 'in_ffn_down'] as const;
const HEADER_BYTES = 72;

export interface CollectedLayer {
  /** [nFF] E|u_i| (zeros when `moments` is false). */
  upMeanAbs: Float64Array;
  /** [nFF] sqrt(E u_i^2) (zeros when `moments` is false). */
  upRms: Float64Array;
  gateAbs: Histogram;
  gateChannels: ChannelHistograms;
  qkv: Histogram;
  attnOutput: Histogram;
  gateUp: Histogram;
  down: Histogram;
}

export interface CollectedStats {
  tokens: number;
  nFF: number;
  spec: HistogramSpec;
  channelSpec: HistogramSpec;
  /** The up-projection moments were measured (dense model); false on a sparse model. */
  moments: boolean;
  layers: CollectedLayer[];
}

export function parseStats(bytes: Uint8Array, where: string): CollectedStats {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (msg: string): never => {
    throw new ChessError('CALIBRATE_STATS_INVALID', `${where}: ${msg}`, { path: where });
  };
  if (buf.length < HEADER_BYTES || buf.toString('latin1', 0, 8) !== STATS_MAGIC) bad('not a chess-profile stats file (version 2)');
  if (buf.readUInt32LE(8) !== 2) bad(`stats version ${buf.readUInt32LE(8)}, expected 2`);
  const nLayer = buf.readUInt32LE(12);
  const nFF = buf.readUInt32LE(16);
  const nHist = buf.readUInt32LE(20);
  const spec: HistogramSpec = { subBits: buf.readInt32LE(24), minExp: buf.readInt32LE(28), maxExp: buf.readInt32LE(32) };
  const bins = buf.readUInt32LE(36);
  const channelSpec: HistogramSpec = { subBits: buf.readInt32LE(40), minExp: buf.readInt32LE(44), maxExp: buf.readInt32LE(48) };
  const chBins = buf.readUInt32LE(52);
  const tokens = Number(buf.readBigUInt64LE(56));
  const moments = buf.readUInt32LE(64) === 1;
  if (nHist !== HIST_NAMES.length || bins !== histogramBins(spec) || chBins !== histogramBins(channelSpec)) bad(`unexpected layout (${nHist} histograms of ${bins} bins, ${chBins} channel bins)`);
  const histBytes = 48 + bins * 8;
  const chanBytes = 8 + nFF * (3 + chBins) * 4 + nFF * 8;
  const expected = HEADER_BYTES + nLayer * (nFF * 16 + nHist * histBytes + chanBytes);
  if (buf.length !== expected) bad(`size ${buf.length}, expected ${expected}`);
  let off = HEADER_BYTES;
  const f64 = (n: number): Float64Array => {
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++, off += 8) a[i] = buf.readDoubleLE(off);
    return a;
  };
  const u64 = (): number => {
    const v = buf.readBigUInt64LE(off);
    off += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) bad(`count ${v} exceeds 2^53`);
    return Number(v);
  };
  const nonfiniteError = (il: number, name: string, nonfinite: number): ChessError =>
    new ChessError('CALIBRATE_NONFINITE', `layer ${il} ${name}: ${nonfinite} non-finite activation values (NaN/Inf) during calibration`, { layer: il, histogram: name, nonfinite });
  const layers: CollectedLayer[] = [];
  for (let il = 0; il < nLayer; il++) {
    const upMeanAbs = f64(nFF);
    const upRms = f64(nFF);
    const hs: Histogram[] = [];
    for (const name of HIST_NAMES) {
      const h = new Histogram(spec);
      h.zeros = u64();
      h.underflow = u64();
      h.overflow = u64();
      const nonfinite = u64();
      if (nonfinite > 0) throw nonfiniteError(il, name, nonfinite);
      const min = buf.readDoubleLE(off);
      const max = buf.readDoubleLE(off + 8);
      off += 16;
      h.min = min < 0 ? Number.POSITIVE_INFINITY : min;
      h.max = max;
      for (let i = 0; i < bins; i++) h.counts[i] = u64();
      hs.push(h);
    }
    const nonfinite = u64();
    if (nonfinite > 0) throw nonfiniteError(il, 'gate_channels', nonfinite);
    const n = nFF * (3 + chBins);
    const counts = new Uint32Array(n);
    for (let i = 0; i < n; i++, off += 4) counts[i] = buf.readUInt32LE(off);
    const gateChannels = new ChannelHistograms(channelSpec, nFF, counts);
    for (let i = 0; i < nFF; i++, off += 4) {
      const v = buf.readFloatLE(off);
      gateChannels.min[i] = v < 0 ? Number.POSITIVE_INFINITY : v;
    }
    for (let i = 0; i < nFF; i++, off += 4) gateChannels.max[i] = buf.readFloatLE(off);
    const [gateAbs, qkv, attnOutput, gateUp, down] = hs as [Histogram, Histogram, Histogram, Histogram, Histogram];
    layers.push({ upMeanAbs, upRms, gateAbs, gateChannels, qkv, attnOutput, gateUp, down });
  }
  return { tokens, nFF, spec, channelSpec, moments, layers };
}
