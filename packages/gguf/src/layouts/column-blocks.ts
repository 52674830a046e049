/**
 * The column-block layout of a weight (docs/gguf-sparse.md §3.1, the table in
 * @chess/contract): ggml's row layout (n_out rows of n_in / B blocks) to G =
 * n_in / B group records of n_out * S bytes (the group's scale section, per-row
 * arrays, then one column record per input channel: its value planes over the
 * rows, in 32-row units), and back. Bytes and bits move; nothing is decoded or
 * re-rounded, so the result has the source's type and byte count and the
 * inverse restores the source bit for bit.
 */
import { type ColumnBlockType, type ColumnPlane, columnBlockMisfit, columnBlockType } from '@chess/contract';
import { ChessError } from '@chess/core';
import { type GGMLType, ggmlTypeName } from '../types.ts';
import { type BlockAnatomy, blockAnatomy } from './block-anatomy.ts';

/** Stable codes of the layout movers (docs/errors.md). */
export type LayoutErrorCode = 'GGUF_LAYOUT_UNSUPPORTED' | 'GGUF_LAYOUT_BAD_SHAPE';

export interface ColumnBlockOptions {
  /** Written into (allocated when absent); must hold the weight's byte count. */
  readonly out?: Uint8Array;
  /** Names the weight in error messages (a tensor name). */
  readonly name?: string;
}

/** Whether a weight of this ggml type can be stored in the column-block layout. */
export function columnBlockSupported(type: GGMLType): boolean {
  return columnBlockType(type) !== undefined;
}

/** Bytes of a weight of n_out rows of n_in elements in either layout (the same count). */
function byteCount(t: ColumnBlockType, nIn: number, nOut: number): number {
  return (nIn / t.groupSize) * t.blockBytes * nOut;
}

/**
 * Throws GGUF_LAYOUT_UNSUPPORTED (a type outside the §3.1 table) or
 * GGUF_LAYOUT_BAD_SHAPE (n_in not whole groups, n_out not whole 32-row units,
 * a byte count other than the weight's), naming the weight; returns the type's
 * table row.
 */
export function checkColumnBlocks(type: GGMLType, nIn: number, nOut: number, byteLength?: number, name?: string): ColumnBlockType {
  const what = `${name ?? 'weight'} (${ggmlTypeName(type)}, n_in ${nIn}, n_out ${nOut})`;
  const t = columnBlockType(type);
  const misfit = columnBlockMisfit(ggmlTypeName(type), nIn, nOut);
  if (!t) throw new ChessError('GGUF_LAYOUT_UNSUPPORTED', `${what}: ${misfit}`, { type, typeName: ggmlTypeName(type), ...(name !== undefined && { name }) });
  if (misfit) throw new ChessError('GGUF_LAYOUT_BAD_SHAPE', `${what}: ${misfit}`, { type: t.type, nIn, nOut, ...(name !== undefined && { name }) });
  const expected = byteCount(t, nIn, nOut);
  if (byteLength !== undefined && byteLength !== expected) {
    throw new ChessError('GGUF_LAYOUT_BAD_SHAPE', `${what}: ${byteLength} bytes, expected ${expected}`, { type: t.type, nIn, nOut, byteLength, expected, ...(name !== undefined && { name }) });
  }
  return t;
}

function output(t: ColumnBlockType, nIn: number, nOut: number, options: ColumnBlockOptions): Uint8Array {
  const n = byteCount(t, nIn, nOut);
  if (options.out === undefined) return new Uint8Array(n);
  if (options.out.length !== n) {
    throw new ChessError('GGUF_LAYOUT_BAD_SHAPE', `${options.name ?? 'weight'}: output buffer of ${options.out.length} bytes, expected ${n}`, { expected: n, byteLength: options.out.length });
  }
  return options.out;
}

/**
 * Visits every byte of a group record once, in column-block order, against
 * the group's blocks gathered into a scratch buffer (row r's block at r * S:
 * contiguous, so the many small reads stay in cache). `bytes` is given the
 * column-block offset and the scratch offset of whole bytes (scale fields, raw
 * values); `bits` the column-block offset of a plane byte and the scratch
 * offsets of its bits.
 */
interface Mover {
  /** Copy `n` bytes between cb[o..] and blocks[p..]. */
  bytes(o: number, p: number, n: number): void;
  /**
   * The plane byte cb[o] holds `count` fields of `width` bits: field i (bits
   * width*i ..) is (blocks[p + i * stride] >> shift) & mask.
   */
  bits(o: number, p: number, stride: number, count: number, width: number, shift: number): void;
  /** Before a group (gather its blocks from the row layout) and after it (scatter them back). */
  enter?(gOff: number): void;
  leave?(gOff: number): void;
}

function walk(t: ColumnBlockType, a: BlockAnatomy, nIn: number, nOut: number, mover: Mover): void {
  const S = t.blockBytes;
  const B = t.groupSize;
  const R = nOut;
  const units = R / 32;
  let o = 0;
  for (let g = 0, gOff = 0; g < nIn / B; g++, gOff += S) {
    mover.enter?.(gOff);
    for (const f of t.scales) {
      const p0 = a.scaleOffsets[f.name]!;
      for (let r = 0; r < R; r++, o += f.bytes) mover.bytes(o, p0 + r * S, f.bytes);
    }
    for (let c = 0; c < B; c++) {
      for (const plane of t.column) o = walkPlane(plane, a, c, S, R, units, o, mover);
    }
    mover.leave?.(gOff);
  }
}

