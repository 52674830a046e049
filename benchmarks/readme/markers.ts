/** What every generated README table shares: reading a result file, and replacing the text between two markers. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChessError } from '@chess/core';

/** `dir/file` parsed, or undefined when it does not exist; a file that is not JSON is an error naming it. */
export function readResultJson<T>(dir: string, file: string): T | undefined {
  const path = join(dir, file);
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (error) {
    throw new ChessError('MEASURED_RESULTS_INVALID', `${path}: not valid JSON (${(error as Error).message})`, { path });
  }
}

/** `readme` with the text between the markers `begin` and `end` replaced by `table`. */
export function replaceBetweenMarkers(readme: string, begin: string, end: string, table: string): string {
  const a = readme.indexOf(begin);
  const b = readme.indexOf(end);
  if (a < 0 || b < a) throw new ChessError('MEASURED_MARKERS_MISSING', `README.md: expected the markers ${begin} and ${end}`, {});
  return `${readme.slice(0, a + begin.length)}\n${table}\n${readme.slice(b)}`;
}
