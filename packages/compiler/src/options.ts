/**
 * The options of `compile`, as one schema, validated once before any work:
 * types, ranges, the relations between options, and the files they name.
 * Every error is a UsageError with a stable code (docs/errors.md) whose
 * message starts with the option's name: the key (`sparsity`) by default, or
 * whatever `optionName` makes of it (the CLI's `--sparsity`).
 *
 * Numbers may come as strings (the command line); defaults are filled in.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { LAYOUTS, type Layout, STATISTICS, type Statistic, TRANSPOSED_TYPES, isLayout, isStatistic } from '@chess/contract';
import { UsageError } from '@chess/core';
import type { DType } from '@chess/ir';
import { type Method, isKnownMethod, methodLayout, methodNames } from '@chess/pass-chess';
import { COMPILE_DEFAULTS } from './defaults.ts';

export interface CompileOptions {
  /** Dense source GGUF; absent: the default model (fetched and verified). */
  readonly model?: string;
  /** Output sparse GGUF (absolute; written atomically). Required by `compile`, not by `compileModule`. */
  readonly out?: string;
  readonly method: Method;
  /** Per-channel statistic of chess / chess+ (cats and teal record none). */
  readonly statistic: Statistic;
  /** Target fraction of dropped elements in every thresholded tensor, in [0, 1) (uniform methods). */
  readonly sparsity: number;
  /** Budget methods only: fraction of the dense model's weight bytes a decoded token may read, in (0, 1]. */
  readonly budget?: number;
  /** Storage layout of the input-sparse projections. */
  readonly layout: Layout;
  /** Storage type of transposed projections (used with layout `transposed` only). */
  readonly transposedType: DType;
  /** A calibration profile of this model; absent: calibrate first. */
  readonly profile?: string;
  /** Without a profile: tokens of the calibration. */
  readonly calibrationTokens: number;
  /** Tokens each refinement measurement evaluates on the sparse model; 0: no refinement. */
  readonly refineTokens: number;
  readonly refineIterations: number;
}

/** What callers pass (the command line passes strings): every option but `out` has a default. */
export interface CompileInput {
  readonly model?: string | undefined;
  /** Required. */
  readonly out?: string | undefined;
  readonly method?: string | undefined;
  readonly statistic?: string | undefined;
  readonly sparsity?: number | string | undefined;
  readonly budget?: number | string | undefined;
  readonly layout?: string | undefined;
  readonly transposedType?: string | undefined;
  readonly profile?: string | undefined;
  readonly calibrationTokens?: number | string | undefined;
  readonly refineTokens?: number | string | undefined;
  readonly refineIterations?: number | string | undefined;
}


const MAX_TOKENS = 2 ** 31 - 1;
const MAX_REFINE_ITERATIONS = 10;

type Parsed<T> = { readonly value: T } | { readonly code: string; readonly message: string };
const ok = <T>(value: T): Parsed<T> => ({ value });
const bad = (code: string, message: string): Parsed<never> => ({ code, message });

/** A field: absent (undefined) takes the default; otherwise `parse` decides. Issues carry the stable code. */
function field<T>(parse: (raw: unknown) => Parsed<T>, fallback?: () => T) {
  return z.unknown().transform((raw, ctx): T => {
    if (raw === undefined && fallback) return fallback();
    const r = parse(raw);
    if ('value' in r) return r.value;
    ctx.addIssue({ code: 'custom', message: r.message, params: { code: r.code } });
    return z.NEVER;
  });
}

const text = (raw: unknown) => (typeof raw === 'string' ? raw : String(raw));

function numberIn(code: string, raw: unknown, accept: (n: number) => boolean, expected: string): Parsed<number> {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
  return Number.isFinite(n) && accept(n) ? ok(n) : bad(code, `expected ${expected}, got '${text(raw)}'`);
}

const integer = (min: number, max: number) =>
  field(
    (raw) => numberIn('TRANSFORM_BAD_OPTION', raw, (n) => Number.isInteger(n) && n >= min && n <= max, `an integer in [${min}, ${max}]`),
  );

const existingFile = (code: string, hint: string) =>
  field((raw) => {
    const path = text(raw);
    return path !== '' && existsSync(path) ? ok(path) : bad(code, `${path} does not exist${hint}`);
  });

