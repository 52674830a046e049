import { GGUF_VALUE_TYPE_NAME, GGUFValueType, type GGUFValue } from '@chess/gguf';
import type { MetaEntry, MetaLiteral } from '@chess/ir';

/**
 * GGUF value types spelled as IR metadata type names. The IR keeps them
 * opaque; the GGUF code generator maps them back, so import -> emit preserves
 * every key's exact on-disk type.
 */
export const META_TYPE_NAME: Readonly<Record<GGUFValueType, string>> = GGUF_VALUE_TYPE_NAME;

/** `array<array<u8>>`-style name of a value's full type. */
export function metaTypeOf(value: GGUFValue): string {
  if (value.type !== GGUFValueType.ARRAY) return META_TYPE_NAME[value.type];
  if (value.itemType !== GGUFValueType.ARRAY) return `array<${META_TYPE_NAME[value.itemType]}>`;
  // Nested arrays: the item type of the first element (an empty outer array is `array<array>`).
  const first = value.items[0];
  return first ? `array<${metaTypeOf(first)}>` : 'array<array>';
}

function literalOf(value: GGUFValue): MetaLiteral {
  if (value.type !== GGUFValueType.ARRAY) return value.value;
  if (value.itemType === GGUFValueType.ARRAY) return value.items.map(literalOf);
  return value.items;
}

export function metaEntryFromGGUF(key: string, value: GGUFValue): MetaEntry {
  return { key, type: metaTypeOf(value), value: literalOf(value) };
}
