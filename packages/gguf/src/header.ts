import { ByteReader } from './byte-reader.ts';
import { HOST_IS_BIG_ENDIAN, swapInPlace } from './endian.ts';
import { GGUFError, positioned, type GGUFErrorCode } from './errors.ts';
import { GGUF_ALIGNMENT_KEY, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, SUPPORTED_GGUF_VERSIONS } from './format.ts';
import { resolveLimits, type GGUFLimits } from './limits.ts';
import {
  GGUF_FIXED_VALUE_SIZE,
  GGUFMetadata,
  TYPED_ARRAY_OF,
  isKnownValueType,
  isTypedArrayItemType,
  valueTypeName,
  type GGUFArray,
  type GGUFValue,
} from './metadata.ts';
import { alignUp, isPowerOfTwo, tensorByteLength, type GGUFTensorInfo } from './tensor.ts';
import { GGML_TYPE_TRAITS, GGUFValueType, ggmlTypeName, isKnownGGMLType } from './types.ts';

/** Smallest on-disk tensor-info record: empty name (8) + n_dims (4) + type (4) + offset (8). */
const MIN_TENSOR_INFO_BYTES = 24;
/** Smallest key/value record: key length (8) + value type (4) + 1-byte value (an empty key is rejected later, precisely). */
const MIN_KV_BYTES = 13;
/** Smallest array item of variable size: a string's length (8) / a nested array's type + length (12). */
const MIN_STRING_BYTES = 8;
const MIN_NESTED_ARRAY_BYTES = 12;

export interface GGUFHeader {
  readonly version: number;
  readonly alignment: number;
  /** Absolute offset of the data section (end of the header, padded to `alignment`). */
  readonly dataOffset: number;
  readonly metadata: GGUFMetadata;
  readonly tensors: GGUFTensorInfo[];
}

/**
 * Parse and validate the header of a GGUF file held entirely in memory
 * (`bytes` is the whole file; `path` only labels errors).
 */
export function parseGGUFHeader(bytes: Uint8Array, options: { path?: string; limits?: Partial<GGUFLimits> } = {}): GGUFHeader {
  const window = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The window is the whole file, so the parser never asks for more (NeedMoreBytes cannot escape).
  return parseHeader(window, window.length, options.path ?? '<memory>', resolveLimits(options.limits));
}

/**
 * Parse and validate a header from the first `window.length` bytes of a file
 * of `fileSize` bytes. Throws GGUFError, or NeedMoreBytes when the header
 * extends past the window (the caller re-reads a larger window).
 */
export function parseHeader(window: Buffer, fileSize: number, path: string, limits: GGUFLimits): GGUFHeader {
  return new HeaderParser(new ByteReader(window, fileSize, path), limits).parse();
}

class HeaderParser {
  private readonly path: string;
  private alignmentValueOffset = -1;

  constructor(
    private readonly r: ByteReader,
    private readonly limits: GGUFLimits,
  ) {
    this.path = r.path;
  }

  parse(): GGUFHeader {
    const magic = this.r.u32('magic');
    if (magic !== GGUF_MAGIC) {
      const bytes = [0, 1, 2, 3].map((i) => (magic >>> (8 * i)) & 0xff);
      this.fail('GGUF_BAD_MAGIC', 0, `magic is ${JSON.stringify(String.fromCharCode(...bytes))} (${hex(bytes)}), expected "GGUF"`);
    }
    const version = this.readVersion();
    const tensorCount = this.readCount('tensor count', 'maxTensorCount', MIN_TENSOR_INFO_BYTES);
    const kvCount = this.readCount('metadata key/value count', 'maxKvCount', MIN_KV_BYTES);
    const metadata = this.readMetadata(kvCount);
    const alignment = this.readAlignment(metadata);
    const infos = this.readTensorInfos(tensorCount, alignment);
    const dataOffset = alignUp(this.r.pos, alignment);
    const tensors = infos.map((info) => this.place(info, dataOffset));
    this.checkNoOverlap(infos, tensors);
    return { version, alignment, dataOffset, metadata, tensors };
  }

  private readVersion(): number {
    const version = this.r.u32('version');
    if (SUPPORTED_GGUF_VERSIONS.includes(version)) return version;
    // A big-endian file (allowed since v3) has its version byte-swapped: 3 reads as 0x03000000.
    if ((version & 0xffff) === 0 && SUPPORTED_GGUF_VERSIONS.includes(swap32(version))) {
      this.fail('GGUF_UNSUPPORTED_BYTE_ORDER', 4, `version reads as ${version}: a big-endian GGUF v${swap32(version)}, only little-endian files are supported`, {
        version: swap32(version),
      });
    }
    const why = version === 1 ? ' (v1 used 32-bit counts and is unsupported, as in ggml)' : '';
    this.fail('GGUF_UNSUPPORTED_VERSION', 4, `unsupported GGUF version ${version}${why}, expected one of ${SUPPORTED_GGUF_VERSIONS.join(', ')}`, {
      version,
    });
  }