const schema = z
  .object({
    method: field(
      (raw) => (isKnownMethod(text(raw)) ? ok(text(raw) as Method) : bad('CHESS_UNKNOWN_METHOD', `unknown method '${text(raw)}'; valid methods: ${methodNames().join(', ')}`)),
      () => COMPILE_DEFAULTS.method,
    ),
    statistic: field(
      (raw) => (isStatistic(text(raw)) ? ok(text(raw) as Statistic) : bad('CHESS_UNKNOWN_STATISTIC', `unknown statistic '${text(raw)}'; valid statistics: ${STATISTICS.join(', ')}`)),
      () => COMPILE_DEFAULTS.statistic,
    ),
    sparsity: field((raw) => numberIn('CHESS_BAD_SPARSITY', raw, (n) => n >= 0 && n < 1, 'a number in [0, 1)'), () => COMPILE_DEFAULTS.sparsity),
    // no default: only budget methods take one, and they need it
    budget: field((raw) => numberIn('CHESS_BAD_BUDGET', raw, (n) => n > 0 && n <= 1, "a fraction of the dense model's weight bytes per token in (0, 1]")).optional(),
    layout: field(
      (raw) => (isLayout(text(raw)) ? ok(text(raw) as Layout) : bad('CHESS_BAD_LAYOUT', `unknown layout '${text(raw)}'; valid layouts: ${LAYOUTS.join(', ')}`)),
      () => COMPILE_DEFAULTS.layout,
    ),
    // no default here: whether it was given matters (below)
    transposedType: field((raw) =>
      (TRANSPOSED_TYPES as readonly string[]).includes(text(raw))
        ? ok(text(raw) as DType)
        : bad('CHESS_BAD_TRANSPOSED_TYPE', `transposed type '${text(raw)}' is not supported; valid: ${TRANSPOSED_TYPES.join(', ')}`),
    ).optional(),
    calibrationTokens: integer(1, MAX_TOKENS).optional().transform((n) => n ?? COMPILE_DEFAULTS.calibrationTokens),
    refineTokens: integer(0, MAX_TOKENS).optional().transform((n) => n ?? COMPILE_DEFAULTS.refineTokens),
    refineIterations: integer(1, MAX_REFINE_ITERATIONS).optional().transform((n) => n ?? COMPILE_DEFAULTS.refineIterations),
    model: existingFile('TRANSFORM_BAD_MODEL', '').optional(),
    profile: existingFile('TRANSFORM_BAD_PROFILE', " (make one with 'chess calibrate')").optional(),
    out: field((raw) => {
      if (text(raw) === '') return bad('TRANSFORM_BAD_OUT', 'an empty path');
      const out = resolve(text(raw));
      const dir = dirname(out);
      return existsSync(dir) && statSync(dir).isDirectory() ? ok(out) : bad('TRANSFORM_BAD_OUT', `directory ${dir} does not exist`);
    }).optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    const budgeted = methodLayout(o.method).allocation === 'budget';
    if (o.budget !== undefined && !budgeted) {
      ctx.addIssue({
        code: 'custom',
        path: ['budget'],
        message: `a byte budget applies only to a budget method (${methodNames().filter((m) => methodLayout(m).allocation === 'budget').join(', ')}), not to '${o.method}' (which takes a sparsity)`,
        params: { code: 'CHESS_BUDGET_METHOD' },
      });
    }
    if (budgeted && o.layout !== 'column-blocks') {
      ctx.addIssue({
        code: 'custom',
        path: ['layout'],
        message: `method '${o.method}' budgets the bytes of the column-block layout (docs/gguf-sparse.md §7); '${o.layout}' is not supported with it`,
        params: { code: 'CHESS_LAYOUT_CONFLICT' },
      });
    }
    if (o.budget === undefined && budgeted) {
      ctx.addIssue({
        code: 'custom',
        path: ['budget'],
        message: `required by method '${o.method}': the fraction of the dense model's weight bytes a decoded token may read, in (0, 1]`,
        params: { code: 'CHESS_BUDGET_REQUIRED' },
      });
    }
    if (o.transposedType !== undefined && o.layout !== 'transposed') {
      ctx.addIssue({
        code: 'custom',
        path: ['transposedType'],
        message: `a transposed type ('${o.transposedType}') applies only to the transposed layout, not to '${o.layout}' (which keeps the source's type); choose the transposed layout or drop the type`,
        params: { code: 'CHESS_LAYOUT_CONFLICT' },
      });
    }
  });

/** The key itself: how a library caller names an option. */
export const keyName = (key: keyof CompileOptions): string => key;

export interface ValidateOptions {
  /** How messages name an option; default: its key. */
  readonly optionName?: (key: keyof CompileOptions) => string;
  /** `out` is required (a file is to be written). Default true. */
  readonly needsOut?: boolean;
}

/**
 * Validate and complete compile options: the one check of them. The first
 * problem (in the order of the schema) is thrown as a UsageError naming the
 * option; nothing is read or written but the existence of the named files.
 */
export function validateCompileOptions(input: CompileInput, how: ValidateOptions = {}): CompileOptions {
  const optionName = how.optionName ?? keyName;
  const result = schema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      const names = issue.keys.join(', ');
      throw new UsageError('TRANSFORM_BAD_OPTION', `unknown option${issue.keys.length > 1 ? 's' : ''} ${names}; options: ${Object.keys(schema.shape).join(', ')}`, { options: issue.keys });
    }
    const key = issue.path[0] as keyof CompileOptions;
    const code = issue.code === 'custom' ? ((issue.params as { code?: string } | undefined)?.code ?? 'TRANSFORM_BAD_OPTION') : 'TRANSFORM_BAD_OPTION';
    const name = optionName(key);
    throw new UsageError(code, `${name}: ${issue.message}`, { option: name, value: (input as Record<string, unknown>)[key] });
  }
  const { model, profile, out, transposedType, budget, ...rest } = result.data;
  if (budget !== undefined && input.sparsity !== undefined) {
    const name = optionName('sparsity');
    throw new UsageError('CHESS_BUDGET_METHOD', `${name}: method '${rest.method}' allocates sparsity per layer and site from ${optionName('budget')}; drop ${name}`, { option: name, value: input.sparsity });
  }
  if (out === undefined && (how.needsOut ?? true)) {
    throw new UsageError('TRANSFORM_BAD_OUT', `${optionName('out')}: required: the sparse GGUF to write`, { option: optionName('out') });
  }
  return {
    ...rest,
    ...(model !== undefined && { model }),
    ...(profile !== undefined && { profile }),
    ...(out !== undefined && { out }),
    ...(budget !== undefined && { budget }),
    transposedType: transposedType ?? COMPILE_DEFAULTS.transposedType,
  };
}
