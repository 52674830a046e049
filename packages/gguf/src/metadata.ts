import { GGUFError } from './errors.ts';
import { GGUFValueType } from './types.ts';

/** JS representation of each scalar value type; 64-bit integers stay exact as bigint. */
interface ScalarValueOf {
  [GGUFValueType.UINT8]: number;
  [GGUFValueType.INT8]: number;
  [GGUFValueType.UINT16]: number;
  [GGUFValueType.INT16]: number;
  [GGUFValueType.UINT32]: number;
  [GGUFValueType.INT32]: number;
  [GGUFValueType.FLOAT32]: number;
  [GGUFValueType.FLOAT64]: number;
  [GGUFValueType.BOOL]: boolean;
  [GGUFValueType.STRING]: string;
  [GGUFValueType.UINT64]: bigint;
  [GGUFValueType.INT64]: bigint;
}

/**
 * Array items: numeric items are typed arrays (a 49152-entry token-type array
 * is one allocation, not 49152 objects); strings, bools and nested arrays are
 * plain arrays. Each nested array carries its own item type, as on disk.
 */
interface ArrayItemsOf {
  [GGUFValueType.UINT8]: Uint8Array;
  [GGUFValueType.INT8]: Int8Array;
  [GGUFValueType.UINT16]: Uint16Array;
  [GGUFValueType.INT16]: Int16Array;
  [GGUFValueType.UINT32]: Uint32Array;
  [GGUFValueType.INT32]: Int32Array;
  [GGUFValueType.FLOAT32]: Float32Array;
  [GGUFValueType.FLOAT64]: Float64Array;
  [GGUFValueType.UINT64]: BigUint64Array;
  [GGUFValueType.INT64]: BigInt64Array;
  [GGUFValueType.BOOL]: boolean[];
  [GGUFValueType.STRING]: string[];
  [GGUFValueType.ARRAY]: GGUFArray[];
}

export type GGUFScalarType = keyof ScalarValueOf;
export type GGUFScalarOf<K extends GGUFScalarType> = { readonly type: K; readonly value: ScalarValueOf[K] };
export type GGUFScalar = { [K in GGUFScalarType]: GGUFScalarOf<K> }[GGUFScalarType];

export type GGUFArrayItemType = keyof ArrayItemsOf;
export type GGUFArrayOf<K extends GGUFArrayItemType> = {
  readonly type: GGUFValueType.ARRAY;
  readonly itemType: K;
  readonly items: ArrayItemsOf[K];
};
export type GGUFArray = { [K in GGUFArrayItemType]: GGUFArrayOf<K> }[GGUFArrayItemType];

/** A metadata value with its exact on-disk type, so read → write is byte-identical. */
export type GGUFValue = GGUFScalar | GGUFArray;

/** On-disk size of fixed-size value types (strings and arrays are variable). */
export const GGUF_FIXED_VALUE_SIZE: ReadonlyMap<GGUFValueType, number> = new Map([
  [GGUFValueType.UINT8, 1],
  [GGUFValueType.INT8, 1],
  [GGUFValueType.UINT16, 2],
  [GGUFValueType.INT16, 2],
  [GGUFValueType.UINT32, 4],
  [GGUFValueType.INT32, 4],
  [GGUFValueType.FLOAT32, 4],
  [GGUFValueType.BOOL, 1],
  [GGUFValueType.UINT64, 8],
  [GGUFValueType.INT64, 8],
  [GGUFValueType.FLOAT64, 8],
]);

export function isKnownValueType(id: number): id is GGUFValueType {
  return Number.isInteger(id) && id >= GGUFValueType.UINT8 && id <= GGUFValueType.FLOAT64;
}

export function valueTypeName(type: number): string {
  return GGUFValueType[type] ?? `value type #${type}`;
}

