import { UsageError } from '@chess/core';

/** A benchmark's failure as the CLI prints it: error[CODE]: message, exit 2 for bad usage, 1 otherwise (no stack trace). */
export function exitWithError(error: unknown): never {
  const e = error as { code?: string; message?: string };
  process.stderr.write(`error[${e.code ?? 'UNEXPECTED'}]: ${e.message ?? String(error)}\n`);
  process.exit(error instanceof UsageError ? 2 : 1);
}