  /** A u64 count, checked against its limit and against the bytes left (at `minBytes` per item). */
  private readCount(what: string, limit: keyof GGUFLimits, minBytes: number): number {
    const at = this.r.pos;
    const count = this.r.u64(what);
    this.checkLimit(at, what, count, limit);
    this.checkFits(at, what, count, minBytes);
    return count;
  }

  private readMetadata(kvCount: number): GGUFMetadata {
    const metadata = new GGUFMetadata();
    metadata.source = this.path;
    for (let i = 0; i < kvCount; i++) {
      const at = this.r.pos;
      const key = this.readString('metadata key');
      if (key.length === 0) this.fail('GGUF_EMPTY_KEY', at, `metadata key #${i} is empty`, { index: i });
      if (metadata.has(key)) {
        this.fail('GGUF_DUPLICATE_KEY', at, `duplicate metadata key '${key}' (first at byte ${metadata.keyOffsets.get(key)})`, {
          key,
          firstOffset: metadata.keyOffsets.get(key),
        });
      }
      const typeAt = this.r.pos;
      const type = this.readValueType(`type of metadata key '${key}'`);
      if (key === GGUF_ALIGNMENT_KEY) this.alignmentValueOffset = typeAt;
      metadata.set(key, this.readValue(type, 0, key));
      metadata.keyOffsets.set(key, at);
    }
    return metadata;
  }

  private readValueType(what: string): GGUFValueType {
    const at = this.r.pos;
    const type = this.r.u32(what);
    if (!isKnownValueType(type)) {
      this.fail('GGUF_UNKNOWN_VALUE_TYPE', at, `${what} is ${type}, expected a GGUF value type 0..${GGUFValueType.FLOAT64}`, {
        valueType: type,
      });
    }
    return type;
  }

  private readValue(type: GGUFValueType, depth: number, key: string): GGUFValue {
    switch (type) {
      case GGUFValueType.UINT8:
        return { type, value: this.r.u8(key) };
      case GGUFValueType.INT8:
        return { type, value: this.r.i8(key) };
      case GGUFValueType.UINT16:
        return { type, value: this.r.u16(key) };
      case GGUFValueType.INT16:
        return { type, value: this.r.i16(key) };
      case GGUFValueType.UINT32:
        return { type, value: this.r.u32(key) };
      case GGUFValueType.INT32:
        return { type, value: this.r.i32(key) };
      case GGUFValueType.FLOAT32:
        return { type, value: this.r.f32(key) };
      case GGUFValueType.FLOAT64:
        return { type, value: this.r.f64(key) };
      case GGUFValueType.UINT64:
        return { type, value: this.r.u64Big(key) };
      case GGUFValueType.INT64:
        return { type, value: this.r.i64Big(key) };
      case GGUFValueType.BOOL:
        return { type, value: this.readBool(key) };
      case GGUFValueType.STRING:
        return { type, value: this.readString(`string value of '${key}'`) };
      case GGUFValueType.ARRAY:
        return this.readArray(depth + 1, key);
    }
  }

  /** The spec allows only 0 and 1; anything else would not round-trip. */
  private readBool(key: string): boolean {
    const at = this.r.pos;
    const byte = this.r.u8(key);
    if (byte > 1) this.fail('GGUF_BAD_BOOL', at, `bool in '${key}' is ${byte}, expected 0 or 1`, { key, value: byte });
    return byte === 1;
  }

  private readString(what: string): string {
    const at = this.r.pos;
    const length = this.r.u64(what);
    // Labels are built only on failure: this runs once per token of the vocabulary.
    if (length > this.limits.maxStringBytes) this.checkLimit(at, `length of ${what}`, length, 'maxStringBytes');
    return this.r.utf8(length, what);
  }

