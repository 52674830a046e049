import { HOST_IS_BIG_ENDIAN, swapInPlace } from './endian.ts';
import { GGUF_MAGIC } from './format.ts';
import type { GGUFValue } from './metadata.ts';
import { alignUp } from './tensor.ts';
import { GGUFValueType } from './types.ts';

/**
 * Growable little-endian encoder of GGUF primitives. It does not validate
 * (writeGGUF does that first), so tests use it to build malformed files byte
 * by byte: wrong counts, bad types, invalid UTF-8, misplaced offsets...
 */
export class GGUFByteWriter {
  private buf: Buffer;
  private len = 0;

  constructor(initialBytes = 64 << 10) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Bytes written so far (the offset of the next byte). */
  get length(): number {
    return this.len;
  }

  /** The encoded bytes: a plain Uint8Array view (so `.slice()` copies), valid until the next write. */
  bytes(): Uint8Array {
    return new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.len);
  }

  u8(v: number): this {
    this.reserve(1).writeUInt8(v, this.len);
    this.len += 1;
    return this;
  }
  i8(v: number): this {
    this.reserve(1).writeInt8(v, this.len);
    this.len += 1;
    return this;
  }
  u16(v: number): this {
    this.reserve(2).writeUInt16LE(v, this.len);
    this.len += 2;
    return this;
  }
  i16(v: number): this {
    this.reserve(2).writeInt16LE(v, this.len);
    this.len += 2;
    return this;
  }
  u32(v: number): this {
    this.reserve(4).writeUInt32LE(v, this.len);
    this.len += 4;
    return this;
  }
  i32(v: number): this {
    this.reserve(4).writeInt32LE(v, this.len);
    this.len += 4;
    return this;
  }
  f32(v: number): this {
    this.reserve(4).writeFloatLE(v, this.len);
    this.len += 4;
    return this;
  }
  f64(v: number): this {
    this.reserve(8).writeDoubleLE(v, this.len);
    this.len += 8;
    return this;
  }
  u64(v: bigint | number): this {
    this.reserve(8).writeBigUInt64LE(BigInt(v), this.len);
    this.len += 8;
    return this;
  }
  i64(v: bigint | number): this {
    this.reserve(8).writeBigInt64LE(BigInt(v), this.len);
    this.len += 8;
    return this;
  }
  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  raw(bytes: Uint8Array): this {
    this.reserve(bytes.byteLength).set(bytes, this.len);
    this.len += bytes.byteLength;
    return this;
  }

  /** A GGUF string: u64 byte length, then UTF-8 bytes. */
  string(s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    this.u64(n);
    this.reserve(n).write(s, this.len, n, 'utf8');
    this.len += n;
    return this;
  }

  /** A GGUF string from raw bytes (e.g. invalid UTF-8 in tests). */
  rawString(bytes: Uint8Array): this {
    return this.u64(bytes.byteLength).raw(bytes);
  }

  /** magic, version, tensor count, key/value count. */
  header(version: number, tensorCount: bigint | number, kvCount: bigint | number): this {
    return this.u32(GGUF_MAGIC).u32(version).u64(tensorCount).u64(kvCount);
  }

  /** One metadata record: key, value type, value. */
  kv(key: string, value: GGUFValue): this {
    return this.string(key).u32(value.type).value(value);
  }

  /** A value's payload (no leading type; arrays start with their item type and length). */
  value(v: GGUFValue): this {
    switch (v.type) {
      case GGUFValueType.UINT8:
        return this.u8(v.value);
      case GGUFValueType.INT8:
        return this.i8(v.value);
      case GGUFValueType.UINT16:
        return this.u16(v.value);
      case GGUFValueType.INT16:
        return this.i16(v.value);
      case GGUFValueType.UINT32:
        return this.u32(v.value);
      case GGUFValueType.INT32:
        return this.i32(v.value);
      case GGUFValueType.FLOAT32:
        return this.f32(v.value);
      case GGUFValueType.FLOAT64:
        return this.f64(v.value);
      case GGUFValueType.UINT64:
        return this.u64(v.value);
      case GGUFValueType.INT64:
        return this.i64(v.value);
      case GGUFValueType.BOOL:
        return this.bool(v.value);
      case GGUFValueType.STRING:
        return this.string(v.value);
      case GGUFValueType.ARRAY:
        this.u32(v.itemType).u64(v.items.length);
        if (ArrayBuffer.isView(v.items)) return this.typedItems(v.items);
        for (const item of v.items as readonly (string | boolean | GGUFValue)[]) {
          if (typeof item === 'string') this.string(item);
          else if (typeof item === 'boolean') this.bool(item);
          else this.value(item);
        }
        return this;
    }
  }

  /** One tensor-info record; `shape` in ggml order, `offset` relative to the data section. */
  tensorInfo(name: string, shape: readonly (number | bigint)[], type: number, offset: bigint | number): this {
    this.string(name).u32(shape.length);
    for (const dim of shape) this.u64(dim);
    return this.u32(type).u64(offset);
  }

  /** Zero bytes up to the next multiple of `alignment`. */
  padTo(alignment: number): this {
    const n = alignUp(this.len, alignment) - this.len;
    this.reserve(n).fill(0, this.len, this.len + n);
    this.len += n;
    return this;
  }

  private typedItems(items: ArrayBufferView): this {
    const bytes = new Uint8Array(items.buffer, items.byteOffset, items.byteLength);
    this.raw(bytes);
    if (HOST_IS_BIG_ENDIAN) {
      const width = (items as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
      swapInPlace(this.buf.subarray(this.len - bytes.byteLength, this.len), width);
    }
    return this;
  }

  /** Make room for `n` more bytes; returns the (possibly new) buffer. */
  private reserve(n: number): Buffer {
    if (this.len + n > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.len + n, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    return this.buf;
  }
}
