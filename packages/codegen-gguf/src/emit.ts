import { ChessError } from '@chess/core';
import { ggmlTypeFromName, writeGGUF, type GGUFValue, type GGUFWriteTensor } from '@chess/gguf';
import { ggmlNeFromShape, verify, weightChunks, type Module } from '@chess/ir';
import { ggufValueFromMeta } from './gguf-value.ts';

export interface EmitOptions {
  /** Called after each tensor with bytes written so far and the total. */
  progress?: (written: number, total: number, tensor: string) => void;
  /** Directory that relative source paths are resolved against. */
  baseDir?: string;
}

export interface EmitResult {
  path: string;
  tensors: number;
  tensorBytes: number;
}

/**
 * Emit a module as GGUF v3: its metadata entries in order, then every weight
 * of its table in table order, streamed from its source file range or from the
 * memory a pass attached. Written atomically (temporary file, then rename).
 *
 * The module is verified first; a module imported from a GGUF and emitted
 * without passes reproduces the source file byte for byte (tested).
 */
export async function emitGGUF(module: Module, out: string, options: EmitOptions = {}): Promise<EmitResult> {
  verify(module);
  const metadata: [string, GGUFValue][] = module.meta.map((entry) => [entry.key, ggufValueFromMeta(entry)]);
  const archEntry = module.meta.find((entry) => entry.key === 'general.architecture');
  if (!archEntry) {
    throw new ChessError('CODEGEN_NO_ARCH', `module has no 'general.architecture' metadata entry (arch '${module.arch}'); GGUF readers need it`, { arch: module.arch });
  }

  const total = [...module.weights.values()].reduce((sum, w) => sum + (w.source.kind === 'file' ? (w.source.byteLength ?? 0) : 0), 0);
  let written = 0;
  const tensors: GGUFWriteTensor[] = [...module.weights.values()].map((weight) => {
    const type = ggmlTypeFromName(weight.dtype);
    if (type === undefined) {
      throw new ChessError('CODEGEN_UNSUPPORTED_DTYPE', `weight '${weight.name}' has dtype ${weight.dtype}, which has no GGML type`, { weight: weight.name });
    }
    return {
      name: weight.name,
      shape: ggmlNeFromShape(weight.shape),
      type,
      data: () => counted(weightChunks(module, weight, { baseDir: options.baseDir }), (n) => {
        written += n;
        options.progress?.(written, Math.max(total, written), weight.name);
      }),
    };
  });
  await writeGGUF(out, { metadata, tensors });
  return { path: out, tensors: tensors.length, tensorBytes: written };
}

async function* counted(chunks: AsyncIterable<Uint8Array>, onChunk: (bytes: number) => void): AsyncIterable<Uint8Array> {
  for await (const chunk of chunks) {
    yield chunk;
    onChunk(chunk.byteLength);
  }
}
