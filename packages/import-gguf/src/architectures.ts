import { ChessError } from '@chess/core';
import type { GGUFMetadata } from '@chess/gguf';
import type { LlamaHParams } from '@chess/ir';

/**
 * How each supported GGUF architecture maps onto the IR's Llama-family
 * decoder: data, not conditionals. Adding an architecture is one entry here
 * (plus its graph differences in the IR builder).
 */
export interface ArchitectureSpec {
  /** RoPE pairing: llama/mistral rotate (2i, 2i+1), qwen2 is neox-style. */
  readonly ropeMode: 'normal' | 'neox';
  readonly activation: 'silu' | 'gelu_tanh';
  readonly notes: string;
}

export const ARCHITECTURES: Readonly<Record<string, ArchitectureSpec>> = {
  llama: { ropeMode: 'normal', activation: 'silu', notes: 'Llama 2/3, Mistral, SmolLM2 layouts' },
  qwen2: { ropeMode: 'neox', activation: 'silu', notes: 'Qwen2 / Qwen2.5 (q/k/v biases)' },
};

export function supportedArchitectures(): string[] {
  return Object.keys(ARCHITECTURES);
}

export function architectureSpec(arch: string, path: string): ArchitectureSpec {
  const spec = ARCHITECTURES[arch];
  if (!spec) {
    throw new ChessError(
      'IMPORT_UNSUPPORTED_ARCH',
      `${path}: architecture '${arch}' is not supported; supported: ${Object.entries(ARCHITECTURES)
        .map(([name, s]) => `${name} (${s.notes})`)
        .join(', ')}`,
      { path, arch, supported: supportedArchitectures() },
    );
  }
  return spec;
}

/** Hyperparameters from `<arch>.*` keys, with llama.cpp's defaults where a key is optional. */
export function readLlamaHParams(arch: string, metadata: GGUFMetadata, nVocab: number): LlamaHParams {
  const spec = architectureSpec(arch, metadata.source);
  const key = (suffix: string) => `${arch}.${suffix}`;
  const optional = (suffix: string): number | undefined => (metadata.has(key(suffix)) ? metadata.getNumber(key(suffix)) : undefined);
  const n_head = metadata.getNumber(key('attention.head_count'));
  const n_embd = metadata.getNumber(key('embedding_length'));
  const head_dim = optional('attention.key_length') ?? n_embd / n_head;
  const scalingType = metadata.has(key('rope.scaling.type')) ? metadata.getString(key('rope.scaling.type')) : 'none';
  const scalingFactor = optional('rope.scaling.factor') ?? 0;
  if (scalingType !== 'none' && scalingType !== 'linear') {
    throw new ChessError('IMPORT_UNSUPPORTED_ROPE_SCALING', `${metadata.source}: rope scaling '${scalingType}' is not supported yet (supported: none, linear)`, {
      path: metadata.source,
      scalingType,
    });
  }
  return {
    arch,
    n_layer: metadata.getNumber(key('block_count')),
    n_embd,
    n_ff: metadata.getNumber(key('feed_forward_length')),
    n_head,
    n_head_kv: optional('attention.head_count_kv') ?? n_head,
    head_dim,
    n_vocab: optional('vocab_size') ?? nVocab,
    rms_eps: metadata.getNumber(key('attention.layer_norm_rms_epsilon')),
    activation: spec.activation,
    rope: {
      n_rot: optional('rope.dimension_count') ?? head_dim,
      freq_base: optional('rope.freq_base') ?? 10000,
      freq_scale: scalingType === 'linear' && scalingFactor > 0 ? 1 / scalingFactor : 1,
      mode: spec.ropeMode,
      n_ctx_orig: optional('rope.scaling.original_context_length') ?? optional('context_length') ?? 0,
    },
  };
}
