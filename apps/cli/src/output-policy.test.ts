/**
 * Issue 20, in-process through runCli (cli.ts): no command writes over one of its inputs
 * (however the path is spelled: same string, relative, symlink, hard link), and the input
 * is unchanged; one output-directory policy; commander's usage errors as error[CLI_*]
 * lines with exit 2; `chess inspect --check`, eval and bench refuse sparse-contract
 * violations naming the tensor or key. The model is a copy in a temporary directory (and
 * CHESS_MODEL_DIR points there for the default-model cases): a regression must not be
 * able to overwrite the shared cache.
 */
import { createHash } from 'node:crypto';
import { copyFile, link, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL, fetchDefaultModel } from '@chess/assets';
import { GGMLType, ggufValue, writeGGUF, type GGUFValue } from '@chess/gguf';
import { runCli } from './cli.ts';

let work: string;
let model: string;
let modelHash: string;

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-out-policy-'));
  model = join(work, DEFAULT_MODEL.fileName);
  await copyFile(await fetchDefaultModel(), model);
  modelHash = await sha256(model);
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** Run `chess ...args` in this process; stdout and stderr captured. */
async function chess(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write;
  const err = process.stderr.write;
  process.stdout.write = ((c: string | Uint8Array) => ((stdout += c.toString()), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => ((stderr += c.toString()), true)) as typeof process.stderr.write;
  try {
    return { code: await runCli(args), stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

describe('no command writes over one of its inputs', { timeout: 120_000 }, () => {
  const cases: [string, () => Promise<string[]>, RegExp][] = [
    ['transform --out = --model (same string)', async () => ['transform', '--model', model, '--out', model], /--out .* is the same file as --model/],
    ['transform --out = --model (relative path)', async () => ['transform', '--model', model, '--out', relative(process.cwd(), model)], /same file as --model/],
    [
      'transform --out = --profile (through a symlink)',
      async () => {
        const profile = join(work, 'a.prof');
        await writeFile(profile, 'profile');
        await symlink(profile, join(work, 'profile-link.prof')).catch(() => undefined);
        return ['transform', '--model', model, '--profile', profile, '--out', join(work, 'profile-link.prof')];
      },
      /same file as --profile/,
    ],
    ['transform without --model: --out = the default model', async () => ['transform', '--out', model], /same file as --model/],
    [
      'import <file> --out (a hard link of it)',
      async () => {
        await link(model, join(work, 'hard.gguf')).catch(() => undefined);
        return ['import', model, '--out', join(work, 'hard.gguf')];
      },
      /same file as <file>/,
    ],
    ['calibrate --out = --model', async () => ['calibrate', '--model', model, '--out', model], /same file as --model/],
    [
      'calibrate --out = --data',
      async () => {
        await writeFile(join(work, 'text.txt'), 'some text\n');
        return ['calibrate', '--model', model, '--data', join(work, 'text.txt'), '--out', join(work, 'text.txt')];
      },
      /same file as --data/,
    ],
    ['eval --json = --model', async () => ['eval', '--model', model, '--tasks', 'piqa', '--limit', '1', '--json', model], /--json .* same file as --model/],
    ['eval --json = --ppl FILE', async () => ['eval', '--model', model, '--no-tasks', '--ppl', join(work, 'text.txt'), '--json', join(work, 'text.txt')], /same file as --ppl/],
    ['bench --json = --model', async () => ['bench', '--model', model, '--json', model], /--json .* same file as --model/],
    ['bench --html = the second --model', async () => ['bench', '--model', join(work, 'hard.gguf'), '--model', model, '--html', model], /--html .* same file as --model/],
    ['llama-bench --json = --model', async () => ['llama-bench', '--model', model, '--json', model], /same file as --model/],
    ['pack --out = --model', async () => ['pack', '--model', model, '--target', 'linux-x86_64', '--out', model], /--out .* same file as --model/],
    [
      'report --md = a result file',
      async () => {
        await writeFile(join(work, 'r.json'), '{}');
        return ['report', join(work, 'r.json'), '--md', join(work, 'r.json')];
      },
      /--md .* same file as <results>/,
    ],
  ];
  for (const [title, args, message] of cases) {
    it(title, async () => {
      const before = await stat(model);
      const previous = process.env.CHESS_MODEL_DIR;
      process.env.CHESS_MODEL_DIR = work;
      let run;
      try {
        run = await chess(...(await args()));
      } finally {
        if (previous === undefined) delete process.env.CHESS_MODEL_DIR;
        else process.env.CHESS_MODEL_DIR = previous;
      }
      expect(run.stderr).toMatch(/^error\[OUTPUT_IS_INPUT\]: /);
      expect(run.stderr).toMatch(message);
      expect(run.code).toBe(2);
      const after = await stat(model);
      expect({ ino: after.ino, size: after.size, mtime: after.mtimeMs }).toEqual({ ino: before.ino, size: before.size, mtime: before.mtimeMs });
    });
  }
  it('the model is byte for byte what it was', async () => {
    expect(await sha256(model)).toBe(modelHash);
  });
});

describe('one policy for output directories; usage errors have codes', { timeout: 120_000 }, () => {
  const cases: [string, () => string[], string][] = [
    ['import --out into a missing directory', () => ['import', model, '--out', join(work, 'missing', 'x.gguf')], 'OUTPUT_DIR_MISSING'],
    ['eval --json into a missing directory', () => ['eval', '--model', model, '--tasks', 'piqa', '--json', join(work, 'missing', 'x.json')], 'OUTPUT_DIR_MISSING'],
    ['bench --json into a missing directory', () => ['bench', '--model', model, '--json', join(work, 'missing', 'x.json')], 'OUTPUT_DIR_MISSING'],
    ['transform --out into a missing directory', () => ['transform', '--model', model, '--out', join(work, 'missing', 'x.gguf')], 'OUTPUT_DIR_MISSING'],
    ['calibrate --out is a directory', () => ['calibrate', '--model', model, '--out', work], 'OUTPUT_IS_DIRECTORY'],
    ['pack --out into a missing directory', () => ['pack', '--model', model, '--target', 'linux-x86_64', '--out', join(work, 'missing', 'b.tar.gz')], 'OUTPUT_DIR_MISSING'],
    ['a missing required option', () => ['import', model], 'CLI_MISSING_OPTION'],
    ['an unknown option', () => ['inspect', model, '--bogus'], 'CLI_UNKNOWN_OPTION'],
    ['an option without its value', () => ['transform', '--model'], 'CLI_MISSING_OPTION_VALUE'],
    ['a missing argument', () => ['inspect'], 'CLI_MISSING_ARGUMENT'],
    ['an unknown command', () => ['inspekt', model], 'CLI_UNKNOWN_COMMAND'],
    ['no command', () => [], 'CLI_NO_COMMAND'],
  ];
  for (const [title, args, code] of cases) {
    it(`${title} -> ${code}, exit 2, nothing written`, async () => {
      const run = await chess(...args());
      const lines = run.stderr.split('\n').filter((l) => l.startsWith('error'));
      expect(lines).toEqual([expect.stringMatching(new RegExp(`^error\\[${code}\\]: `))]);
      expect(run.code).toBe(2);
    });
  }
  it('--help is not an error', async () => {
    expect((await chess('inspect', '--help')).code).toBe(0);
  });
});

describe('sparse-contract violations: chess inspect --check, eval and bench name the tensor or key', { timeout: 120_000 }, () => {
  /** A one-layer sparse GGUF header (n_ff 4) with a gate threshold: enough for the contract. */
  async function sparse(name: string, edit: { tau?: number[]; drop?: string; format?: number } = {}): Promise<string> {
    const path = join(work, `${name}.gguf`);
    const metadata: [string, GGUFValue][] = [
      ['general.architecture', ggufValue.string('chess')],
      ['chess.base_architecture', ggufValue.string('llama')],
      ['llama.block_count', ggufValue.u32(1)],
      ['llama.feed_forward_length', ggufValue.u32(4)],
      ['chess.format_version', ggufValue.u32(edit.format ?? 1)],
      ['chess.method', ggufValue.string('chess')],
      ['chess.target_sparsity', ggufValue.f32(0.5)],
    ];
    const tau = Float32Array.from(edit.tau ?? [0.1, 0.2, 0.3, 0.4]);
    await writeGGUF(path, {
      metadata: metadata.filter(([k]) => k !== edit.drop),
      tensors: [{ name: 'blk.0.ffn_gate_tau', shape: [4], type: GGMLType.F32, data: async () => new Uint8Array(tau.buffer) }],
    });
    return path;
  }

  it('a file that keeps the contract: inspect --check exits 0 and says so', async () => {
    const run = await chess('inspect', await sparse('good'), '--check');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('sparse contract: kept');
  });

  const violations: [string, Parameters<typeof sparse>[1], RegExp][] = [
    ['a NaN threshold', { tau: [0.1, 0.2, Number.NaN, 0.4] }, /blk\.0\.ffn_gate_tau\[2\] = NaN: a threshold must be finite and >= 0/],
    ['an infinite threshold', { tau: [Number.POSITIVE_INFINITY, 0, 0, 0] }, /blk\.0\.ffn_gate_tau\[0\] = Infinity/],
    ['a negative threshold', { tau: [0.1, -0.2, 0.3, 0.4] }, /blk\.0\.ffn_gate_tau\[1\] = -0\.2/],
    ['no chess.target_sparsity', { drop: 'chess.target_sparsity' }, /chess\.target_sparsity: missing/],
    ['no chess.format_version', { drop: 'chess.format_version' }, /chess\.format_version: missing/],
    ['format 2 without a column-block tensor', { format: 2 }, /chess\.format_version: 2, but the tensors' layouts are format 1/],
  ];
  for (const [title, edit, message] of violations) {
    it(`${title}: inspect --check, eval and bench refuse it (SPARSE_CONTRACT_VIOLATION, exit 1)`, async () => {
      const path = await sparse(title.replace(/\W+/g, '-'), edit);
      const inspect = await chess('inspect', path, '--check');
      expect(inspect.stdout).toMatch(message); // the report lists it
      expect(inspect.stderr).toMatch(/^error\[SPARSE_CONTRACT_VIOLATION\]: /);
      expect(inspect.stderr).toMatch(message);
      expect(inspect.code).toBe(1);
      // without --check the report still shows it, and the exit is 0
      const plain = await chess('inspect', path);
      expect(plain.stdout).toMatch(message);
      expect(plain.code).toBe(0);
      for (const args of [
        ['eval', '--model', path, '--tasks', 'piqa', '--limit', '1'],
        ['bench', '--model', path],
      ]) {
        const run = await chess(...args);
        expect(run.stderr, args[0]).toMatch(/^error\[SPARSE_CONTRACT_VIOLATION\]: /);
        expect(run.stderr, args[0]).toMatch(message);
        expect(run.code, args[0]).toBe(1);
      }
    });
  }
});
