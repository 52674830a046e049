import { isUtf8 } from 'node:buffer';
import { GGUFError, positioned } from './errors.ts';

/**
 * Thrown (not an Error: it is a control-flow signal, never escapes the reader)
 * when the parser needs bytes that are in the file but beyond the window read
 * so far. The reader then re-reads a larger window and parses again.
 */
export class NeedMoreBytes {
  constructor(
    /** Where the read that crossed the window starts. */
    readonly at: number,
    /** The window must extend at least to here. */
    readonly end: number,
  ) {}
}

const TWO_POW_32 = 2 ** 32;

/**
 * Little-endian cursor over the first `window.length` bytes of a file of
 * `fileSize` bytes. Every read first checks the file has the bytes
 * (GGUF_TRUNCATED, at the offset of the read) and only then the window.
 */
export class ByteReader {
  pos = 0;

  constructor(
    private readonly window: Buffer,
    readonly fileSize: number,
    readonly path: string,
  ) {}

  /** Bytes between the cursor and the end of the file. */
  get remaining(): number {
    return this.fileSize - this.pos;
  }

  /** Check that `n` bytes of `what` are available at the cursor. */
  need(n: number, what: string): void {
    if (n > this.fileSize - this.pos) {
      throw new GGUFError(
        'GGUF_TRUNCATED',
        positioned(this.path, this.pos, `expected ${n} bytes of ${what}, but the file ends after ${this.fileSize - this.pos}`),
        { path: this.path, offset: this.pos, needed: n, available: this.fileSize - this.pos },
      );
    }
    if (this.pos + n > this.window.length) throw new NeedMoreBytes(this.pos, this.pos + n);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.window[this.pos++]!;
  }

  i8(what: string): number {
    this.need(1, what);
    return this.window.readInt8(this.pos++);
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.window.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  i16(what: string): number {
    this.need(2, what);
    const v = this.window.readInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.window.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  i32(what: string): number {
    this.need(4, what);
    const v = this.window.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  f32(what: string): number {
    this.need(4, what);
    const v = this.window.readFloatLE(this.pos);
    this.pos += 4;
    return v;
  }

  f64(what: string): number {
    this.need(8, what);
    const v = this.window.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  u64Big(what: string): bigint {
    this.need(8, what);
    const v = this.window.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  i64Big(what: string): bigint {
    this.need(8, what);
    const v = this.window.readBigInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  /**
   * A u64 count, length or offset as a number without a bigint round trip.
   * Exact below 2^53; above, only approximately right — callers compare it
   * with limits and file sizes that are all below 2^53, so it still fails them.
   */
  u64(what: string): number {
    this.need(8, what);
    const lo = this.window.readUInt32LE(this.pos);
    const hi = this.window.readUInt32LE(this.pos + 4);
    this.pos += 8;
    return hi * TWO_POW_32 + lo;
  }

  /** `n` raw bytes, as a view into the window (valid while the window is). */
  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const view = this.window.subarray(this.pos, this.pos + n);
    this.pos += n;
    return view;
  }

  /** `n` bytes decoded as strict UTF-8 (GGUF_BAD_UTF8 at the string's first byte otherwise). */
  utf8(n: number, what: string): string {
    this.need(n, what);
    const start = this.pos;
    const end = start + n;
    if (!isAscii(this.window, start, end) && !isUtf8(this.window.subarray(start, end))) {
      throw new GGUFError('GGUF_BAD_UTF8', positioned(this.path, start, `${what} of ${n} bytes is not valid UTF-8`), {
        path: this.path,
        offset: start,
        length: n,
      });
    }
    this.pos = end;
    return this.window.toString('utf8', start, end);
  }

  /** Re-read the u64 at `offset` exactly, for error messages about huge values. */
  u64At(offset: number): bigint {
    return this.window.readBigUInt64LE(offset);
  }
}

/** Most keys and tokens are short ASCII: a byte loop beats the native call overhead. */
function isAscii(buf: Buffer, start: number, end: number): boolean {
  if (end - start > 64) return false;
  for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return false;
  return true;
}
