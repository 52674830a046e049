/**
 * What every model-reading command does first, before any other library (the
 * importer, llama.cpp's C parser in calibrate, node-llama-cpp) touches the file:
 * our GGUF reader with its named limits (a malformed file fails with the same
 * GGUF_* code and byte offset in every command), then, for a sparse GGUF, the
 * sparse contract (SPARSE_CONTRACT_VIOLATION naming the key or tensor). A path
 * that does not exist is left to the command's own "no such file" usage error.
 */
import { existsSync } from 'node:fs';

export async function validateModel(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const { openGGUF, assertSparseContract } = await import('@chess/gguf');
  const file = await openGGUF(path);
  try {
    await assertSparseContract(file);
  } finally {
    await file.close();
  }
}

/** Where the default model lives (fetched or not): an input of commands run without --model. */
export async function defaultModelPath(): Promise<string> {
  return (await import('@chess/assets')).defaultModelPath();
}
