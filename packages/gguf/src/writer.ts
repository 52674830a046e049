import { withAtomicOutput, type AtomicOutput } from '@chess/core';
import { GGUFByteWriter } from './byte-writer.ts';
import { GGUFError, positioned, type GGUFErrorCode } from './errors.ts';
import { GGUF_ALIGNMENT_KEY, GGUF_DEFAULT_ALIGNMENT, GGUF_WRITE_VERSION, SUPPORTED_GGUF_VERSIONS } from './format.ts';
import { DEFAULT_GGUF_LIMITS } from './limits.ts';
import { ggufValue, type GGUFMetadata, type GGUFValue } from './metadata.ts';
import { alignUp, elementCountOf, isPowerOfTwo, tensorByteLength } from './tensor.ts';
import { GGML_TYPE_TRAITS, GGUFValueType, ggmlTypeName, isKnownGGMLType, type GGMLType } from './types.ts';
import { checkValue } from './value-check.ts';

/** Tensor data source: the whole tensor at once, or chunks (memory bounded by one chunk). */
export type GGUFTensorSource = () => Promise<Uint8Array> | AsyncIterable<Uint8Array>;

export interface GGUFWriteTensor {
  readonly name: string;
  /** ggml `ne` order: innermost first. */
  readonly shape: readonly number[];
  readonly type: GGMLType;
  /** Optional cross-check: must equal the size implied by shape and type. */
  readonly byteLength?: number;
  readonly data: GGUFTensorSource;
}

export interface GGUFWriteSpec {
  /** 3 by default; 2 is accepted to reproduce a v2 file (same little-endian layout). */
  readonly version?: 2 | 3;
  /**
   * Data alignment. When omitted, `general.alignment` from the metadata or 32.
   * When given and the metadata lacks the key, a non-default value is appended
   * as `general.alignment` (readers need it); a conflicting key is an error.
   */
  readonly alignment?: number;
  readonly metadata: GGUFMetadata | Iterable<readonly [string, GGUFValue]>;
  readonly tensors: readonly GGUFWriteTensor[];
}

interface PlannedTensor {
  readonly source: GGUFWriteTensor;
  readonly byteLength: number;
  readonly offset: number;
}

/**
 * Write a GGUF file atomically (temporary sibling, then rename; nothing is left
 * at `path` on error). The header is validated and encoded up front; tensor
 * data is then streamed in order, one source at a time, each checked to supply
 * exactly its byte length. Layout matches ggml and gguf-py: header, zero
 * padding to the alignment, then each tensor followed by padding.
 */
export async function writeGGUF(path: string, spec: GGUFWriteSpec): Promise<void> {
  const version = spec.version ?? GGUF_WRITE_VERSION;
  if (!SUPPORTED_GGUF_VERSIONS.includes(version)) {
    fail('GGUF_UNSUPPORTED_VERSION', path, `cannot write GGUF version ${String(version)}, expected one of ${SUPPORTED_GGUF_VERSIONS.join(', ')}`);
  }
  const entries = metadataEntries(path, spec);
  const alignment = resolveAlignment(path, spec, entries);
  const planned = planTensors(path, spec.tensors, alignment);

  const header = new GGUFByteWriter(1 << 20).header(version, planned.length, entries.length);
  for (const [key, value] of entries) header.kv(key, value);
  for (const t of planned) header.tensorInfo(t.source.name, t.source.shape, t.source.type, t.offset);
  header.padTo(alignment);
  const dataOffset = header.length;
  if (dataOffset > DEFAULT_GGUF_LIMITS.maxHeaderBytes) {
    fail('GGUF_LIMIT_EXCEEDED', path, `a header of ${dataOffset} bytes is above maxHeaderBytes = ${DEFAULT_GGUF_LIMITS.maxHeaderBytes}`, { limit: 'maxHeaderBytes' });
  }

  await withAtomicOutput(path, async (out) => {
    await out.write(header.bytes());
    const padding = new Uint8Array(alignment);
    for (const t of planned) {
      await streamTensor(path, out, t, dataOffset + t.offset);
      await out.write(padding.subarray(0, alignUp(t.byteLength, alignment) - t.byteLength));
    }
  });
}

/** Entries in order, keys non-empty and unique, values encodable. */
function metadataEntries(path: string, spec: GGUFWriteSpec): [string, GGUFValue][] {
  const entries: [string, GGUFValue][] = [];
  const seen = new Set<string>();
  for (const [key, value] of spec.metadata) {
    if (typeof key !== 'string' || key.length === 0) fail('GGUF_EMPTY_KEY', path, `metadata key #${entries.length} is empty`);
    if (seen.has(key)) fail('GGUF_DUPLICATE_KEY', path, `duplicate metadata key '${key}'`, { key });
    checkValue({ type: GGUFValueType.STRING, value: key }, key, path, DEFAULT_GGUF_LIMITS);
    checkValue(value, key, path, DEFAULT_GGUF_LIMITS);
    seen.add(key);
    entries.push([key, value]);
  }
  if (entries.length > DEFAULT_GGUF_LIMITS.maxKvCount) {
    fail('GGUF_LIMIT_EXCEEDED', path, `${entries.length} metadata keys, above maxKvCount = ${DEFAULT_GGUF_LIMITS.maxKvCount}`, { limit: 'maxKvCount' });
  }
  return entries;
}

