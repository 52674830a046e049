/**
 * Transposed projections for the input-sparse kernel, produced lazily: the
 * weight is a `memoryWeight` whose data function dequantizes the source
 * tensor, transposes it and re-quantizes along the new row axis (n_out), so
 * only the tensor being written is resident.
 */
import { ChessError } from '@chess/core';
import { dequantize, ggmlTypeFromName, quantize } from '@chess/gguf';
import { type DType, type Module, type Weight, memoryWeight, weightBytes } from '@chess/ir';

/**
 * W [n_out, n_in] (row-major) -> W^T [n_in, n_out]: row j of the result holds
 * what input element j feeds. Blocked for cache locality.
 */
export function transposeMatrix(w: Float32Array, nOut: number, nIn: number): Float32Array {
  const out = new Float32Array(nOut * nIn);
  const B = 64;
  for (let o0 = 0; o0 < nOut; o0 += B) {
    const o1 = Math.min(o0 + B, nOut);
    for (let i0 = 0; i0 < nIn; i0 += B) {
      const i1 = Math.min(i0 + B, nIn);
      for (let o = o0; o < o1; o++) {
        const row = o * nIn;
        for (let i = i0; i < i1; i++) out[i * nOut + o] = w[row + i]!;
      }
    }
  }
  return out;
}

/** Float values to the bytes of `type` (F32 is a plain little-endian copy). */
export function encodeAs(type: DType, values: Float32Array): Uint8Array {
  const ggml = ggmlTypeFromName(type);
  if (ggml === undefined) throw new ChessError('CHESS_BAD_TRANSPOSED_TYPE', `dtype ${type} has no ggml type`, { type });
  if (type === 'f32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return quantize(ggml, values);
}

/** Dequantized values of a weight of the module (row-major, its IR shape). */
export async function weightValues(module: Module, w: Weight): Promise<Float32Array> {
  const ggml = ggmlTypeFromName(w.dtype);
  if (ggml === undefined) throw new ChessError('CHESS_UNSUPPORTED_WEIGHT', `weight @${w.name} has dtype ${w.dtype}, which has no ggml type`, { weight: w.name });
  const n = w.shape.reduce((a, b) => a * b, 1);
  return dequantize(ggml, await weightBytes(module, w), n);
}

/**
 * The transposed copy of `src` ([n_out, n_in]) as a lazily produced weight
 * `name` of dtype `type` and shape [n_in, n_out] (GGUF ne [n_out, n_in]).
 */
export function transposedWeight(module: Module, src: Weight, name: string, type: DType): Weight {
  const [nOut, nIn] = src.shape as [number, number];
  return memoryWeight(name, type, [nIn, nOut], async () => encodeAs(type, transposeMatrix(await weightValues(module, src), nOut, nIn)));
}
