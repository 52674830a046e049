import { UsageError } from '@chess/core';

/**
 * Bounds checked while parsing a header, each BEFORE the allocation or loop it
 * guards, so a hostile or corrupt file fails fast with GGUF_LIMIT_EXCEEDED
 * instead of exhausting memory. Independently of these, every count and length
 * the header claims must fit in the bytes left in the file (GGUF_TRUNCATED).
 * The writer validates against the same defaults, so it never produces a file
 * the reader refuses.
 */
export interface GGUFLimits {
  /** Largest public models (MoE with per-expert tensors) have a few thousand; 64 Ki bounds the tensor table. */
  maxTensorCount: number;
  /** Real models carry ~20-60 keys; 64 Ki bounds the metadata map. */
  maxKvCount: number;
  /** Chat templates and embedded tokenizer JSON are at most a few MB; 64 MiB per string leaves ample room. */
  maxStringBytes: number;
  /** The largest vocabularies / merge lists have well under 1 M entries; 16 Mi items per array. */
  maxArrayLength: number;
  /** Nested arrays are legal but unused in practice; a small bound keeps recursion shallow. */
  maxArrayDepth: number;
  /** ggml's GGML_MAX_DIMS: a tensor with more dimensions cannot be represented by ggml. */
  maxDims: number;
  /** 2^48 elements is far beyond any tensor and keeps element and byte counts exact in JS numbers (< 2^53). */
  maxTensorElements: number;
  /** ggml's GGML_MAX_NAME is 64 including the NUL: llama.cpp refuses longer tensor names. */
  maxTensorNameBytes: number;
  /** The whole header (metadata + tensor table) is held in memory while parsing; real ones are < 50 MB. */
  maxHeaderBytes: number;
}

export const DEFAULT_GGUF_LIMITS: Readonly<GGUFLimits> = Object.freeze({
  maxTensorCount: 1 << 16,
  maxKvCount: 1 << 16,
  maxStringBytes: 64 << 20,
  maxArrayLength: 1 << 24,
  maxArrayDepth: 8,
  maxDims: 4,
  maxTensorElements: 2 ** 48,
  maxTensorNameBytes: 63,
  maxHeaderBytes: 256 << 20,
});

/** Defaults overridden by `overrides`; each override must be a positive safe integer. */
export function resolveLimits(overrides: Partial<GGUFLimits> = {}): GGUFLimits {
  const limits: GGUFLimits = { ...DEFAULT_GGUF_LIMITS };
  for (const [name, value] of Object.entries(overrides) as [keyof GGUFLimits, unknown][]) {
    if (!(name in DEFAULT_GGUF_LIMITS)) {
      throw new UsageError('GGUF_BAD_LIMIT', `unknown GGUF limit '${name}' (known: ${Object.keys(DEFAULT_GGUF_LIMITS).join(', ')})`, {
        limit: name,
      });
    }
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new UsageError('GGUF_BAD_LIMIT', `GGUF limit '${name}' must be a non-negative safe integer, got ${String(value)}`, {
        limit: name,
        value,
      });
    }
    if (name === 'maxDims' && value > DEFAULT_GGUF_LIMITS.maxDims) {
      throw new UsageError('GGUF_BAD_LIMIT', `GGUF limit 'maxDims' cannot exceed ggml's ${DEFAULT_GGUF_LIMITS.maxDims}`, {
        limit: name,
        value,
      });
    }
    limits[name] = value;
  }
  return limits;
}