/** Typed-array constructor of each numeric array item type. */
export const TYPED_ARRAY_OF = {
  [GGUFValueType.UINT8]: Uint8Array,
  [GGUFValueType.INT8]: Int8Array,
  [GGUFValueType.UINT16]: Uint16Array,
  [GGUFValueType.INT16]: Int16Array,
  [GGUFValueType.UINT32]: Uint32Array,
  [GGUFValueType.INT32]: Int32Array,
  [GGUFValueType.FLOAT32]: Float32Array,
  [GGUFValueType.FLOAT64]: Float64Array,
  [GGUFValueType.UINT64]: BigUint64Array,
  [GGUFValueType.INT64]: BigInt64Array,
} as const;
export type GGUFTypedArrayItemType = keyof typeof TYPED_ARRAY_OF;

export function isTypedArrayItemType(type: GGUFValueType): type is GGUFTypedArrayItemType {
  return type in TYPED_ARRAY_OF;
}

/** Concise constructors for building metadata: `ggufValue.u32(576)`, `ggufValue.strings([...])`. */
export const ggufValue = {
  u8: (value: number): GGUFScalarOf<GGUFValueType.UINT8> => ({ type: GGUFValueType.UINT8, value }),
  i8: (value: number): GGUFScalarOf<GGUFValueType.INT8> => ({ type: GGUFValueType.INT8, value }),
  u16: (value: number): GGUFScalarOf<GGUFValueType.UINT16> => ({ type: GGUFValueType.UINT16, value }),
  i16: (value: number): GGUFScalarOf<GGUFValueType.INT16> => ({ type: GGUFValueType.INT16, value }),
  u32: (value: number): GGUFScalarOf<GGUFValueType.UINT32> => ({ type: GGUFValueType.UINT32, value }),
  i32: (value: number): GGUFScalarOf<GGUFValueType.INT32> => ({ type: GGUFValueType.INT32, value }),
  f32: (value: number): GGUFScalarOf<GGUFValueType.FLOAT32> => ({ type: GGUFValueType.FLOAT32, value }),
  f64: (value: number): GGUFScalarOf<GGUFValueType.FLOAT64> => ({ type: GGUFValueType.FLOAT64, value }),
  u64: (value: bigint | number): GGUFScalarOf<GGUFValueType.UINT64> => ({ type: GGUFValueType.UINT64, value: BigInt(value) }),
  i64: (value: bigint | number): GGUFScalarOf<GGUFValueType.INT64> => ({ type: GGUFValueType.INT64, value: BigInt(value) }),
  bool: (value: boolean): GGUFScalarOf<GGUFValueType.BOOL> => ({ type: GGUFValueType.BOOL, value }),
  string: (value: string): GGUFScalarOf<GGUFValueType.STRING> => ({ type: GGUFValueType.STRING, value }),
  array: <K extends GGUFArrayItemType>(itemType: K, items: ArrayItemsOf[K]): GGUFArrayOf<K> => ({
    type: GGUFValueType.ARRAY,
    itemType,
    items,
  }),
  strings: (items: string[]): GGUFArrayOf<GGUFValueType.STRING> => ggufValue.array(GGUFValueType.STRING, items),
};

type GGUFNumberValue = Extract<GGUFScalar, { value: number }>;

const NUMBER_TYPES = new Set<GGUFValueType>([
  GGUFValueType.UINT8,
  GGUFValueType.INT8,
  GGUFValueType.UINT16,
  GGUFValueType.INT16,
  GGUFValueType.UINT32,
  GGUFValueType.INT32,
  GGUFValueType.FLOAT32,
  GGUFValueType.FLOAT64,
]);

function isNumberValue(value: GGUFValue): value is GGUFNumberValue {
  return NUMBER_TYPES.has(value.type);
}

/**
 * Ordered key → value map (file order is preserved, and `set` on an existing
 * key keeps its position) with typed getters that fail with a ChessError
 * naming the key, the file and, for parsed files, the key's byte offset.
 */
export class GGUFMetadata extends Map<string, GGUFValue> {
  /** The file the metadata was read from, or a label such as '<memory>'. */
  source = '<memory>';
  /** Absolute offset of each key's record in `source` (filled by the reader). */
  readonly keyOffsets = new Map<string, number>();

