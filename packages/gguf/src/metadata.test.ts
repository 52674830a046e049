import { describe, expect, it } from 'vitest';
import { GGUFByteWriter } from './byte-writer.ts';
import { GGUFError } from './errors.ts';
import { parseGGUFHeader } from './header.ts';
import { GGUFMetadata, ggufValue as v } from './metadata.ts';
import { GGUFValueType } from './types.ts';

function thrown(f: () => unknown): GGUFError {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(GGUFError);
    return error as GGUFError;
  }
  throw new Error('expected a GGUFError');
}

describe('GGUFMetadata', () => {
  const metadata = GGUFMetadata.from(
    [
      ['name', v.string('x')],
      ['u64.small', v.u64(42n)],
      ['u64.big', v.u64(2n ** 60n)],
      ['i8', v.i8(-3)],
      ['f32', v.f32(0.5)],
      ['flag', v.bool(true)],
      ['ids', v.array(GGUFValueType.UINT32, new Uint32Array([1, 2]))],
    ],
    'model.gguf',
  );

  it('keeps insertion order, and set() on an existing key keeps its position', () => {
    const copy = GGUFMetadata.from(metadata);
    copy.set('name', v.string('y'));
    copy.set('new', v.u8(1));
    expect([...copy.keys()]).toEqual(['name', 'u64.small', 'u64.big', 'i8', 'f32', 'flag', 'ids', 'new']);
  });

  it('converts numbers only when exact', () => {
    expect(metadata.getNumber('u64.small')).toBe(42);
    expect(metadata.getNumber('i8')).toBe(-3);
    expect(metadata.getNumber('f32')).toBe(0.5);
    expect(metadata.getBigInt('i8')).toBe(-3n);
    expect(metadata.getBigInt('u64.big')).toBe(2n ** 60n);
    expect(thrown(() => metadata.getNumber('u64.big')).code).toBe('GGUF_VALUE_OUT_OF_RANGE');
    expect(thrown(() => metadata.getBigInt('f32')).code).toBe('GGUF_WRONG_VALUE_TYPE');
  });

  it('names the key, the file and the types on a wrong type or missing key', () => {
    const wrong = thrown(() => metadata.getBoolean('name'));
    expect(wrong.message).toBe("model.gguf: metadata key 'name': expected BOOL, found STRING");
    expect(wrong.details).toMatchObject({ path: 'model.gguf', key: 'name', expected: 'BOOL', actual: 'STRING' });
    expect(thrown(() => metadata.getArray('ids', GGUFValueType.INT32)).message).toContain('expected an ARRAY of INT32, found an ARRAY of UINT32');
    expect(thrown(() => metadata.getString('absent')).message).toBe("model.gguf: metadata key 'absent' is missing");
    expect(metadata.getArray('ids', GGUFValueType.UINT32).items).toEqual(new Uint32Array([1, 2]));
  });

  it('carries byte offsets of parsed keys into getter errors', () => {
    const bytes = new GGUFByteWriter().header(3, 0, 2).kv('a', v.u8(1)).kv('b', v.string('s')).bytes();
    const { metadata: parsed } = parseGGUFHeader(bytes, { path: 'mem.gguf' });
    expect(parsed.keyOffsets.get('b')).toBe(24 + 8 + 1 + 4 + 1);
    const error = thrown(() => parsed.getNumber('b'));
    expect(error.details).toMatchObject({ path: 'mem.gguf', offset: 38, key: 'b' });
    expect(error.message).toMatch(/^mem\.gguf: at byte 38: metadata key 'b'/);
    parsed.delete('b');
    expect(parsed.keyOffsets.has('b')).toBe(false);
  });
});

describe('parseGGUFHeader (in memory)', () => {
  it('reports errors at the same offsets as openGGUF', () => {
    const bytes = new GGUFByteWriter().header(3, 0, 1).string('k').u32(99).bytes();
    const error = thrown(() => parseGGUFHeader(bytes));
    expect(error.details).toMatchObject({ path: '<memory>', offset: 33, valueType: 99 });
    expect(error.code).toBe('GGUF_UNKNOWN_VALUE_TYPE');
  });
});