/** Copies the blocks at gOff of every row between the row layout and a group scratch (row r's block at r * S). */
function moveGroup(rows: Uint8Array, scratch: Uint8Array, gOff: number, rowBytes: number, S: number, R: number, toScratch: boolean): void {
  for (let r = 0, p = gOff, q = 0; r < R; r++, p += rowBytes, q += S) {
    if (toScratch) for (let k = 0; k < S; k++) scratch[q + k] = rows[p + k]!;
    else for (let k = 0; k < S; k++) rows[p + k] = scratch[q + k]!;
  }
}

function walkPlane(plane: ColumnPlane, a: BlockAnatomy, c: number, rowBytes: number, R: number, units: number, o: number, mover: Mover): number {
  switch (plane) {
    case 'raw8':
    case 'raw16':
    case 'raw32': {
      const n = a.rawBytes;
      const p0 = a.rawOffset + c * n;
      for (let r = 0; r < R; r++, o += n) mover.bytes(o, p0 + r * rowBytes, n);
      return o;
    }
    case 'nibble': {
      // byte b of unit u: rows 32u + b (low nibble) and 32u + 16 + b (high nibble)
      const p0 = a.lowByte[c]!;
      const shift = a.lowShift[c]!;
      for (let u = 0; u < units; u++) for (let b = 0; b < 16; b++) mover.bits(o++, p0 + (32 * u + b) * rowBytes, 16 * rowBytes, 2, 4, shift);
      return o;
    }
    case 'bit': {
      // unit u is a little-endian u32: byte j holds rows 32u + 8j .. 32u + 8j + 7
      const p0 = a.highByte[c]!;
      const shift = a.highShift[c]!;
      for (let u = 0; u < units; u++) for (let j = 0; j < 4; j++) mover.bits(o++, p0 + (32 * u + 8 * j) * rowBytes, rowBytes, 8, 1, shift);
      return o;
    }
    case 'crumb': {
      // byte b of unit u holds rows 32u + 8k + b, k = 0..3
      const p0 = a.highByte[c]!;
      const shift = a.highShift[c]!;
      for (let u = 0; u < units; u++) for (let b = 0; b < 8; b++) mover.bits(o++, p0 + (32 * u + b) * rowBytes, 8 * rowBytes, 4, 2, shift);
      return o;
    }
  }
}

/**
 * Row layout -> column-block layout. `rows` holds the weight as ggml stores it
 * (n_out rows of n_in elements; a GGUF tensor of ne = [n_in, n_out]).
 */
export function columnBlocksFromRows(type: GGMLType, rows: Uint8Array, nIn: number, nOut: number, options: ColumnBlockOptions = {}): Uint8Array {
  const t = checkColumnBlocks(type, nIn, nOut, rows.length, options.name);
  const cb = output(t, nIn, nOut, options);
  const rowBytes = (nIn / t.groupSize) * t.blockBytes;
  const blocks = new Uint8Array(nOut * t.blockBytes);
  walk(t, blockAnatomy(type), nIn, nOut, {
    enter: (gOff) => moveGroup(rows, blocks, gOff, rowBytes, t.blockBytes, nOut, true),
    bytes(o, p, n) {
      for (let k = 0; k < n; k++) cb[o + k] = blocks[p + k]!;
    },
    bits(o, p, stride, count, width, shift) {
      const mask = (1 << width) - 1;
      let v = 0;
      for (let i = 0; i < count; i++) v |= ((blocks[p + i * stride]! >> shift) & mask) << (width * i);
      cb[o] = v;
    },
  });
  return cb;
}

/** Column-block layout -> row layout, bit for bit (the inverse of columnBlocksFromRows). */
export function rowsFromColumnBlocks(type: GGMLType, cb: Uint8Array, nIn: number, nOut: number, options: ColumnBlockOptions = {}): Uint8Array {
  const t = checkColumnBlocks(type, nIn, nOut, cb.length, options.name);
  const rows = output(t, nIn, nOut, options);
  const rowBytes = (nIn / t.groupSize) * t.blockBytes;
  const blocks = new Uint8Array(nOut * t.blockBytes);
  walk(t, blockAnatomy(type), nIn, nOut, {
    // plane bits are OR-ed into place: every bit of every block is written exactly once
    enter: () => blocks.fill(0),
    leave: (gOff) => moveGroup(rows, blocks, gOff, rowBytes, t.blockBytes, nOut, false),
    bytes(o, p, n) {
      for (let k = 0; k < n; k++) blocks[p + k] = cb[o + k]!;
    },
    bits(o, p, stride, count, width, shift) {
      const mask = (1 << width) - 1;
      const v = cb[o]!;
      for (let i = 0; i < count; i++) blocks[p + i * stride]! |= ((v >> (width * i)) & mask) << shift;
    },
  });
  return rows;
}
