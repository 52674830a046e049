/**
 * GGML tensor types and GGUF metadata value types, numbered exactly as in
 * ggml.h / gguf.h (the numbers are the on-disk ids).
 */
export enum GGMLType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
  Q2_0 = 42,
}

/** Per-type layout: `blockSize` elements are stored in `typeSize` bytes. */
export interface GGMLTypeTraits {
  readonly name: string;
  readonly blockSize: number;
  readonly typeSize: number;
}

const QK_K = 256;

/** Layout table (mirrors ggml's type_traits and gguf-py's GGML_QUANT_SIZES). */
export const GGML_TYPE_TRAITS: ReadonlyMap<GGMLType, GGMLTypeTraits> = new Map<GGMLType, GGMLTypeTraits>([
  [GGMLType.F32, { name: 'f32', blockSize: 1, typeSize: 4 }],
  [GGMLType.F16, { name: 'f16', blockSize: 1, typeSize: 2 }],
  [GGMLType.Q4_0, { name: 'q4_0', blockSize: 32, typeSize: 2 + 16 }],
  [GGMLType.Q4_1, { name: 'q4_1', blockSize: 32, typeSize: 2 + 2 + 16 }],
  [GGMLType.Q5_0, { name: 'q5_0', blockSize: 32, typeSize: 2 + 4 + 16 }],
  [GGMLType.Q5_1, { name: 'q5_1', blockSize: 32, typeSize: 2 + 2 + 4 + 16 }],
  [GGMLType.Q8_0, { name: 'q8_0', blockSize: 32, typeSize: 2 + 32 }],
  [GGMLType.Q8_1, { name: 'q8_1', blockSize: 32, typeSize: 4 + 4 + 32 }],
  [GGMLType.Q2_K, { name: 'q2_K', blockSize: QK_K, typeSize: 2 + 2 + QK_K / 16 + QK_K / 4 }],
  [GGMLType.Q3_K, { name: 'q3_K', blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 8 + 12 }],
  [GGMLType.Q4_K, { name: 'q4_K', blockSize: QK_K, typeSize: 2 + 2 + QK_K / 2 + 12 }],
  [GGMLType.Q5_K, { name: 'q5_K', blockSize: QK_K, typeSize: 2 + 2 + QK_K / 2 + QK_K / 8 + 12 }],
  [GGMLType.Q6_K, { name: 'q6_K', blockSize: QK_K, typeSize: 2 + QK_K / 2 + QK_K / 4 + QK_K / 16 }],
  [GGMLType.Q8_K, { name: 'q8_K', blockSize: QK_K, typeSize: 4 + QK_K + QK_K / 8 }],
  [GGMLType.IQ2_XXS, { name: 'iq2_xxs', blockSize: QK_K, typeSize: 2 + QK_K / 4 }],
  [GGMLType.IQ2_XS, { name: 'iq2_xs', blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 32 }],
  [GGMLType.IQ3_XXS, { name: 'iq3_xxs', blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 8 }],
  [GGMLType.IQ1_S, { name: 'iq1_s', blockSize: QK_K, typeSize: 2 + QK_K / 8 + QK_K / 16 }],
  [GGMLType.IQ4_NL, { name: 'iq4_nl', blockSize: 32, typeSize: 2 + 16 }],
  [GGMLType.IQ3_S, { name: 'iq3_s', blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4 }],
  [GGMLType.IQ2_S, { name: 'iq2_s', blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 16 }],
  [GGMLType.IQ4_XS, { name: 'iq4_xs', blockSize: QK_K, typeSize: 2 + 2 + QK_K / 2 + QK_K / 64 }],
  [GGMLType.I8, { name: 'i8', blockSize: 1, typeSize: 1 }],
  [GGMLType.I16, { name: 'i16', blockSize: 1, typeSize: 2 }],
  [GGMLType.I32, { name: 'i32', blockSize: 1, typeSize: 4 }],
  [GGMLType.I64, { name: 'i64', blockSize: 1, typeSize: 8 }],
  [GGMLType.F64, { name: 'f64', blockSize: 1, typeSize: 8 }],
  [GGMLType.IQ1_M, { name: 'iq1_m', blockSize: QK_K, typeSize: QK_K / 8 + QK_K / 16 + QK_K / 32 }],
  [GGMLType.BF16, { name: 'bf16', blockSize: 1, typeSize: 2 }],
  [GGMLType.TQ1_0, { name: 'tq1_0', blockSize: QK_K, typeSize: 2 + 4 * 13 }],
  [GGMLType.TQ2_0, { name: 'tq2_0', blockSize: QK_K, typeSize: 2 + 64 }],
  [GGMLType.MXFP4, { name: 'mxfp4', blockSize: 32, typeSize: 1 + 16 }],
  [GGMLType.NVFP4, { name: 'nvfp4', blockSize: 64, typeSize: 4 + 32 }],
  [GGMLType.Q1_0, { name: 'q1_0', blockSize: 128, typeSize: 2 + 16 }],
  [GGMLType.Q2_0, { name: 'q2_0', blockSize: 64, typeSize: 2 + 16 }],
]);

export function isKnownGGMLType(id: number): id is GGMLType {
  return GGML_TYPE_TRAITS.has(id as GGMLType);
}

export function ggmlTypeTraits(type: GGMLType): GGMLTypeTraits {
  const traits = GGML_TYPE_TRAITS.get(type);
  if (!traits) throw new RangeError(`unknown ggml type id ${type}`);
  return traits;
}

export function ggmlTypeName(type: GGMLType): string {
  return GGML_TYPE_TRAITS.get(type)?.name ?? `type#${type}`;
}

/** Parse a lowercase type name (`q4_0`, `f16`, `q4_K`...) case-insensitively. */
export function ggmlTypeFromName(name: string): GGMLType | undefined {
  const lower = name.toLowerCase();
  for (const [type, traits] of GGML_TYPE_TRAITS) if (traits.name.toLowerCase() === lower) return type;
  return undefined;
}

/**
 * Bytes of one row of `rowLength` elements. Throws when the row length is not a
 * multiple of the type's block size (ggml cannot store such a row).
 */
export function ggmlRowBytes(type: GGMLType, rowLength: number): number {
  const { blockSize, typeSize } = ggmlTypeTraits(type);
  if (rowLength % blockSize !== 0) {
    throw new RangeError(`row of ${rowLength} elements is not a multiple of the ${ggmlTypeName(type)} block size ${blockSize}`);
  }
  return (rowLength / blockSize) * typeSize;
}

/** GGUF metadata value types (gguf.h numbering). */
export enum GGUFValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** Short names of the value types (`u32`, `f32`, `string`, `array`, ...), as messages and the IR's text form print them. */
export const GGUF_VALUE_TYPE_NAME: Readonly<Record<GGUFValueType, string>> = {
  [GGUFValueType.UINT8]: 'u8',
  [GGUFValueType.INT8]: 'i8',
  [GGUFValueType.UINT16]: 'u16',
  [GGUFValueType.INT16]: 'i16',
  [GGUFValueType.UINT32]: 'u32',
  [GGUFValueType.INT32]: 'i32',
  [GGUFValueType.FLOAT32]: 'f32',
  [GGUFValueType.BOOL]: 'bool',
  [GGUFValueType.STRING]: 'string',
  [GGUFValueType.ARRAY]: 'array',
  [GGUFValueType.UINT64]: 'u64',
  [GGUFValueType.INT64]: 'i64',
  [GGUFValueType.FLOAT64]: 'f64',
};
