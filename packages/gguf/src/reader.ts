import { open, stat, type FileHandle } from 'node:fs/promises';
import { NeedMoreBytes } from './byte-reader.ts';
import { GGUFError, positioned } from './errors.ts';
import { parseHeader, type GGUFHeader } from './header.ts';
import { resolveLimits, type GGUFLimits } from './limits.ts';
import type { GGUFMetadata } from './metadata.ts';
import type { GGUFTensorInfo } from './tensor.ts';

export interface OpenGGUFOptions {
  /** Override some of DEFAULT_GGUF_LIMITS. */
  limits?: Partial<GGUFLimits>;
}

/** An open GGUF file: validated header in memory, tensor data read lazily. */
export interface GGUFFile extends GGUFHeader {
  readonly path: string;
  readonly fileSize: number;
  readonly metadata: GGUFMetadata;
  readonly tensors: GGUFTensorInfo[];
  tensor(name: string): GGUFTensorInfo | undefined;
  /** The whole tensor's bytes (one allocation of `t.byteLength`). */
  readTensorData(t: GGUFTensorInfo): Promise<Uint8Array>;
  /** `byteLength` bytes starting `byteOffset` bytes into the tensor's data. */
  readTensorRange(t: GGUFTensorInfo, byteOffset: number, byteLength: number): Promise<Uint8Array>;
  /** The tensor's bytes as fresh chunks of at most `chunkBytes`: memory bounded by one chunk. */
  tensorChunks(t: GGUFTensorInfo, chunkBytes?: number): AsyncIterable<Uint8Array>;
  /** Idempotent; later reads fail with GGUF_FILE_CLOSED. */
  close(): Promise<void>;
}

/** Most headers (SmolLM2's is 1.8 MB) fit in the first read; bigger ones grow it geometrically. */
const INITIAL_HEADER_WINDOW = 4 << 20;
const DEFAULT_CHUNK_BYTES = 16 << 20;
/** One read(2) call transfers at most ~2 GiB on Linux; larger tensors take several calls. */
const MAX_READ_CALL_BYTES = 1 << 30;

/** Open `path`, read and validate its header (metadata and tensor table); tensor data stays on disk. */
export async function openGGUF(path: string, options: OpenGGUFOptions = {}): Promise<GGUFFile> {
  const limits = resolveLimits(options.limits);
  // a FIFO would block open() until a writer comes, a device has no size: only regular files
  const kind = await stat(path).then(
    (st) => (st.isFile() ? undefined : st.isDirectory() ? 'EISDIR' : 'not a regular file'),
    () => undefined, // open() names the error
  );
  if (kind !== undefined) throw ioError(path, 0, kind === 'EISDIR' ? 'cannot open' : 'cannot open (a FIFO, device or socket)', Object.assign(new Error(kind), { code: kind === 'EISDIR' ? kind : 'ENOTREG' }));
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw ioError(path, 0, 'cannot open', error);
  }
  try {
    const fileSize = (await handle.stat()).size;
    const header = await readHeader(handle, path, fileSize, limits);
    return new OpenGGUFFile(handle, path, fileSize, header);
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
}

/**
 * Parse from a window over the start of the file, growing the window (to at
 * least what the parser asked for, at least 4x, at most the file and
 * maxHeaderBytes) and re-parsing when the header is larger than the window.
 * Re-parsing costs at most a constant factor; the window never exceeds the limit.
 */
async function readHeader(handle: FileHandle, path: string, fileSize: number, limits: GGUFLimits): Promise<GGUFHeader> {
  let window = await readAt(handle, path, 0, Math.min(fileSize, INITIAL_HEADER_WINDOW, limits.maxHeaderBytes));
  for (;;) {
    try {
      return parseHeader(window, fileSize, path, limits);
    } catch (error) {
      if (!(error instanceof NeedMoreBytes)) throw error;
      if (error.end > limits.maxHeaderBytes) {
        throw new GGUFError(
          'GGUF_LIMIT_EXCEEDED',
          positioned(path, error.at, `the header extends past byte ${error.end}, above the limit maxHeaderBytes = ${limits.maxHeaderBytes}`),
          { path, offset: error.at, limit: 'maxHeaderBytes', value: error.end, max: limits.maxHeaderBytes },
        );
      }
      const size = Math.min(fileSize, limits.maxHeaderBytes, Math.max(error.end, window.length * 4));
      const grown = Buffer.allocUnsafe(size);
      window.copy(grown);
      await readInto(handle, path, grown, window.length);
      window = grown;
    }
  }
}

