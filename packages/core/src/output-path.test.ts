import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkOutputPath } from './output-path.ts';
import { escapeControl } from './printable.ts';

let dir: string;
let input: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chess-out-'));
  input = join(dir, 'model.gguf');
  await writeFile(input, 'input');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const codeOf = (p: Promise<void>) =>
  p.then(
    () => 'ok',
    (e: { code?: string; name?: string }) => `${e.name}:${e.code}`,
  );

describe('checkOutputPath', () => {
  it('accepts a new file, or an existing file that is not an input', async () => {
    expect(await codeOf(checkOutputPath('--out', join(dir, 'new.gguf'), [{ option: '--model', path: input }]))).toBe('ok');
    await writeFile(join(dir, 'old.gguf'), 'old');
    expect(await codeOf(checkOutputPath('--out', join(dir, 'old.gguf'), [{ option: '--model', path: input }, { option: '--profile', path: undefined }]))).toBe('ok');
  });

  it('refuses the input however it is spelled: same path, relative, via .., symlink, hard link', async () => {
    await mkdir(join(dir, 'sub'), { recursive: true });
    await symlink(input, join(dir, 'sub', 'link.gguf'));
    await link(input, join(dir, 'hard.gguf'));
    const spellings = [input, relative(process.cwd(), input), join(dir, 'sub', '..', 'model.gguf'), join(dir, 'sub', 'link.gguf'), join(dir, 'hard.gguf')];
    for (const out of spellings) {
      expect(await codeOf(checkOutputPath('--out', out, [{ option: '--model', path: input }])), out).toBe('UsageError:OUTPUT_IS_INPUT');
    }
    // the input given through the symlink, the output as the real path
    expect(await codeOf(checkOutputPath('--json', input, [{ option: '--ppl', path: join(dir, 'sub', 'link.gguf') }]))).toBe('UsageError:OUTPUT_IS_INPUT');
  });

  it('refuses a missing directory and a directory', async () => {
    expect(await codeOf(checkOutputPath('--out', join(dir, 'missing', 'x.gguf')))).toBe('UsageError:OUTPUT_DIR_MISSING');
    expect(await codeOf(checkOutputPath('--out', join(input, 'x.gguf')))).toBe('UsageError:OUTPUT_DIR_MISSING'); // a file as the directory
    expect(await codeOf(checkOutputPath('--out', join(dir, 'sub')))).toBe('UsageError:OUTPUT_IS_DIRECTORY');
  });
});

describe('escapeControl', () => {
  it('escapes NUL, ESC, CR, DEL and C1 controls; keeps newlines, tabs and other text', () => {
    expect(escapeControl('a\u0000\u0000\u0000\u0000b')).toBe('a\\x00\\x00\\x00\\x00b');
    expect(escapeControl('\u001b[31mred\r\u007f\u0085')).toBe('\\x1b[31mred\\x0d\\x7f\\x85');
    expect(escapeControl('line 1\n\tline 2 é 🙂')).toBe('line 1\n\tline 2 é 🙂');
  });
});
