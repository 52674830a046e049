import { GGML_TYPE_TRAITS, ggmlTypeFromName } from '@chess/gguf';
import type { DType } from '@chess/ir';

/** Bytes of a weight's data once written (from its dtype and shape). */
export function weightByteSize(dtype: DType, shape: readonly number[]): number {
  const traits = GGML_TYPE_TRAITS.get(ggmlTypeFromName(dtype)!);
  const n = shape.reduce((a, b) => a * b, 1);
  return traits ? (n / traits.blockSize) * traits.typeSize : 0;
}
