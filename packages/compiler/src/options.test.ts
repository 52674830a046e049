/**
 * The options schema: every option error once, with its stable code, a
 * message that starts with the option's name (the key, or the CLI's flag) and
 * says what was expected; defaults filled in; numbers from strings.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isChessError } from '@chess/core';
import { type CompileInput, type CompileOptions, validateCompileOptions } from './options.ts';

let work: string;
let model: string;
let out: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-compiler-options-'));
  model = join(work, 'model.gguf');
  await writeFile(model, 'not read by the validation');
  out = join(work, 'out.gguf');
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function errorOf(input: CompileInput, optionName?: (key: keyof CompileOptions) => string): { code: string; message: string; name: string; details: Record<string, unknown> } {
  try {
    validateCompileOptions(input, { ...(optionName && { optionName }) });
  } catch (error) {
    if (!isChessError(error)) throw error;
    return { code: error.code, message: error.message, name: error.name, details: error.details as Record<string, unknown> };
  }
  throw new Error(`no error for ${JSON.stringify(input)}`);
}

describe('one error per option, each with its code and the option named', () => {
  const cases: Array<[string, () => CompileInput, string, RegExp]> = [
    ['sparsity 1', () => ({ out, sparsity: 1 }), 'CHESS_BAD_SPARSITY', /^sparsity: expected a number in \[0, 1\), got '1'$/],
    ['sparsity negative', () => ({ out, sparsity: -0.1 }), 'CHESS_BAD_SPARSITY', /^sparsity: .*got '-0.1'$/],
    ['sparsity not a number', () => ({ out, sparsity: 'half' }), 'CHESS_BAD_SPARSITY', /^sparsity: .*got 'half'$/],
    ['sparsity empty', () => ({ out, sparsity: ' ' }), 'CHESS_BAD_SPARSITY', /^sparsity: .*got ' '$/],
    ['method', () => ({ out, method: 'dejavu' }), 'CHESS_UNKNOWN_METHOD', /^method: unknown method 'dejavu'; valid methods: chess, chess\+, cats, teal/],
    ['statistic', () => ({ out, statistic: 'median' }), 'CHESS_UNKNOWN_STATISTIC', /^statistic: unknown statistic 'median'; valid statistics: rms, mean-abs$/],
    ['layout', () => ({ out, layout: 'rows' }), 'CHESS_BAD_LAYOUT', /^layout: unknown layout 'rows'; valid layouts: column-blocks, transposed$/],
    ['transposed type', () => ({ out, layout: 'transposed', transposedType: 'q4_K' }), 'CHESS_BAD_TRANSPOSED_TYPE', /^transposedType: transposed type 'q4_K' is not supported; valid: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1$/],
    [
      'transposed type without the transposed layout',
      () => ({ out, transposedType: 'q8_0' }),
      'CHESS_LAYOUT_CONFLICT',
      /^transposedType: a transposed type \('q8_0'\) applies only to the transposed layout, not to 'column-blocks'/,
    ],
    ['calibration tokens 0', () => ({ out, calibrationTokens: 0 }), 'TRANSFORM_BAD_OPTION', /^calibrationTokens: expected an integer in \[1, 2147483647\], got '0'$/],
    ['refine tokens not an integer', () => ({ out, refineTokens: '1.5' }), 'TRANSFORM_BAD_OPTION', /^refineTokens: expected an integer in \[0, 2147483647\], got '1.5'$/],
    ['refine iterations 11', () => ({ out, refineIterations: 11 }), 'TRANSFORM_BAD_OPTION', /^refineIterations: expected an integer in \[1, 10\], got '11'$/],
    ['missing model', () => ({ out, model: join(work, 'nope.gguf') }), 'TRANSFORM_BAD_MODEL', /^model: .*nope\.gguf does not exist$/],
    ['missing profile', () => ({ out, profile: join(work, 'nope.prf') }), 'TRANSFORM_BAD_PROFILE', /^profile: .*nope\.prf does not exist \(make one with 'chess calibrate'\)$/],
    ['out in a missing directory', () => ({ out: join(work, 'no-dir', 'x.gguf') }), 'TRANSFORM_BAD_OUT', /^out: directory .*no-dir does not exist$/],
    ['out missing', () => ({}), 'TRANSFORM_BAD_OUT', /^out: required/],
    ['an unknown option', () => ({ out, sparsty: 0.5 }) as CompileInput, 'TRANSFORM_BAD_OPTION', /^unknown option sparsty; options: method, statistic, sparsity/],
  ];
  for (const [name, input, code, message] of cases) {
    it(name, () => {
      const e = errorOf(input());
      expect(e.code).toBe(code);
      expect(e.message).toMatch(message);
      // bad usage: the command line exits 2
      expect(e.name).toBe('UsageError');
    });
  }

  it('named as the command line names them', () => {
    const flag = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    expect(errorOf({ out, refineTokens: -1 }, flag).message).toMatch(/^--refine-tokens: expected an integer/);
    expect(errorOf({ out, transposedType: 'q8_0' }, flag)).toMatchObject({ code: 'CHESS_LAYOUT_CONFLICT', details: { option: '--transposed-type', value: 'q8_0' } });
  });

  it('the first problem in schema order is the one reported', () => {
    expect(errorOf({ out: join(work, 'no-dir', 'x.gguf'), sparsity: 2, method: 'x' }).code).toBe('CHESS_UNKNOWN_METHOD');
  });
});

describe('valid options', () => {
  it('defaults filled in, numbers parsed from strings, out made absolute', () => {
    expect(validateCompileOptions({ out: 'relative.gguf' })).toEqual({
      out: join(process.cwd(), 'relative.gguf'),
      method: 'chess+',
      statistic: 'rms',
      sparsity: 0.5,
      layout: 'column-blocks',
      transposedType: 'q8_0',
      calibrationTokens: 6144,
      refineTokens: 4096,
      refineIterations: 1,
    });
    expect(
      validateCompileOptions({ out, model, method: 'teal', sparsity: '0.25', layout: 'transposed', transposedType: 'q4_0', refineTokens: '0', calibrationTokens: '512', refineIterations: 2 }),
    ).toMatchObject({ model, method: 'teal', sparsity: 0.25, layout: 'transposed', transposedType: 'q4_0', refineTokens: 0, calibrationTokens: 512, refineIterations: 2 });
  });

  it('out is optional when no file is written (IR in, IR out)', () => {
    expect(validateCompileOptions({ method: 'cats' }, { needsOut: false })).not.toHaveProperty('out');
  });
});
