/**
 * One error base class for the whole toolchain. Every error carries a stable
 * `code` (documented in docs/errors.md, never reused for another meaning) and
 * structured `details` so tools and tests match on data, not on message text.
 */
export class ChessError extends Error {
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChessError';
    this.code = code;
    this.details = details;
  }
}

/** A user-supplied option or argument is invalid. Raised before any work starts. */
export class UsageError extends ChessError {
  constructor(code: string, message: string, details: Record<string, unknown> = {}) {
    super(code, message, details);
    this.name = 'UsageError';
  }
}

export function isChessError(value: unknown): value is ChessError {
  return value instanceof ChessError;
}
