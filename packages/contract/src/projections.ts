/** The seven projections of a Llama block (docs/gguf-sparse.md §3), from the contract table. */
import { SPARSE_GGUF } from './contract.ts';

export type Projection = (typeof SPARSE_GGUF.projections)[number]['name'];

/** In the contract's (and the runtime's) order. */
export const PROJECTIONS: readonly Projection[] = SPARSE_GGUF.projections.map((p) => p.name);

export function isProjection(name: string): name is Projection {
  return (PROJECTIONS as readonly string[]).includes(name);
}
