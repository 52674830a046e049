import { GGUFError, type GGUFErrorCode } from './errors.ts';
import type { GGUFLimits } from './limits.ts';
import { TYPED_ARRAY_OF, isKnownValueType, isTypedArrayItemType, valueTypeName, type GGUFValue } from './metadata.ts';
import { GGUFValueType } from './types.ts';

const INTEGER_RANGES = new Map<GGUFValueType, readonly [number, number]>([
  [GGUFValueType.UINT8, [0, 0xff]],
  [GGUFValueType.INT8, [-0x80, 0x7f]],
  [GGUFValueType.UINT16, [0, 0xffff]],
  [GGUFValueType.INT16, [-0x8000, 0x7fff]],
  [GGUFValueType.UINT32, [0, 0xffffffff]],
  [GGUFValueType.INT32, [-0x80000000, 0x7fffffff]],
]);
const BIGINT_RANGES = new Map<GGUFValueType, readonly [bigint, bigint]>([
  [GGUFValueType.UINT64, [0n, 2n ** 64n - 1n]],
  [GGUFValueType.INT64, [-(2n ** 63n), 2n ** 63n - 1n]],
]);

/** A lone UTF-16 surrogate would be written as U+FFFD and not read back as the same string. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Check that a metadata value (built by hand or by another stage) is
 * encodable exactly and within the reader's limits, so writeGGUF never writes
 * something it would not read back identically. Throws GGUF_INVALID_VALUE or
 * GGUF_LIMIT_EXCEEDED naming the key.
 */
export function checkValue(value: GGUFValue, key: string, path: string, limits: GGUFLimits, depth = 0): void {
  const fail = (code: GGUFErrorCode, what: string, extra: Record<string, unknown> = {}): never => {
    throw new GGUFError(code, `${path}: metadata key '${key}': ${what}`, { path, key, ...extra });
  };
  const v = value as { type: unknown; value?: unknown; itemType?: unknown; items?: unknown };
  if (typeof v !== 'object' || v === null || typeof v.type !== 'number' || !isKnownValueType(v.type)) {
    fail('GGUF_INVALID_VALUE', `value type ${String(v?.type)} is not a GGUF value type`);
  }
  const type = v.type as GGUFValueType;

  const intRange = INTEGER_RANGES.get(type);
  if (intRange) {
    if (!Number.isInteger(v.value) || (v.value as number) < intRange[0] || (v.value as number) > intRange[1]) {
      fail('GGUF_INVALID_VALUE', `${String(v.value)} is not a ${valueTypeName(type)} (integer in ${intRange[0]}..${intRange[1]})`);
    }
    return;
  }
  const bigRange = BIGINT_RANGES.get(type);
  if (bigRange) {
    if (typeof v.value !== 'bigint' || v.value < bigRange[0] || v.value > bigRange[1]) {
      fail('GGUF_INVALID_VALUE', `${String(v.value)} is not a ${valueTypeName(type)} (bigint in ${bigRange[0]}..${bigRange[1]})`);
    }
    return;
  }
  switch (type) {
    case GGUFValueType.FLOAT32:
    case GGUFValueType.FLOAT64:
      if (typeof v.value !== 'number') fail('GGUF_INVALID_VALUE', `${String(v.value)} is not a number`);
      return;
    case GGUFValueType.BOOL:
      if (typeof v.value !== 'boolean') fail('GGUF_INVALID_VALUE', `${String(v.value)} is not a boolean`);
      return;
    case GGUFValueType.STRING:
      checkString(v.value, limits, fail);
      return;
    case GGUFValueType.ARRAY:
      break;
  }

  if (depth + 1 > limits.maxArrayDepth) fail('GGUF_LIMIT_EXCEEDED', `arrays nested deeper than maxArrayDepth = ${limits.maxArrayDepth}`, { limit: 'maxArrayDepth' });
  const itemType = v.itemType;
  if (typeof itemType !== 'number' || !isKnownValueType(itemType)) fail('GGUF_INVALID_VALUE', `array item type ${String(itemType)} is not a GGUF value type`);
  const items = v.items as ArrayLike<unknown>;
  const typed = isTypedArrayItemType(itemType as GGUFValueType);
  if (typed ? !(items instanceof TYPED_ARRAY_OF[itemType as keyof typeof TYPED_ARRAY_OF]) : !Array.isArray(items)) {
    const expected = typed ? TYPED_ARRAY_OF[itemType as keyof typeof TYPED_ARRAY_OF].name : 'an Array';
    fail('GGUF_INVALID_VALUE', `items of an ARRAY of ${valueTypeName(itemType as number)} must be ${expected}`);
  }
  if (items.length > limits.maxArrayLength) {
    fail('GGUF_LIMIT_EXCEEDED', `array of ${items.length} items is above maxArrayLength = ${limits.maxArrayLength}`, { limit: 'maxArrayLength' });
  }
  if (typed) return;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (itemType === GGUFValueType.STRING) checkString(item, limits, fail);
    else if (itemType === GGUFValueType.BOOL) {
      if (typeof item !== 'boolean') fail('GGUF_INVALID_VALUE', `item ${i} (${String(item)}) is not a boolean`);
    } else if (itemType === GGUFValueType.ARRAY) {
      if ((item as { type?: unknown } | null)?.type !== GGUFValueType.ARRAY) fail('GGUF_INVALID_VALUE', `item ${i} of an ARRAY of ARRAY is not an array value`);
      checkValue(item as GGUFValue, key, path, limits, depth + 1);
    }
  }
}

function checkString(s: unknown, limits: GGUFLimits, fail: (code: GGUFErrorCode, what: string, extra?: Record<string, unknown>) => never): void {
  if (typeof s !== 'string') fail('GGUF_INVALID_VALUE', `${String(s)} is not a string`);
  const str = s as string;
  if (LONE_SURROGATE.test(str)) fail('GGUF_INVALID_VALUE', `string ${JSON.stringify(str.slice(0, 40))} contains a lone UTF-16 surrogate (not encodable as UTF-8)`);
  // UTF-8 never takes more than 3 bytes per UTF-16 unit: measure only when it might matter.
  if (str.length * 3 > limits.maxStringBytes && Buffer.byteLength(str, 'utf8') > limits.maxStringBytes) {
    fail('GGUF_LIMIT_EXCEEDED', `string of ${Buffer.byteLength(str, 'utf8')} bytes is above maxStringBytes = ${limits.maxStringBytes}`, { limit: 'maxStringBytes' });
  }
}
