/**
 * Writes the contract's C header (src/c-header.ts) to its committed path.
 * `pnpm -C packages/contract gen:header`; with --check, exits 1 if the
 * committed file differs instead of writing it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { C_HEADER_PATH, REPO_ROOT, renderContractHeader } from '../src/c-header.ts';

const path = join(REPO_ROOT, C_HEADER_PATH);
const text = renderContractHeader();
const current = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
if (process.argv.includes('--check')) {
  if (current !== text) {
    process.stderr.write(`${C_HEADER_PATH} is stale: run pnpm -C packages/contract gen:header\n`);
    process.exit(1);
  }
} else if (current !== text) {
  writeFileSync(path, text);
  process.stderr.write(`wrote ${C_HEADER_PATH}\n`);
} else {
  process.stderr.write(`${C_HEADER_PATH} is up to date\n`);
}
