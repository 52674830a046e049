/**
 * The column-block table of docs/gguf-sparse.md §3.1, typed, with the fit rule
 * the compiler and the loader share (which type and shape may be stored so).
 */
import { SPARSE_GGUF } from './contract.ts';

export type ColumnPlane = keyof typeof SPARSE_GGUF.columnBlocks.planes;

export interface ScaleField {
  /** The field's name in ggml's block struct (`d`, `m`, `dmin`, `scales`). */
  readonly name: string;
  /** Bytes per row in the scale section (the field's size in one block). */
  readonly bytes: number;
  readonly kind: 'f16' | 'u8' | 'i8';
}

export interface ColumnBlockType {
  /** ggml type name, as ggml spells it (`q4_K`). */
  readonly type: string;
  /** enum ggml_type */
  readonly ggmlType: number;
  /** C identifier (enum chess_type). */
  readonly c: string;
  /** B: input channels per group (the type's block size). */
  readonly groupSize: number;
  /** S: bytes per block of the row layout (a group record holds n_out * S bytes). */
  readonly blockBytes: number;
  /** n_out must be a multiple of this (32 for types with scales: planes come in 32-row units). */
  readonly rowMultiple: number;
  /** The scale section: per-row arrays in this order. */
  readonly scales: readonly ScaleField[];
  /** The column record of one channel: its planes in this order. */
  readonly column: readonly ColumnPlane[];
}

export const COLUMN_BLOCK_TYPES: readonly ColumnBlockType[] = SPARSE_GGUF.columnBlocks.types;
export const COLUMN_PLANES = SPARSE_GGUF.columnBlocks.planes;
/** Planes come in units of this many rows. */
export const COLUMN_ROW_UNIT = SPARSE_GGUF.columnBlocks.rowUnit;

/** The §3.1 row of a ggml type (by name, `q4_1`, or by enum ggml_type number), or undefined if it has no column-block layout. */
export function columnBlockType(type: string | number): ColumnBlockType | undefined {
  return COLUMN_BLOCK_TYPES.find((t) => (typeof type === 'number' ? t.ggmlType === type : t.type === type));
}

/**
 * Why a weight of this type and shape (n_in inputs, n_out outputs) cannot be
 * stored in the column-block layout, or undefined if it can.
 */
export function columnBlockMisfit(type: string | number, nIn: number, nOut: number): string | undefined {
  const t = columnBlockType(type);
  if (!t) return `type ${typeof type === 'number' ? `ggml ${type}` : type} has no column-block layout (${COLUMN_BLOCK_TYPES.map((x) => x.type).join(', ')} have)`;
  if (!Number.isSafeInteger(nIn) || nIn <= 0 || nIn % t.groupSize !== 0) return `n_in = ${nIn} is not a positive multiple of the ${t.type} group size ${t.groupSize}`;
  if (!Number.isSafeInteger(nOut) || nOut <= 0 || nOut % t.rowMultiple !== 0) return `n_out = ${nOut} is not a positive multiple of ${t.rowMultiple} (${t.type} planes come in ${t.rowMultiple}-row units)`;
  return undefined;
}

/** Bytes per output row of a group's scale section (the sum of its scale fields). */
export function columnBlockScaleBytes(t: ColumnBlockType): number {
  return t.scales.reduce((a, f) => a + f.bytes, 0);
}

/**
 * The byte model of a column-block tensor (docs/gguf-sparse.md §7): the expected
 * bytes one token reads from a `_cb` weight of type `type` ([n_out, n_in]) whose
 * input drops a fraction `s` of its channels. A group of B channels is skipped
 * when all of them are dropped (probability s^B for independent channels), else
 * its scale section and its kept channels' columns are read. Undefined for a
 * type without the layout (the loader refuses such a tensor).
 */
export function columnBlockReadBytes(type: string | number, nIn: number, nOut: number, s: number): number | undefined {
  const t = columnBlockType(type);
  if (!t) return undefined;
  const scaleBytes = columnBlockScaleBytes(t);
  const columnBytes = t.blockBytes - scaleBytes; // per row and group
  const groups = nIn / t.groupSize;
  return groups * nOut * (scaleBytes * (1 - s ** t.groupSize) + columnBytes * (1 - s));
}
