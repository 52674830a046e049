import { basename, resolve } from 'node:path';
import { GGUFValueType } from '@chess/gguf';
import type { ModelInfo } from './schema.ts';
import { assertModelFile } from './runtime.ts';

/**
 * Identity of a model file for result files: size, and the CHESS method and
 * target sparsity the compiler stores in the GGUF metadata (`chess.method`,
 * `chess.target_sparsity`); a model without them is dense (method 'dense',
 * sparsity 0). Reads only the GGUF header, loads no binary.
 *
 * This is the gate every model passes before any other library parses it
 * (node-llama-cpp's own GGUF parser hangs or exhausts memory on some malformed
 * headers): our reader with its named limits (a malformed file fails with the
 * same GGUF_* code as `chess inspect`), then, for a sparse GGUF, the sparse
 * contract (SPARSE_CONTRACT_VIOLATION naming the key or tensor).
 */
export async function readModelInfo(path: string): Promise<ModelInfo> {
  assertModelFile(path);
  const absolute = resolve(path);
  const { openGGUF, assertSparseContract } = await import('@chess/gguf');
  const file = await openGGUF(absolute);
  try {
    await assertSparseContract(file);
    const meta = file.metadata;
    const text = (key: string): string | undefined => {
      const v = meta.get(key);
      return v?.type === GGUFValueType.STRING ? v.value : undefined;
    };
    const method = text('chess.method') || 'dense';
    const s = meta.get('chess.target_sparsity');
    // a sparse GGUF has passed the contract (f32 in [0, 1)); a dense one has none
    const sparsity = s?.type === GGUFValueType.FLOAT32 ? s.value : 0;
    return { path: absolute, fileName: basename(absolute), sizeBytes: file.fileSize, method, sparsity, architecture: text('general.architecture') ?? null };
  } finally {
    await file.close();
  }
}