  private readArray(depth: number, key: string): GGUFArray {
    const at = this.r.pos;
    if (depth > this.limits.maxArrayDepth) this.checkLimit(at, `array nesting depth in '${key}'`, depth, 'maxArrayDepth');
    const itemType = this.readValueType(`item type of array '${key}'`);
    const lengthAt = this.r.pos;
    const length = this.r.u64(`length of array '${key}'`);
    this.checkLimit(lengthAt, `length of array '${key}'`, length, 'maxArrayLength');
    const itemBytes =
      GGUF_FIXED_VALUE_SIZE.get(itemType) ?? (itemType === GGUFValueType.STRING ? MIN_STRING_BYTES : MIN_NESTED_ARRAY_BYTES);
    this.checkFits(lengthAt + 8, `array '${key}' of ${length} ${valueTypeName(itemType)}`, length, itemBytes);

    if (isTypedArrayItemType(itemType)) {
      const bytes = this.r.bytes(length * itemBytes, `items of array '${key}'`);
      return { type: GGUFValueType.ARRAY, itemType, items: decodeTypedArray(itemType, bytes) } as GGUFArray;
    }
    switch (itemType) {
      case GGUFValueType.STRING: {
        const items = new Array<string>(length);
        const what = `string item of array '${key}'`; // built once: token arrays have ~10^5 items
        for (let i = 0; i < length; i++) items[i] = this.readString(what);
        return { type: GGUFValueType.ARRAY, itemType, items };
      }
      case GGUFValueType.BOOL: {
        const items = new Array<boolean>(length);
        for (let i = 0; i < length; i++) items[i] = this.readBool(key);
        return { type: GGUFValueType.ARRAY, itemType, items };
      }
      case GGUFValueType.ARRAY: {
        const items = new Array<GGUFArray>(length);
        for (let i = 0; i < length; i++) items[i] = this.readArray(depth + 1, key);
        return { type: GGUFValueType.ARRAY, itemType, items };
      }
    }
    throw new Error('unreachable');
  }

  /** general.alignment must be a UINT32 power of two (as in ggml and gguf-py); default 32. */
  private readAlignment(metadata: GGUFMetadata): number {
    const value = metadata.get(GGUF_ALIGNMENT_KEY);
    if (value === undefined) return GGUF_DEFAULT_ALIGNMENT;
    if (value.type !== GGUFValueType.UINT32) {
      this.fail('GGUF_BAD_ALIGNMENT', this.alignmentValueOffset, `'${GGUF_ALIGNMENT_KEY}' has type ${valueTypeName(value.type)}, expected UINT32`);
    }
    if (!isPowerOfTwo(value.value)) {
      this.fail('GGUF_BAD_ALIGNMENT', this.alignmentValueOffset + 4, `'${GGUF_ALIGNMENT_KEY}' is ${value.value}, expected a power of two`, {
        alignment: value.value,
      });
    }
    return value.value;
  }

  private readTensorInfos(count: number, alignment: number): RawTensorInfo[] {
    const infos: RawTensorInfo[] = [];
    const seen = new Map<string, number>();
    for (let i = 0; i < count; i++) {
      const at = this.r.pos;
      const nameLength = this.r.u64(`length of the name of tensor #${i}`);
      this.checkLimit(at, `name length of tensor #${i}`, nameLength, 'maxTensorNameBytes');
      const name = this.r.utf8(nameLength, `name of tensor #${i}`);
      const first = seen.get(name);
      if (first !== undefined) this.fail('GGUF_DUPLICATE_TENSOR', at, `duplicate tensor name '${name}' (first at byte ${first})`, { tensor: name });
      seen.set(name, at);

      const { shape, elementCount } = this.readShape(name);
      const typeAt = this.r.pos;
      const type = this.r.u32(`type of tensor '${name}'`);
      if (!isKnownGGMLType(type)) {
        this.fail('GGUF_UNKNOWN_TENSOR_TYPE', typeAt, `tensor '${name}' has ggml type ${type}, which is not a known type id`, {
          tensor: name,
          ggmlType: type,
        });
      }
      const { blockSize } = GGML_TYPE_TRAITS.get(type)!;
      const rowLength = shape[0] ?? 1;
      if (rowLength % blockSize !== 0) {
        this.fail('GGUF_BAD_SHAPE', typeAt, `tensor '${name}' has rows of ${rowLength} elements, not a multiple of the ${ggmlTypeName(type)} block size ${blockSize}`, {
          tensor: name,
          shape,
        });
      }
      const offsetAt = this.r.pos;
      const offset = this.r.u64(`data offset of tensor '${name}'`);
      if (offset % alignment !== 0) {
        this.fail('GGUF_MISALIGNED_TENSOR', offsetAt, `tensor '${name}' has data offset ${offset}, not a multiple of the alignment ${alignment}`, {
          tensor: name,
          tensorOffset: offset,
          alignment,
        });
      }
      infos.push({ name, shape, type, offset, offsetAt, elementCount, byteLength: tensorByteLength(type, elementCount) });
    }
    return infos;
  }

