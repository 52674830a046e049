import { rm } from 'node:fs/promises';
import { GGMLType, ggmlTypeName } from '@chess/gguf';
import { UsageError, temporarySiblingPath } from '@chess/core';
import { QUANTIZE_PRESETS, quantizeModel, type QuantizePreset } from './quantize.ts';
import { SYNTH_TYPES, type SynthType } from './random-blocks.ts';
import type { ModelShape } from './shapes.ts';
import { FILE_TYPE, synthesizeModel } from './synth.ts';

/**
 * What `synth --type` produces: a single ggml type generated directly in its encoding
 * (random-blocks.ts), or a llama.cpp mix (Q4_K_M, ...) made the way llama.cpp makes it:
 * random F16 weights quantized by the bundled tree's llama-quantize.
 */
export type SynthTarget = { name: string; kind: 'direct'; type: SynthType } | { name: string; kind: 'quantized'; preset: QuantizePreset };

/** Mixes made by llama-quantize from an F16 synth (the single types above are generated directly). */
export const QUANTIZED_SYNTH_TYPES = ['q4_k_m', 'q5_k_m', 'q6_k'] as const satisfies readonly QuantizePreset[];

export function synthTargetNames(): string[] {
  return [...SYNTH_TYPES.map(ggmlTypeName), ...QUANTIZED_SYNTH_TYPES];
}

export function parseSynthTarget(name: string): SynthTarget {
  const key = name.toLowerCase();
  const direct = SYNTH_TYPES.find((type) => ggmlTypeName(type) === key);
  if (direct !== undefined) return { name: key, kind: 'direct', type: direct };
  const preset = QUANTIZED_SYNTH_TYPES.find((p) => p === key);
  if (preset !== undefined) return { name: key, kind: 'quantized', preset };
  throw new UsageError('SYNTH_BAD_TYPE', `--type: '${name}' is not supported; expected one of ${synthTargetNames().join(', ')}`, { type: name });
}

/** `general.file_type` (enum llama_ftype) of the file a target gives. */
export function synthFileType(target: SynthTarget): number {
  return target.kind === 'direct' ? FILE_TYPE[target.type] : QUANTIZE_PRESETS[target.preset].fileType;
}

export interface SynthesizeOptions {
  shape: ModelShape;
  target: SynthTarget;
  out: string;
  seed?: number;
  tokenizerFrom?: string;
  /** The stock llama-quantize (asked for only when the target needs it). */
  llamaQuantize?: () => Promise<string>;
  /** Progress per phase: random weights (bytes), then llama-quantize (tensors). */
  progress?: (phase: 'synth' | 'quantize', done: number, total: number, label: string) => void;
}

/**
 * Write a random-weight model of `shape` as `target` to `out` (atomically: a reader sees the
 * old file or the complete new one). A quantized target synthesizes F16 beside `out` first
 * (deleted afterwards, also on failure), then runs llama-quantize on it.
 */
export async function synthesize(options: SynthesizeOptions): Promise<{ path: string; bytes: number }> {
  const { shape, target, out, seed, tokenizerFrom } = options;
  const synthProgress = (done: number, total: number, tensor: string): void => options.progress?.('synth', done, total, tensor);
  if (target.kind === 'direct') {
    const result = await synthesizeModel({ shape, type: target.type, out, seed, tokenizerFrom, progress: synthProgress });
    return { path: result.path, bytes: result.bytes };
  }
  if (!options.llamaQuantize) throw new Error(`synthesize ${target.name}: no llama-quantize given`);
  const llamaQuantize = await options.llamaQuantize(); // before the F16 synth: a missing tool fails fast
  const f16 = temporarySiblingPath(`${out}.f16`);
  try {
    await synthesizeModel({ shape, type: GGMLType.F16, typeLabel: target.name, out: f16, seed, tokenizerFrom, progress: synthProgress });
    return await quantizeModel({
      input: f16,
      out,
      preset: target.preset,
      llamaQuantize,
      progress: (done, total, tensor) => options.progress?.('quantize', done, total, tensor),
    });
  } finally {
    await rm(f16, { force: true });
  }
}