class OpenGGUFFile implements GGUFFile {
  readonly version: number;
  readonly alignment: number;
  readonly dataOffset: number;
  readonly metadata: GGUFMetadata;
  readonly tensors: GGUFTensorInfo[];
  private readonly byName: Map<string, GGUFTensorInfo>;
  private handle: FileHandle | undefined;

  constructor(
    handle: FileHandle,
    readonly path: string,
    readonly fileSize: number,
    header: GGUFHeader,
  ) {
    this.handle = handle;
    ({ version: this.version, alignment: this.alignment, dataOffset: this.dataOffset, metadata: this.metadata, tensors: this.tensors } = header);
    this.byName = new Map(this.tensors.map((t) => [t.name, t]));
  }

  tensor(name: string): GGUFTensorInfo | undefined {
    return this.byName.get(name);
  }

  readTensorData(t: GGUFTensorInfo): Promise<Uint8Array> {
    return this.readTensorRange(t, 0, t.byteLength);
  }

  async readTensorRange(t: GGUFTensorInfo, byteOffset: number, byteLength: number): Promise<Uint8Array> {
    this.checkRange(t, byteOffset, byteLength);
    return readAt(this.openHandle(), this.path, t.fileOffset + byteOffset, byteLength);
  }

  async *tensorChunks(t: GGUFTensorInfo, chunkBytes = DEFAULT_CHUNK_BYTES): AsyncIterable<Uint8Array> {
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) {
      throw new GGUFError('GGUF_BAD_RANGE', `${this.path}: chunk size ${chunkBytes} must be a positive integer`, { path: this.path, chunkBytes });
    }
    for (let done = 0; done < t.byteLength; done += chunkBytes) {
      yield await this.readTensorRange(t, done, Math.min(chunkBytes, t.byteLength - done));
    }
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }

  private openHandle(): FileHandle {
    if (!this.handle) throw new GGUFError('GGUF_FILE_CLOSED', `${this.path}: read after close()`, { path: this.path });
    return this.handle;
  }

  private checkRange(t: GGUFTensorInfo, byteOffset: number, byteLength: number): void {
    const own = this.byName.get(t.name);
    const valid =
      own !== undefined &&
      own.fileOffset === t.fileOffset &&
      own.byteLength === t.byteLength &&
      Number.isSafeInteger(byteOffset) &&
      Number.isSafeInteger(byteLength) &&
      byteOffset >= 0 &&
      byteLength >= 0 &&
      byteOffset + byteLength <= t.byteLength;
    if (!valid) {
      throw new GGUFError(
        'GGUF_BAD_RANGE',
        positioned(this.path, t.fileOffset, `bytes ${byteOffset}+${byteLength} of tensor '${t.name}' are not a range of its ${t.byteLength} bytes in this file`),
        { path: this.path, offset: t.fileOffset, tensor: t.name, byteOffset, byteLength },
      );
    }
  }
}

/** Read exactly `length` bytes at `position` (positions may exceed 4 GiB). */
async function readAt(handle: FileHandle, path: string, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  await readInto(handle, path, buffer, 0, position);
  return buffer;
}

/** Fill `buffer[from..]` from the file at `position + from`; a short file is GGUF_TRUNCATED. */
async function readInto(handle: FileHandle, path: string, buffer: Buffer, from: number, position = 0): Promise<void> {
  let filled = from;
  while (filled < buffer.length) {
    let bytesRead: number;
    try {
      const length = Math.min(buffer.length - filled, MAX_READ_CALL_BYTES);
      ({ bytesRead } = await handle.read(buffer, filled, length, position + filled));
    } catch (error) {
      throw ioError(path, position + filled, 'cannot read', error);
    }
    if (bytesRead === 0) {
      throw new GGUFError('GGUF_TRUNCATED', positioned(path, position + filled, `file ended while reading (did it shrink after it was opened?)`), {
        path,
        offset: position + filled,
      });
    }
    filled += bytesRead;
  }
}

function ioError(path: string, offset: number, what: string, cause: unknown): GGUFError {
  const reason = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
  return new GGUFError('GGUF_IO_ERROR', positioned(path, offset, `${what}: ${reason}`), { path, offset, reason }, { cause });
}
