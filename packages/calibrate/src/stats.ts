/**
 * Reader of the native collector's stats file (little-endian):
 *   "CHPSTAT1", u32 version (1), u32 n_layer, u32 n_ff, u32 n_hist (7),
 *   i32 subBits, i32 minExp, i32 maxExp, u32 bins, u64 tokens,
 *   per layer: f64 meanAbs[n_ff], f64 rms[n_ff], then n_hist histograms
 *   (gate_abs, score_rms, score_mean_abs, in_attn_qkv, in_attn_output,
 *   in_ffn_gate_up, in_ffn_down), each: u64 zeros, underflow, overflow,
 *   nonfinite, f64 min (-1 when empty), f64 max, u64 counts[bins].
 */
import { ChessError } from '@chess/core';
import { Histogram, histogramBins, type HistogramSpec } from './histogram.ts';
import { projectionInputs, type LayerProfile } from './profile.ts';

export const STATS_MAGIC = 'CHPSTAT1';
const HIST_NAMES = ['gate_abs', 'score_rms', 'score_mean_abs', 'in_attn_qkv', 'in_attn_output', 'in_ffn_gate_up', 'in_ffn_down'] as const;

export interface CollectedStats {
  tokens: number;
  nFF: number;
  spec: HistogramSpec;
  layers: LayerProfile[];
}

export function parseStats(bytes: Uint8Array, where: string): CollectedStats {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (msg: string): never => {
    throw new ChessError('CALIBRATE_STATS_INVALID', `${where}: ${msg}`, { path: where });
  };
  if (buf.length < 48 || buf.toString('latin1', 0, 8) !== STATS_MAGIC) bad('not a chess-profile stats file');
  if (buf.readUInt32LE(8) !== 1) bad(`stats version ${buf.readUInt32LE(8)}, expected 1`);
  const nLayer = buf.readUInt32LE(12);
  const nFF = buf.readUInt32LE(16);
  const nHist = buf.readUInt32LE(20);
  const spec: HistogramSpec = { subBits: buf.readInt32LE(24), minExp: buf.readInt32LE(28), maxExp: buf.readInt32LE(32) };
  const bins = buf.readUInt32LE(36);
  const tokens = Number(buf.readBigUInt64LE(40));
  if (nHist !== HIST_NAMES.length || bins !== histogramBins(spec)) bad(`unexpected layout (${nHist} histograms of ${bins} bins)`);
  const histBytes = 48 + bins * 8;
  const expected = 48 + nLayer * (nFF * 16 + nHist * histBytes);
  if (buf.length !== expected) bad(`size ${buf.length}, expected ${expected}`);
  let off = 48;
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
  const layers: LayerProfile[] = [];
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
      if (nonfinite > 0) {
        throw new ChessError('CALIBRATE_NONFINITE', `layer ${il} ${name}: ${nonfinite} non-finite activation values (NaN/Inf) during calibration`, {
          layer: il,
          histogram: name,
          nonfinite,
        });
      }
      const min = buf.readDoubleLE(off);
      const max = buf.readDoubleLE(off + 8);
      off += 16;
      h.min = min < 0 ? Number.POSITIVE_INFINITY : min;
      h.max = max;
      for (let i = 0; i < bins; i++) h.counts[i] = u64();
      hs.push(h);
    }
    const [gateAbs, scoreRms, scoreMeanAbs, qkv, o, gateUp, down] = hs as [Histogram, Histogram, Histogram, Histogram, Histogram, Histogram, Histogram];
    layers.push({ upMeanAbs, upRms, gateAbs, score: { rms: scoreRms, 'mean-abs': scoreMeanAbs }, inputs: projectionInputs(qkv, o, gateUp, down) });
  }
  return { tokens, nFF, spec, layers };
}
