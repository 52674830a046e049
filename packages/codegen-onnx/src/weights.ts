/**
 * A weight of the module as float32 values in its logical layout, whatever it
 * is stored as: the block codecs of @chess/gguf dequantize (the same code the
 * interpreter's callers use), column-block tensors are first put back into
 * ggml's row layout (bit for bit, @chess/gguf's inverse of the layout).
 */
import { ChessError } from '@chess/core';
import { dequantize, ggmlTypeFromName, rowsFromColumnBlocks } from '@chess/gguf';
import { formatShape, numElements, weightBytes, type Module, type Weight } from '@chess/ir';

export interface DequantizeOptions {
  /** Directory that relative source paths are resolved against. */
  readonly baseDir?: string;
  /** The tensor is stored in column blocks (docs/gguf-sparse.md §3.1): logical shape [n_out, n_in]. */
  readonly columnBlocks?: boolean;
}

export async function dequantizedWeight(module: Module, weight: Weight, options: DequantizeOptions = {}): Promise<Float32Array> {
  const n = numElements(weight.shape);
  if (weight.source.kind === 'memory' && typeof weight.source.data !== 'function' && weight.source.data instanceof Float32Array && weight.dtype === 'f32') {
    return weight.source.data;
  }
  const type = ggmlTypeFromName(weight.dtype);
  if (type === undefined) {
    throw new ChessError('ONNX_EXPORT_DTYPE', `weight @${weight.name} has dtype ${weight.dtype}, which has no ggml block codec to dequantize it`, { weight: weight.name });
  }
  let bytes = await weightBytes(module, weight, { baseDir: options.baseDir });
  if (options.columnBlocks) {
    const [nOut, nIn] = weight.shape as [number, number];
    bytes = rowsFromColumnBlocks(type, bytes, nIn, nOut, { name: weight.name });
  }
  try {
    return dequantize(type, bytes, n);
  } catch (error) {
    throw new ChessError('ONNX_EXPORT_DTYPE', `weight @${weight.name} ${weight.dtype}${formatShape(weight.shape)}: cannot dequantize ${bytes.byteLength} bytes: ${(error as Error).message}`, { weight: weight.name }, { cause: error });
  }
}
