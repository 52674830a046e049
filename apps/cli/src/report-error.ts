import { escapeControl, isChessError } from '@chess/core';

/**
 * Print an error for humans on stderr and return the exit code: 2 for usage
 * errors, 1 for everything else. Unexpected (non-ChessError) errors keep their
 * stack, since they are bugs to report.
 */
export function reportError(error: unknown): number {
  if (isChessError(error)) {
    // messages quote file contents (keys, strings, tool output): no raw control bytes on the terminal
    process.stderr.write(`error[${error.code}]: ${escapeControl(error.message)}\n`);
    if (process.env.CHESS_DEBUG && error.stack) process.stderr.write(`${error.stack}\n`);
    return error.name === 'UsageError' ? 2 : 1;
  }
  process.stderr.write(`internal error: ${escapeControl(error instanceof Error ? (error.stack ?? error.message) : String(error))}\n`);
  return 1;
}
