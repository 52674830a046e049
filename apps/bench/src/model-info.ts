import { statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { ChessError } from '@chess/core';
import type { ModelInfo } from './schema.ts';
import { assertModelFile } from './runtime.ts';

/**
 * Identity of a model file for result files: size, and the CHESS method and
 * target sparsity the compiler stores in the GGUF metadata (`chess.method`,
 * `chess.target_sparsity`); a model without them is dense (method 'dense',
 * sparsity 0). Reads only the GGUF header, loads no binary.
 */
export async function readModelInfo(path: string): Promise<ModelInfo> {
  assertModelFile(path);
  const absolute = resolve(path);
  const { readGgufFileInfo } = await import('node-llama-cpp');
  let metadata: Record<string, unknown>;
  try {
    const info = await readGgufFileInfo(absolute, {
      readTensorInfo: false,
      sourceType: 'filesystem',
      logWarnings: false,
      ignoreKeys: ['tokenizer.ggml.tokens', 'tokenizer.ggml.merges', 'tokenizer.ggml.token_type', 'tokenizer.ggml.scores'],
    });
    metadata = info.metadata as unknown as Record<string, unknown>;
  } catch (error) {
    throw new ChessError('BENCH_MODEL_UNREADABLE', `${path}: not a readable GGUF file (${(error as Error).message})`, { path }, { cause: error });
  }
  const chess = (metadata.chess ?? {}) as { method?: unknown; target_sparsity?: unknown };
  const general = (metadata.general ?? {}) as { architecture?: unknown };
  const method = typeof chess.method === 'string' && chess.method.length > 0 ? chess.method : 'dense';
  const sparsity = typeof chess.target_sparsity === 'number' && chess.target_sparsity >= 0 && chess.target_sparsity <= 1 ? chess.target_sparsity : 0;
  return {
    path: absolute,
    fileName: basename(absolute),
    sizeBytes: statSync(absolute).size,
    method,
    sparsity,
    architecture: typeof general.architecture === 'string' ? general.architecture : null,
  };
}