  static from(entries: Iterable<readonly [string, GGUFValue]>, source = '<memory>'): GGUFMetadata {
    const metadata = new GGUFMetadata();
    metadata.source = source;
    for (const [key, value] of entries) metadata.set(key, value);
    return metadata;
  }

  override delete(key: string): boolean {
    this.keyOffsets.delete(key);
    return super.delete(key);
  }

  getValue(key: string): GGUFValue {
    const value = this.get(key);
    if (value === undefined) {
      throw new GGUFError('GGUF_MISSING_KEY', `${this.source}: metadata key '${key}' is missing`, { path: this.source, key });
    }
    return value;
  }

  getString(key: string): string {
    const value = this.getValue(key);
    if (value.type !== GGUFValueType.STRING) throw this.wrongType(key, value, 'STRING');
    return value.value;
  }

  getBoolean(key: string): boolean {
    const value = this.getValue(key);
    if (value.type !== GGUFValueType.BOOL) throw this.wrongType(key, value, 'BOOL');
    return value.value;
  }

  /** Any numeric scalar; 64-bit integers only when exactly representable as a JS number. */
  getNumber(key: string): number {
    const value = this.getValue(key);
    if (isNumberValue(value)) return value.value;
    if (value.type === GGUFValueType.UINT64 || value.type === GGUFValueType.INT64) {
      const n = Number(value.value);
      if (Number.isSafeInteger(n)) return n;
      throw new GGUFError(
        'GGUF_VALUE_OUT_OF_RANGE',
        `${this.where(key)}: ${valueTypeName(value.type)} value ${value.value} is not exactly representable as a JS number; use getBigInt`,
        this.details(key, { actual: value.value.toString() }),
      );
    }
    throw this.wrongType(key, value, 'a numeric scalar');
  }

  /** Any integer scalar, exactly. */
  getBigInt(key: string): bigint {
    const value = this.getValue(key);
    if (value.type === GGUFValueType.UINT64 || value.type === GGUFValueType.INT64) return value.value;
    if (isNumberValue(value) && value.type !== GGUFValueType.FLOAT32 && value.type !== GGUFValueType.FLOAT64) {
      return BigInt(value.value);
    }
    throw this.wrongType(key, value, 'an integer scalar');
  }

  /** An array; with `itemType`, also checks the item type and narrows the items' JS type. */
  getArray(key: string): GGUFArray;
  getArray<K extends GGUFArrayItemType>(key: string, itemType: K): GGUFArrayOf<K>;
  getArray(key: string, itemType?: GGUFArrayItemType): GGUFArray {
    const value = this.getValue(key);
    if (value.type !== GGUFValueType.ARRAY) throw this.wrongType(key, value, 'ARRAY');
    if (itemType !== undefined && value.itemType !== itemType) {
      throw new GGUFError(
        'GGUF_WRONG_VALUE_TYPE',
        `${this.where(key)}: expected an ARRAY of ${valueTypeName(itemType)}, found an ARRAY of ${valueTypeName(value.itemType)}`,
        this.details(key, { expected: `ARRAY<${valueTypeName(itemType)}>`, actual: `ARRAY<${valueTypeName(value.itemType)}>` }),
      );
    }
    return value;
  }

  private where(key: string): string {
    const offset = this.keyOffsets.get(key);
    return offset === undefined ? `${this.source}: metadata key '${key}'` : `${this.source}: at byte ${offset}: metadata key '${key}'`;
  }

  private details(key: string, extra: Record<string, unknown>) {
    const offset = this.keyOffsets.get(key);
    return { path: this.source, key, ...(offset === undefined ? {} : { offset }), ...extra };
  }

  private wrongType(key: string, value: GGUFValue, expected: string): GGUFError {
    const actual = value.type === GGUFValueType.ARRAY ? `ARRAY<${valueTypeName(value.itemType)}>` : valueTypeName(value.type);
    return new GGUFError('GGUF_WRONG_VALUE_TYPE', `${this.where(key)}: expected ${expected}, found ${actual}`, this.details(key, { expected, actual }));
  }
}
