/**
 * The transpose of a row-major matrix, for the transposed storage layout
 * (docs/gguf-sparse.md §3.2) and for references that build it by hand. The
 * re-quantized bytes are codec work: @chess/compiler's layout encoder.
 */

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
