/**
 * Value types of the IR: a dtype and a shape.
 *
 * Shape convention (one for the whole IR): dimensions are listed outermost
 * first and the LAST dimension is contiguous, as in numpy / PyTorch. An
 * activation is `f32[T,576]` (T tokens of 576 features); a linear weight is
 * `[n_out, n_in]` (n_out rows of n_in, like `nn.Linear.weight`); the token
 * embedding is `[n_vocab, n_embd]`. A GGUF tensor's `ne` is this shape
 * reversed (`ne0` innermost): use `shapeFromGgmlNe` / `ggmlNeFromShape` at the
 * file boundary and nowhere else.
 */

import { IrErrorCode, irError } from './errors.ts';

/** A dimension: a known size, or a symbol bound at run time (`T`, the token count). */
export type Dim = number | string;
export type Shape = readonly Dim[];

export type DTypeKind = 'float' | 'int' | 'quantized';

export interface DTypeInfo {
  readonly kind: DTypeKind;
  /** Elements per storage block: the last dimension of a tensor must be a multiple of it. */
  readonly blockSize: number;
}

const QK_K = 256;

/**
 * Every dtype the IR knows, in one table: compute types of values (f32, f16,
 * bf16, i32 ...) and the ggml storage types of weights, spelled as ggml spells
 * them (`q4_K`, not `Q4_K`). Byte layouts belong to @chess/gguf, not here.
 */
export const DTYPES = {
  f64: { kind: 'float', blockSize: 1 },
  f32: { kind: 'float', blockSize: 1 },
  f16: { kind: 'float', blockSize: 1 },
  bf16: { kind: 'float', blockSize: 1 },
  i8: { kind: 'int', blockSize: 1 },
  i16: { kind: 'int', blockSize: 1 },
  i32: { kind: 'int', blockSize: 1 },
  i64: { kind: 'int', blockSize: 1 },
  q4_0: { kind: 'quantized', blockSize: 32 },
  q4_1: { kind: 'quantized', blockSize: 32 },
  q5_0: { kind: 'quantized', blockSize: 32 },
  q5_1: { kind: 'quantized', blockSize: 32 },
  q8_0: { kind: 'quantized', blockSize: 32 },
  q8_1: { kind: 'quantized', blockSize: 32 },
  q2_K: { kind: 'quantized', blockSize: QK_K },
  q3_K: { kind: 'quantized', blockSize: QK_K },
  q4_K: { kind: 'quantized', blockSize: QK_K },
  q5_K: { kind: 'quantized', blockSize: QK_K },
  q6_K: { kind: 'quantized', blockSize: QK_K },
  q8_K: { kind: 'quantized', blockSize: QK_K },
  iq2_xxs: { kind: 'quantized', blockSize: QK_K },
  iq2_xs: { kind: 'quantized', blockSize: QK_K },
  iq2_s: { kind: 'quantized', blockSize: QK_K },
  iq3_xxs: { kind: 'quantized', blockSize: QK_K },
  iq3_s: { kind: 'quantized', blockSize: QK_K },
  iq1_s: { kind: 'quantized', blockSize: QK_K },
  iq1_m: { kind: 'quantized', blockSize: QK_K },
  iq4_nl: { kind: 'quantized', blockSize: 32 },
  iq4_xs: { kind: 'quantized', blockSize: QK_K },
  tq1_0: { kind: 'quantized', blockSize: QK_K },
  tq2_0: { kind: 'quantized', blockSize: QK_K },
  mxfp4: { kind: 'quantized', blockSize: 32 },
} as const satisfies Record<string, DTypeInfo>;

export type DType = keyof typeof DTYPES;

export function isDType(name: string): name is DType {
  return Object.hasOwn(DTYPES, name);
}

export function dtypeInfo(dtype: DType): DTypeInfo {
  return DTYPES[dtype];
}

export interface TensorType {
  readonly dtype: DType;
  readonly shape: Shape;
}

export function tensorType(dtype: DType, shape: Shape): TensorType {
  return { dtype, shape: [...shape] };
}

export function isSymbolicDim(dim: Dim): dim is string {
  return typeof dim === 'string';
}

/** Two dims agree when both are the same size or the same symbol (no size is assumed for a symbol). */
export function dimsEqual(a: Dim, b: Dim): boolean {
  return a === b;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => dimsEqual(d, b[i] as Dim));
}

export function typesEqual(a: TensorType, b: TensorType): boolean {
  return a.dtype === b.dtype && shapesEqual(a.shape, b.shape);
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(',')}]`;
}

/** `f32[T,576]`: the spelling used by the printer, the parser and every error message. */
export function formatType(type: TensorType): string {
  return `${type.dtype}${formatShape(type.shape)}`;
}

/** Number of elements once every symbol is bound; throws on an unbound symbol. */
export function numElements(shape: Shape, bindings: Readonly<Record<string, number>> = {}): number {
  let n = 1;
  for (const d of shape) n *= resolveDim(d, bindings);
  return n;
}

export function resolveDim(dim: Dim, bindings: Readonly<Record<string, number>>): number {
  if (typeof dim === 'number') return dim;
  const v = bindings[dim];
  if (v === undefined) {
    throw irError(IrErrorCode.SHAPE_UNBOUND_DIM, `symbolic dimension ${dim} has no value (bound: ${JSON.stringify(bindings)})`, { dim });
  }
  return v;
}

/** GGUF `ne` (innermost first) to an IR shape (outermost first). */
export function shapeFromGgmlNe(ne: readonly (number | bigint)[]): number[] {
  return ne.map(Number).reverse();
}

/** IR shape to GGUF `ne`; every dim must be known. */
export function ggmlNeFromShape(shape: Shape): number[] {
  return shape
    .map((d) => {
      if (typeof d !== 'number') {
        throw irError(IrErrorCode.SHAPE_UNBOUND_DIM, `cannot convert shape ${formatShape(shape)} to ggml ne: dimension ${d} is symbolic`, { dim: d });
      }
      return d;
    })
    .reverse();
}
