/**
 * The one policy for output files of every command (docs/errors.md, "Output
 * files"): the directory must exist (a typo in a path is an error, not a new
 * directory tree), the path must not be a directory, and it must not be one of
 * the command's inputs. "The same file" is decided by device and inode after
 * following symlinks, not by the spelling of the path: `./m.gguf`, an absolute
 * path, a symlink or a hard link to the input are all the input. Checked before
 * any work starts; the write itself stays atomic (writeFileAtomic /
 * withAtomicOutput).
 */
import { stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from './errors.ts';

export interface OutputInput {
  /** How the input was given, for the message (`--model`, `<file>`, `--profile`). */
  readonly option: string;
  /** Its path; undefined inputs (an option not given) are skipped. */
  readonly path: string | undefined;
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/**
 * Throw a UsageError unless `out` (given as `option`) may be written:
 * OUTPUT_DIR_MISSING (its directory does not exist), OUTPUT_IS_DIRECTORY, or
 * OUTPUT_IS_INPUT (the same file as one of `inputs`).
 */
export async function checkOutputPath(option: string, out: string, inputs: readonly OutputInput[] = []): Promise<void> {
  const dir = dirname(resolve(out));
  const dirStat = await statOrUndefined(dir);
  if (!dirStat?.isDirectory()) {
    throw new UsageError('OUTPUT_DIR_MISSING', `${option} ${out}: the directory ${dir} does not exist (create it first)`, { option, path: out, dir });
  }
  const outStat = await statOrUndefined(out);
  if (outStat === undefined) return; // a new file cannot be an input
  if (outStat.isDirectory()) throw new UsageError('OUTPUT_IS_DIRECTORY', `${option} ${out} is a directory; give a file path`, { option, path: out });
  for (const input of inputs) {
    if (input.path === undefined) continue;
    const inStat = await statOrUndefined(input.path);
    if (inStat !== undefined && inStat.dev === outStat.dev && inStat.ino === outStat.ino) {
      throw new UsageError(
        'OUTPUT_IS_INPUT',
        `${option} ${out} is the same file as ${input.option} ${input.path}: a command never writes over its input; choose another output path`,
        { option, path: out, input: input.path, inputOption: input.option },
      );
    }
  }
}
