import { readFileSync } from 'node:fs';
import { UsageError } from '@chess/core';

/** Hyperparameters of a Llama-family decoder, as llama.cpp's `llama` architecture reads them. */
export interface ModelShape {
  name: string;
  nLayer: number;
  nEmbd: number;
  nFF: number;
  nHead: number;
  nHeadKV: number;
  nCtx: number;
  ropeFreqBase: number;
  rmsEps: number;
  /** Output head shares the token embedding (no `output.weight`). */
  tiedEmbeddings: boolean;
}

/** Shapes used for speed work; the vocabulary always comes from the real tokenizer. */
export const SHAPES: Readonly<Record<string, ModelShape>> = {
  'llama2-7b': {
    name: 'llama2-7b', nLayer: 32, nEmbd: 4096, nFF: 11008, nHead: 32, nHeadKV: 32,
    nCtx: 4096, ropeFreqBase: 10000, rmsEps: 1e-5, tiedEmbeddings: false,
  },
  'llama3-8b': {
    name: 'llama3-8b', nLayer: 32, nEmbd: 4096, nFF: 14336, nHead: 32, nHeadKV: 8,
    nCtx: 8192, ropeFreqBase: 500000, rmsEps: 1e-5, tiedEmbeddings: false,
  },
  // the size of model edge devices run (Llama-3.2-1B: 16 layers, GQA 32/8, tied embeddings; the
  // vocabulary is SmolLM2's 49152 instead of 128256, like every synthetic model here)
  'llama-1b': {
    name: 'llama-1b', nLayer: 16, nEmbd: 2048, nFF: 8192, nHead: 32, nHeadKV: 8,
    nCtx: 8192, ropeFreqBase: 500000, rmsEps: 1e-5, tiedEmbeddings: true,
  },
  smollm2: {
    name: 'smollm2', nLayer: 30, nEmbd: 576, nFF: 1536, nHead: 9, nHeadKV: 3,
    nCtx: 8192, ropeFreqBase: 100000, rmsEps: 1e-5, tiedEmbeddings: true,
  },
};

const INTEGER_FIELDS = ['nLayer', 'nEmbd', 'nFF', 'nHead', 'nHeadKV', 'nCtx'] as const;

/** The hyperparameters that determine a synthesized file, as JSON in a fixed field order (the name is only a label). */
export function canonicalShape(shape: ModelShape): string {
  const { nLayer, nEmbd, nFF, nHead, nHeadKV, nCtx, ropeFreqBase, rmsEps, tiedEmbeddings } = shape;
  return JSON.stringify({ nLayer, nEmbd, nFF, nHead, nHeadKV, nCtx, ropeFreqBase, rmsEps, tiedEmbeddings });
}

/**
 * Resolve `--shape`: a known name, an inline JSON object, or a path to a JSON
 * file. JSON may override any field of a named `base` shape.
 */
export function parseShape(arg: string): ModelShape {
  const known = SHAPES[arg];
  if (known) return known;
  let raw: unknown;
  const text = arg.trimStart().startsWith('{') ? arg : readShapeFile(arg);
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new UsageError('SYNTH_BAD_SHAPE', `--shape: not a known shape (${Object.keys(SHAPES).join(', ')}) nor valid JSON: ${(error as Error).message}`, { arg });
  }
  if (typeof raw !== 'object' || raw === null) throw new UsageError('SYNTH_BAD_SHAPE', '--shape: JSON must be an object', { arg });
  const record = raw as Record<string, unknown>;
  const baseName = typeof record.base === 'string' ? record.base : undefined;
  const base = baseName ? SHAPES[baseName] : undefined;
  if (baseName && !base) throw new UsageError('SYNTH_BAD_SHAPE', `--shape: unknown base '${baseName}'; known: ${Object.keys(SHAPES).join(', ')}`, { arg });
  const shape = { ...(base ?? {}), name: 'custom', ...record } as Record<string, unknown>;
  delete shape.base;
  for (const field of INTEGER_FIELDS) {
    const value = shape[field];
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > 1 << 20) {
      throw new UsageError('SYNTH_BAD_SHAPE', `--shape: field '${field}' must be a positive integer <= ${1 << 20}, got ${JSON.stringify(value)}`, { field });
    }
  }
  const s = shape as unknown as ModelShape;
  if (s.nEmbd % s.nHead !== 0) throw new UsageError('SYNTH_BAD_SHAPE', `--shape: nEmbd ${s.nEmbd} is not divisible by nHead ${s.nHead}`, {});
  if (s.nHead % s.nHeadKV !== 0) throw new UsageError('SYNTH_BAD_SHAPE', `--shape: nHead ${s.nHead} is not a multiple of nHeadKV ${s.nHeadKV}`, {});
  if (typeof s.ropeFreqBase !== 'number' || !(s.ropeFreqBase > 0)) throw new UsageError('SYNTH_BAD_SHAPE', '--shape: ropeFreqBase must be > 0', {});
  if (typeof s.rmsEps !== 'number' || !(s.rmsEps > 0)) throw new UsageError('SYNTH_BAD_SHAPE', '--shape: rmsEps must be > 0', {});
  if (typeof s.tiedEmbeddings !== 'boolean') throw new UsageError('SYNTH_BAD_SHAPE', '--shape: tiedEmbeddings must be a boolean', {});
  return s;
}

function readShapeFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new UsageError('SYNTH_BAD_SHAPE', `--shape: '${path}' is not a known shape (${Object.keys(SHAPES).join(', ')}), JSON, or a readable JSON file`, { arg: path });
  }
}
