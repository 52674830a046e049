import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Temporary sibling path: same directory, so the final rename is atomic on POSIX. */
export function temporarySiblingPath(finalPath: string): string {
  return join(dirname(finalPath), `.${basename(finalPath)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Write a file so that readers see either the old content or the complete new
 * one, never a prefix: write to a temporary sibling, fsync, then rename.
 */
export async function writeFileAtomic(finalPath: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(finalPath), { recursive: true });
  const tmp = temporarySiblingPath(finalPath);
  try {
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, finalPath);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

/**
 * Streamed variant for large outputs (multi-GB GGUFs): `produce` writes into the
 * stream; on success the file is renamed into place, on failure it is removed.
 */
export async function withAtomicOutput<T>(finalPath: string, produce: (out: AtomicOutput) => Promise<T>): Promise<T> {
  await mkdir(dirname(finalPath), { recursive: true });
  const tmp = temporarySiblingPath(finalPath);
  const handle = await open(tmp, 'w');
  const out = new AtomicOutput(handle);
  try {
    const result = await produce(out);
    await out.flush();
    await handle.sync();
    await handle.close();
    await rename(tmp, finalPath);
    return result;
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw error;
  }
}

/** Buffered sequential writer over a file handle, with back-pressure by awaiting writes. */
export class AtomicOutput {
  private buffer: Buffer;
  private used = 0;
  private written = 0;

  constructor(
    private readonly handle: FileHandle,
    bufferBytes = 8 << 20,
  ) {
    this.buffer = Buffer.allocUnsafe(bufferBytes);
  }

  /** Bytes handed to `write` so far (including those still buffered). */
  get position(): number {
    return this.written + this.used;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (chunk.byteLength >= this.buffer.byteLength) {
      await this.flush();
      await this.writeFully(chunk);
      return;
    }
    if (this.used + chunk.byteLength > this.buffer.byteLength) await this.flush();
    this.buffer.set(chunk, this.used);
    this.used += chunk.byteLength;
  }

  async flush(): Promise<void> {
    if (this.used === 0) return;
    await this.writeFully(this.buffer.subarray(0, this.used));
    this.used = 0;
  }

  private async writeFully(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const { bytesWritten } = await this.handle.write(chunk, offset, chunk.byteLength - offset, this.written);
      offset += bytesWritten;
      this.written += bytesWritten;
    }
  }
}
