/**
 * Column-block copies of projections for the input-sparse kernel
 * (docs/gguf-sparse.md §3.1), produced lazily: a `memoryWeight` of the
 * source's dtype and shape whose data function reads the source's bytes and
 * re-arranges them (nothing is decoded or re-rounded), so only the tensor
 * being written is resident.
 */
import { columnBlocksFromRows, ggmlTypeFromName } from '@chess/gguf';
import { type Module, type Weight, memoryWeight, weightBytes } from '@chess/ir';
import { ChessError } from '@chess/core';

/** The column-block copy of `src` ([n_out, n_in]) as a lazily produced weight `name` of the same dtype and shape. */
export function columnBlockWeight(module: Module, src: Weight, name: string): Weight {
  const [nOut, nIn] = src.shape as [number, number];
  const type = ggmlTypeFromName(src.dtype);
  if (type === undefined) throw new ChessError('CHESS_UNSUPPORTED_WEIGHT', `weight @${src.name} has dtype ${src.dtype}, which has no ggml type`, { weight: src.name });
  return memoryWeight(name, src.dtype, src.shape, async () => columnBlocksFromRows(type, await weightBytes(module, src), nIn, nOut, { name: src.name }));
}