function resolveAlignment(path: string, spec: GGUFWriteSpec, entries: [string, GGUFValue][]): number {
  const declared = entries.find(([key]) => key === GGUF_ALIGNMENT_KEY)?.[1];
  if (declared !== undefined) {
    if (declared.type !== GGUFValueType.UINT32 || !isPowerOfTwo(declared.value)) {
      fail('GGUF_BAD_ALIGNMENT', path, `'${GGUF_ALIGNMENT_KEY}' must be a UINT32 power of two`, { key: GGUF_ALIGNMENT_KEY });
    }
    if (spec.alignment !== undefined && spec.alignment !== declared.value) {
      fail('GGUF_BAD_ALIGNMENT', path, `alignment ${spec.alignment} conflicts with '${GGUF_ALIGNMENT_KEY}' = ${declared.value} in the metadata`);
    }
    return declared.value;
  }
  const alignment = spec.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (!isPowerOfTwo(alignment)) fail('GGUF_BAD_ALIGNMENT', path, `alignment ${alignment} is not a power of two`, { alignment });
  if (alignment !== GGUF_DEFAULT_ALIGNMENT) entries.push([GGUF_ALIGNMENT_KEY, ggufValue.u32(alignment)]);
  return alignment;
}

/** Validate names, shapes and types with the reader's rules; assign aligned offsets in order. */
function planTensors(path: string, tensors: readonly GGUFWriteTensor[], alignment: number): PlannedTensor[] {
  const limits = DEFAULT_GGUF_LIMITS;
  if (tensors.length > limits.maxTensorCount) {
    fail('GGUF_LIMIT_EXCEEDED', path, `${tensors.length} tensors, above maxTensorCount = ${limits.maxTensorCount}`, { limit: 'maxTensorCount' });
  }
  const names = new Set<string>();
  const planned: PlannedTensor[] = [];
  let offset = 0;
  for (const t of tensors) {
    const { name, shape, type } = t;
    const label = `tensor '${name}'`;
    if (names.has(name)) fail('GGUF_DUPLICATE_TENSOR', path, `duplicate ${label}`, { tensor: name });
    names.add(name);
    checkValue({ type: GGUFValueType.STRING, value: name }, name, path, limits);
    if (Buffer.byteLength(name, 'utf8') > limits.maxTensorNameBytes) {
      fail('GGUF_LIMIT_EXCEEDED', path, `${label}: name is above maxTensorNameBytes = ${limits.maxTensorNameBytes} bytes (llama.cpp refuses it)`, {
        tensor: name,
        limit: 'maxTensorNameBytes',
      });
    }
    if (!isKnownGGMLType(type)) fail('GGUF_UNKNOWN_TENSOR_TYPE', path, `${label}: ggml type ${String(type)} is not a known type id`, { tensor: name });
    if (shape.length > limits.maxDims) fail('GGUF_LIMIT_EXCEEDED', path, `${label}: ${shape.length} dimensions, above maxDims = ${limits.maxDims}`, { tensor: name, limit: 'maxDims' });
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 1)) fail('GGUF_BAD_SHAPE', path, `${label}: shape [${shape.join(', ')}] must hold positive integers`, { tensor: name });
    const elementCount = elementCountOf(shape);
    if (elementCount > limits.maxTensorElements) {
      fail('GGUF_LIMIT_EXCEEDED', path, `${label}: ${elementCount} elements, above maxTensorElements = ${limits.maxTensorElements}`, { tensor: name, limit: 'maxTensorElements' });
    }
    const { blockSize } = GGML_TYPE_TRAITS.get(type)!;
    if ((shape[0] ?? 1) % blockSize !== 0) {
      fail('GGUF_BAD_SHAPE', path, `${label}: rows of ${shape[0] ?? 1} elements are not a multiple of the ${ggmlTypeName(type)} block size ${blockSize}`, { tensor: name });
    }
    const byteLength = tensorByteLength(type, elementCount);
    if (t.byteLength !== undefined && t.byteLength !== byteLength) {
      fail('GGUF_TENSOR_SIZE_MISMATCH', path, `${label}: byteLength ${t.byteLength} given, but shape [${shape.join(', ')}] of ${ggmlTypeName(type)} takes ${byteLength}`, {
        tensor: name,
        expected: byteLength,
        actual: t.byteLength,
      });
    }
    planned.push({ source: t, byteLength, offset });
    offset += alignUp(byteLength, alignment);
  }
  return planned;
}

/** Copy one tensor's data to `out`, failing as soon as the source gives more or fewer bytes than planned. */
async function streamTensor(path: string, out: AtomicOutput, t: PlannedTensor, fileOffset: number): Promise<void> {
  const mismatch = (actual: string): never => {
    throw new GGUFError(
      'GGUF_TENSOR_SIZE_MISMATCH',
      positioned(path, fileOffset, `the data source of tensor '${t.source.name}' supplied ${actual} bytes, expected ${t.byteLength}`),
      { path, offset: fileOffset, tensor: t.source.name, expected: t.byteLength },
    );
  };
  const source = t.source.data();
  let written = 0;
  if (isAsyncIterable(source)) {
    for await (const chunk of source) {
      if (written + chunk.byteLength > t.byteLength) mismatch(`at least ${written + chunk.byteLength}`);
      await out.write(chunk);
      written += chunk.byteLength;
    }
  } else {
    const data = await source;
    if (data.byteLength !== t.byteLength) mismatch(String(data.byteLength));
    await out.write(data);
    written = data.byteLength;
  }
  if (written !== t.byteLength) mismatch(String(written));
}

function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array> {
  return typeof (value as AsyncIterable<Uint8Array> | null)?.[Symbol.asyncIterator] === 'function';
}

function fail(code: GGUFErrorCode, path: string, what: string, extra: Record<string, unknown> = {}): never {
  throw new GGUFError(code, `${path}: ${what}`, { path, ...extra });
}