  private readShape(name: string): { shape: number[]; elementCount: number } {
    const at = this.r.pos;
    const nDims = this.r.u32(`dimension count of tensor '${name}'`);
    this.checkLimit(at, `dimension count of tensor '${name}'`, nDims, 'maxDims');
    const shape: number[] = [];
    let elementCount = 1;
    for (let d = 0; d < nDims; d++) {
      const dimAt = this.r.pos;
      const dim = this.r.u64(`dimension ${d} of tensor '${name}'`);
      // ggml reads dimensions as int64: anything >= 2^63 is negative there; also rejected by the element limit.
      if (dim === 0) this.fail('GGUF_BAD_SHAPE', dimAt, `tensor '${name}' has dimension ${d} of size 0, expected >= 1`, { tensor: name, dim: d });
      elementCount *= dim;
      this.checkLimit(dimAt, `element count of tensor '${name}' (through dimension ${d})`, elementCount, 'maxTensorElements');
      shape.push(dim);
    }
    return { shape, elementCount };
  }

  /** Resolve the absolute position of a tensor and check it lies inside the file. */
  private place(info: RawTensorInfo, dataOffset: number): GGUFTensorInfo {
    const fileOffset = dataOffset + info.offset;
    if (info.offset > this.r.fileSize || fileOffset + info.byteLength > this.r.fileSize) {
      this.fail(
        'GGUF_TENSOR_OUT_OF_BOUNDS',
        info.offsetAt,
        `tensor '${info.name}' occupies bytes ${fileOffset}..${fileOffset + info.byteLength} but the file has ${this.r.fileSize} bytes`,
        { tensor: info.name, fileOffset, byteLength: info.byteLength, fileSize: this.r.fileSize },
      );
    }
    const { name, shape, type, offset, byteLength, elementCount } = info;
    return { name, shape, type, offset, fileOffset, byteLength, elementCount };
  }

  private checkNoOverlap(infos: readonly RawTensorInfo[], tensors: readonly GGUFTensorInfo[]): void {
    const order = tensors.map((_, i) => i).sort((a, b) => tensors[a]!.offset - tensors[b]!.offset);
    for (let k = 1; k < order.length; k++) {
      const prev = tensors[order[k - 1]!]!;
      const cur = tensors[order[k]!]!;
      if (cur.offset < prev.offset + prev.byteLength) {
        this.fail('GGUF_TENSOR_OVERLAP', infos[order[k]!]!.offsetAt, `tensor '${cur.name}' at data offset ${cur.offset} overlaps '${prev.name}' (${prev.offset}..${prev.offset + prev.byteLength})`, {
          tensor: cur.name,
          other: prev.name,
        });
      }
    }
  }

  private checkLimit(at: number, what: string, value: number, limit: keyof GGUFLimits): void {
    const max = this.limits[limit];
    if (value <= max) return;
    const exact = value > Number.MAX_SAFE_INTEGER ? this.r.u64At(at).toString() : String(value);
    this.fail('GGUF_LIMIT_EXCEEDED', at, `${what} is ${exact}, above the limit ${limit} = ${max}`, { limit, value: exact, max });
  }

  /** Every size the header claims must fit in the rest of the file, checked before allocating. */
  private checkFits(at: number, what: string, count: number, bytesPerItem: number): void {
    if (count * bytesPerItem <= this.r.remaining) return;
    this.fail('GGUF_TRUNCATED', at, `${what}: ${count} items need at least ${count * bytesPerItem} bytes, but the file ends after ${this.r.remaining}`, {
      count,
      available: this.r.remaining,
    });
  }

  private fail(code: GGUFErrorCode, offset: number, what: string, extra: Record<string, unknown> = {}): never {
    throw new GGUFError(code, positioned(this.path, offset, what), { path: this.path, offset, ...extra });
  }
}

interface RawTensorInfo {
  name: string;
  shape: number[];
  type: number;
  offset: number;
  /** Where the offset field is in the header: the position reported for placement errors. */
  offsetAt: number;
  elementCount: number;
  byteLength: number;
}

/** Copy little-endian items into a fresh (aligned) typed array. */
function decodeTypedArray(itemType: keyof typeof TYPED_ARRAY_OF, bytes: Buffer) {
  const Ctor = TYPED_ARRAY_OF[itemType];
  const copy = new Uint8Array(bytes);
  if (HOST_IS_BIG_ENDIAN) swapInPlace(copy, Ctor.BYTES_PER_ELEMENT);
  return new Ctor(copy.buffer, 0, copy.byteLength / Ctor.BYTES_PER_ELEMENT);
}

function swap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

function hex(bytes: number[]): string {
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ');
}
