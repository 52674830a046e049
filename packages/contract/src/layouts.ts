/**
 * Storage layouts of the input-sparse projections and the format version they
 * imply (docs/gguf-sparse.md §2-3), from the contract table.
 */
import { SPARSE_GGUF } from './contract.ts';
import { type TensorKind, parseContractTensor } from './names.ts';

export type Layout = keyof typeof SPARSE_GGUF.layouts;
export const LAYOUTS = Object.keys(SPARSE_GGUF.layouts) as readonly Layout[];
/** `column-blocks`. */
export const DEFAULT_LAYOUT = LAYOUTS.find((l) => SPARSE_GGUF.layouts[l].default)!;

export function isLayout(name: string): name is Layout {
  return (LAYOUTS as readonly string[]).includes(name);
}

export type TransposedType = (typeof SPARSE_GGUF.layouts.transposed.types)[number];
/** Types a `--layout transposed` projection may be re-quantized to. */
export const TRANSPOSED_TYPES: readonly TransposedType[] = SPARSE_GGUF.layouts.transposed.types;
export const DEFAULT_TRANSPOSED_TYPE: TransposedType = SPARSE_GGUF.layouts.transposed.defaultType;

/** The layout a tensor of the file is stored in, from its name: a storage layout, `rows` for every other weight, `threshold` for taus. */
export function tensorLayout(name: string): Layout | 'rows' | 'threshold' {
  const t = parseContractTensor(name);
  if (t?.kind === 'inputTau' || t?.kind === 'gateTau') return 'threshold';
  const layout = LAYOUTS.find((l) => SPARSE_GGUF.layouts[l].tensor === (t?.kind as TensorKind | undefined));
  return layout ?? 'rows';
}

/** `chess.format_version` of a file holding these tensors: the largest format of a storage layout present, at least the base (1). */
export function formatVersionOf(tensorNames: Iterable<string>): number {
  let version: number = SPARSE_GGUF.formatVersion.base;
  for (const name of tensorNames) {
    const layout = tensorLayout(name);
    if (layout !== 'rows' && layout !== 'threshold') version = Math.max(version, SPARSE_GGUF.layouts[layout].formatVersion);
  }
  return version;
}
