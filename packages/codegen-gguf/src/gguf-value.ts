import { ChessError } from '@chess/core';
import { GGUFValueType, TYPED_ARRAY_OF, ggufValue, type GGUFValue } from '@chess/gguf';
import type { MetaEntry, MetaLiteral } from '@chess/ir';

const SCALAR_TYPES: Readonly<Record<string, GGUFValueType>> = {
  u8: GGUFValueType.UINT8,
  i8: GGUFValueType.INT8,
  u16: GGUFValueType.UINT16,
  i16: GGUFValueType.INT16,
  u32: GGUFValueType.UINT32,
  i32: GGUFValueType.INT32,
  f32: GGUFValueType.FLOAT32,
  bool: GGUFValueType.BOOL,
  string: GGUFValueType.STRING,
  u64: GGUFValueType.UINT64,
  i64: GGUFValueType.INT64,
  f64: GGUFValueType.FLOAT64,
};


function bad(entry: MetaEntry, expected: string): never {
  throw new ChessError('CODEGEN_BAD_META', `metadata '${entry.key}' of type '${entry.type}': expected ${expected}`, { key: entry.key, type: entry.type });
}

/**
 * The GGUF value of an IR metadata entry: the inverse of the importer's
 * mapping, so a module imported from GGUF is emitted with every key's exact
 * on-disk type. Entries added by passes use the same type names.
 */
export function ggufValueFromMeta(entry: MetaEntry): GGUFValue {
  return convert(entry, entry.type, entry.value);
}

function convert(entry: MetaEntry, type: string, value: MetaLiteral): GGUFValue {
  const scalar = SCALAR_TYPES[type];
  if (scalar !== undefined) return scalarValue(entry, scalar, value);
  const match = /^array<(.*)>$/.exec(type);
  if (!match) return bad(entry, `one of ${Object.keys(SCALAR_TYPES).join(', ')} or array<...>`);
  const itemType = match[1]!;
  if (!Array.isArray(value) && !ArrayBuffer.isView(value)) return bad(entry, 'an array value');
  const items = value as ArrayLike<MetaLiteral>;
  if (itemType === 'array' || itemType.startsWith('array<')) {
    const nested = Array.from(items, (item) => convert(entry, itemType === 'array' ? 'array<u8>' : itemType, item));
    return ggufValue.array(GGUFValueType.ARRAY, nested as never);
  }
  const item = SCALAR_TYPES[itemType];
  if (item === undefined) return bad(entry, `a known array item type, not '${itemType}'`);
  if (item === GGUFValueType.STRING) {
    return ggufValue.array(GGUFValueType.STRING, Array.from(items, (s) => (typeof s === 'string' ? s : bad(entry, 'string items'))));
  }
  if (item === GGUFValueType.BOOL) {
    return ggufValue.array(GGUFValueType.BOOL, Array.from(items, (b) => (typeof b === 'boolean' ? b : bad(entry, 'boolean items'))));
  }
  const Ctor = TYPED_ARRAY_OF[item as keyof typeof TYPED_ARRAY_OF] as unknown as { from(items: ArrayLike<unknown>): ArrayBufferView; new (n: number): ArrayBufferView };
  const typed = value instanceof (Ctor as unknown as typeof Uint8Array) ? value : Ctor.from(items);
  return { type: GGUFValueType.ARRAY, itemType: item, items: typed } as unknown as GGUFValue;
}

function scalarValue(entry: MetaEntry, type: GGUFValueType, value: MetaLiteral): GGUFValue {
  switch (type) {
    case GGUFValueType.STRING:
      return typeof value === 'string' ? ggufValue.string(value) : bad(entry, 'a string');
    case GGUFValueType.BOOL:
      return typeof value === 'boolean' ? ggufValue.bool(value) : bad(entry, 'a boolean');
    case GGUFValueType.UINT64:
    case GGUFValueType.INT64:
      if (typeof value !== 'bigint' && typeof value !== 'number') return bad(entry, 'an integer');
      return type === GGUFValueType.UINT64 ? ggufValue.u64(value) : ggufValue.i64(value);
    default:
      if (typeof value !== 'number') return bad(entry, 'a number');
      return { type, value } as GGUFValue;
  }
}
