/**
 * Where each input-sparse projection goes (docs/gguf-sparse.md §3): the chosen
 * storage layout, or its row layout kept when that layout cannot hold it (the
 * runtime then runs the projection on its masked-dense route: the same
 * function, not faster). One decision per weight, used by the rewrite rule and
 * reported by `chess transform`.
 */
import { ChessError } from '@chess/core';
import { DEFAULT_LAYOUT, type Layout, type Method, type Projection, columnBlockMisfit, contractNames, isLayout, LAYOUTS, parseProjectionWeight } from '@chess/contract';
import type { Module, Weight } from '@chess/ir';
import { methodLayout } from './methods.ts';

export interface Placement {
  /** The source weight (`blk.N.<proj>.weight`). */
  readonly weight: string;
  readonly layer: number;
  readonly proj: Projection;
  /** The storage layout it gets, or `rows`: kept as it is (masked-dense route). */
  readonly layout: Layout | 'rows';
  /** The tensor written for it. */
  readonly tensor: string;
  /** Why the row layout was kept. */
  readonly reason?: string;
}

/** The placement of one projection weight under `layout` (the transposed layout holds any projection its type check let through). */
export function placeProjection(w: Weight, layout: Layout): Placement {
  const p = parseProjectionWeight(w.name);
  if (!p) throw new ChessError('CHESS_UNSUPPORTED_WEIGHT', `@${w.name} is not a projection weight (blk.N.<proj>.weight)`, { weight: w.name });
  if (layout === 'transposed') return { weight: w.name, ...p, layout, tensor: contractNames.transposed(p.layer, p.proj) };
  const [nOut, nIn] = w.shape as [number, number];
  const misfit = columnBlockMisfit(w.dtype, nIn, nOut);
  if (misfit) return { weight: w.name, ...p, layout: 'rows', tensor: w.name, reason: misfit };
  return { weight: w.name, ...p, layout, tensor: contractNames.columnBlocks(p.layer, p.proj) };
}

/** The placements of every input-sparse projection of `method` in the module, in weight-table order. */
export function inputSparsePlacements(module: Module, method: Method, layout: Layout = DEFAULT_LAYOUT): Placement[] {
  const inputSparse = new Set<Projection>(methodLayout(method).inputSparse);
  return [...module.weights.values()].filter((w) => inputSparse.has(parseProjectionWeight(w.name)?.proj as Projection)).map((w) => placeProjection(w, layout));
}

/**
 * Throws (stable codes, the message names the option) unless `layout` is a
 * storage layout and `transposedType` is given only with the transposed one.
 */
export function checkLayoutOptions(options: { layout?: string | undefined; transposedType?: string | undefined }): void {
  const layout = options.layout ?? DEFAULT_LAYOUT;
  if (!isLayout(layout)) {
    throw new ChessError('CHESS_BAD_LAYOUT', `unknown layout '${layout}'; valid layouts: ${LAYOUTS.join(', ')}`, { layout, valid: LAYOUTS });
  }
  if (options.transposedType !== undefined && layout !== 'transposed') {
    throw new ChessError(
      'CHESS_LAYOUT_CONFLICT',
      `a transposed type ('${options.transposedType}') applies only to the transposed layout, not to '${layout}' (which keeps the source's type); choose the transposed layout or drop the type`,
      { layout, transposedType: options.transposedType },
    );
  }
}
