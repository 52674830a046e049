import { GGML_TYPE_TRAITS, type GGMLType } from './types.ts';

/** One entry of the tensor table, with derived sizes and absolute position. */
export interface GGUFTensorInfo {
  readonly name: string;
  /** ggml `ne` order: innermost (row length) first. */
  readonly shape: number[];
  readonly type: GGMLType;
  /** Offset relative to the data section, as stored in the file. */
  readonly offset: number;
  /** Absolute offset of the first byte of the tensor's data in the file. */
  readonly fileOffset: number;
  readonly byteLength: number;
  readonly elementCount: number;
}

/** Round `value` up to a multiple of `alignment` (a power of two, checked by callers). */
export function alignUp(value: number, alignment: number): number {
  const rest = value % alignment;
  return rest === 0 ? value : value + alignment - rest;
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0 && n <= 2 ** 31;
}

/**
 * Bytes of a tensor of `elementCount` elements whose rows are whole blocks
 * (callers have checked shape[0] % blockSize === 0 and the element limit, so
 * the result is an exact integer below 2^53).
 */
export function tensorByteLength(type: GGMLType, elementCount: number): number {
  const traits = GGML_TYPE_TRAITS.get(type);
  if (!traits) throw new RangeError(`unknown ggml type id ${type}`);
  return (elementCount / traits.blockSize) * traits.typeSize;
}

export function elementCountOf(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}
