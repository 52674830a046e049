/**
 * The bytes of the input-sparse projections in their storage layout
 * (docs/gguf-sparse.md §3), for the pass's `input-sparse-layout` step:
 *
 *  - column blocks: the source's quantized blocks re-arranged per input
 *    channel (`columnBlocksFromRows` of @chess/gguf; nothing decoded or
 *    re-rounded): same dtype, shape and byte count;
 *  - transposed: the source dequantized, transposed, and re-quantized along
 *    the new row axis (n_out) to the requested type.
 *
 * Produced lazily, when the code generator writes the tensor, so only the
 * tensor being written is resident.
 */
import { ChessError } from '@chess/core';
import { columnBlocksFromRows, dequantize, ggmlTypeFromName, quantize } from '@chess/gguf';
import { type DType, type Module, type Weight, weightBytes } from '@chess/ir';
import { type LayoutEncoder, transposeMatrix } from '@chess/pass-chess';

function ggmlType(dtype: DType, what: string): number {
  const type = ggmlTypeFromName(dtype);
  if (type === undefined) throw new ChessError('CHESS_UNSUPPORTED_WEIGHT', `${what} has dtype ${dtype}, which has no ggml type`, { dtype });
  return type;
}

/** Dequantized values of a weight of the module (row-major, its IR shape). */
async function weightValues(module: Module, w: Weight): Promise<Float32Array> {
  const n = w.shape.reduce((a, b) => a * b, 1);
  return dequantize(ggmlType(w.dtype, `weight @${w.name}`), await weightBytes(module, w), n);
}

/** Float values to the bytes of `type` (F32 is a plain little-endian copy). */
function encodeAs(type: DType, values: Float32Array): Uint8Array {
  const ggml = ggmlType(type, 'a transposed projection');
  if (type === 'f32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return quantize(ggml, values);
}

export const ggufLayoutEncoder: LayoutEncoder = (module, source, layout, dtype) => {
  const [nOut, nIn] = source.shape as [number, number];
  if (layout === 'column-blocks') {
    const type = ggmlType(source.dtype, `weight @${source.name}`);
    return async () => columnBlocksFromRows(type, await weightBytes(module, source), nIn, nOut, { name: source.name });
  }
  return async () => encodeAs(dtype, transposeMatrix(await weightValues(module, source), nOut, nIn));
};
