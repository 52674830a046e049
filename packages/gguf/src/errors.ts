import { ChessError } from '@chess/core';

/**
 * Stable codes of the GGUF container (documented in docs/errors.md). A code
 * keeps one meaning forever; reader and writer share a code only when the
 * meaning is the same (e.g. GGUF_DUPLICATE_TENSOR).
 */
export type GGUFErrorCode =
  | 'GGUF_IO_ERROR'
  | 'GGUF_TRUNCATED'
  | 'GGUF_BAD_MAGIC'
  | 'GGUF_UNSUPPORTED_VERSION'
  | 'GGUF_UNSUPPORTED_BYTE_ORDER'
  | 'GGUF_LIMIT_EXCEEDED'
  | 'GGUF_UNKNOWN_VALUE_TYPE'
  | 'GGUF_UNKNOWN_TENSOR_TYPE'
  | 'GGUF_BAD_UTF8'
  | 'GGUF_BAD_BOOL'
  | 'GGUF_EMPTY_KEY'
  | 'GGUF_DUPLICATE_KEY'
  | 'GGUF_DUPLICATE_TENSOR'
  | 'GGUF_BAD_ALIGNMENT'
  | 'GGUF_BAD_SHAPE'
  | 'GGUF_MISALIGNED_TENSOR'
  | 'GGUF_TENSOR_OUT_OF_BOUNDS'
  | 'GGUF_TENSOR_OVERLAP'
  | 'GGUF_BAD_RANGE'
  | 'GGUF_FILE_CLOSED'
  | 'GGUF_MISSING_KEY'
  | 'GGUF_WRONG_VALUE_TYPE'
  | 'GGUF_VALUE_OUT_OF_RANGE'
  | 'GGUF_INVALID_VALUE'
  | 'GGUF_TENSOR_SIZE_MISMATCH';

/**
 * `path` is the GGUF file concerned; `offset` the absolute byte offset in it
 * where the problem was found (absent only when no file position applies, e.g.
 * a metadata getter on an in-memory map or a writer spec rejected up front).
 */
export interface GGUFErrorDetails {
  readonly path: string;
  readonly offset?: number;
  readonly [key: string]: unknown;
}

export class GGUFError extends ChessError {
  declare readonly code: GGUFErrorCode;
  declare readonly details: GGUFErrorDetails;

  constructor(code: GGUFErrorCode, message: string, details: GGUFErrorDetails, options?: { cause?: unknown }) {
    super(code, message, { ...details }, options);
    this.name = 'GGUFError';
  }
}

export function isGGUFError(value: unknown): value is GGUFError {
  return value instanceof GGUFError;
}

/** `<path>: at byte <offset>: <what>` — the shape of every positioned message. */
export function positioned(path: string, offset: number, what: string): string {
  return `${path}: at byte ${offset}: ${what}`;
}
