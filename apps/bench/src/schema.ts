import { readFileSync } from 'node:fs';
import { ChessError } from '@chess/core';
import { z } from 'zod';
import { deviceBenchResultSchema, deviceBenchToLlamaBench } from './device-bench.ts';

/**
 * Result files written by `chess eval` and `chess bench`, read by `chess report`.
 * A file is validated as a whole; an error names the file and the first
 * offending field path.
 */

const finite = z.number().refine(Number.isFinite, { message: 'must be a finite number' });
/** Metrics that may be undefined on tiny samples (stderr of one document) are stored as null. */
const maybeNumber = z.number().nullable();

export const runtimeSchema = z.object({
  name: z.string(),
  buildType: z.string(),
  llamaCppRelease: z.string(),
  binary: z.string(),
  systemInfo: z.string(),
});

export const modelInfoSchema = z.object({
  path: z.string(),
  fileName: z.string(),
  sizeBytes: z.number().int().nonnegative(),
  /** `chess.method` from the GGUF metadata, or 'dense'. */
  method: z.string(),
  /** `chess.target_sparsity` from the GGUF metadata, or 0. */
  sparsity: z.number().min(0).max(1),
  architecture: z.string().nullable(),
});
export type ModelInfo = z.infer<typeof modelInfoSchema>;

/** Achieved sparsity per counter site and layer (null: the layer has no such site), and what it means for weight traffic. */
export const sparsityDetailSchema = z.object({
  /** Which tokens the counters cover. */
  scope: z.string(),
  sites: z.record(z.string(), z.array(z.number().min(0).max(1).nullable())),
  /** Fraction of the GGUF's tensor bytes read per token at this achieved sparsity (apps/bench/src/sparsity.ts). */
  weightBytesReadFraction: z.number().min(0).max(1),
});
export type SparsityDetail = z.infer<typeof sparsityDetailSchema>;

const metricSchema = z.object({ value: finite, stderr: maybeNumber });

export const taskResultSchema = z.object({
  documents: z.number().int().positive(),
  acc: metricSchema,
  accNorm: metricSchema,
  seconds: z.number().nonnegative(),
  scoredTokens: z.number().int().nonnegative(),
  /** The metric lm-eval reports for the task (paired.ts PRIMARY_METRIC); absent in older files. */
  primaryMetric: z.enum(['acc', 'accNorm']).optional(),
  /** Per-document 0/1 scores and predicted choices, in document order: what paired comparisons resample (absent in older files). */
  perDocument: z
    .object({
      docId: z.array(z.number().int().nonnegative()),
      acc: z.array(z.union([z.literal(0), z.literal(1)])),
      accNorm: z.array(z.union([z.literal(0), z.literal(1)])),
      pred: z.array(z.number().int().nonnegative()),
      predNorm: z.array(z.number().int().nonnegative()),
    })
    .refine((p) => [p.acc, p.accNorm, p.pred, p.predNorm].every((a) => a.length === p.docId.length), { message: 'per-document arrays differ in length' })
    .optional(),
});

export const perplexityResultSchema = z.object({
  source: z.string(),
  ctx: z.number().int().positive(),
  windows: z.number().int().positive(),
  windowsAvailable: z.number().int().positive(),
  textTokens: z.number().int().positive(),
  scoredTokens: z.number().int().positive(),
  perplexity: finite,
  perplexityStderr: maybeNumber,
  meanNll: finite,
  seconds: z.number().nonnegative(),
});

const intervalSchema = z.object({ value: finite, low: maybeNumber, high: maybeNumber });

/** `chess eval --reference`: divergence from the dense model on held-out text (divergence.ts). */
export const divergenceResultSchema = z.object({
  reference: modelInfoSchema,
  source: z.string(),
  ctx: z.number().int().positive(),
  windows: z.number().int().positive(),
  positions: z.number().int().positive(),
  meanKl: intervalSchema,
  meanKlStderr: maybeNumber,
  p99Kl: finite,
  maxKl: finite,
  sameTop: intervalSchema,
  pplRatio: intervalSchema,
  perplexity: finite,
  referencePerplexity: finite,
  /** How the intervals were formed. */
  interval: z.string(),
  seconds: z.number().nonnegative(),
});
export type DivergenceResult = z.infer<typeof divergenceResultSchema>;

export const evalResultSchema = z.object({
  kind: z.literal('chess-eval'),
  version: z.literal(1),
  createdAt: z.string(),
  model: modelInfoSchema,
  runtime: runtimeSchema,
  settings: z.object({
    tasks: z.array(z.string()),
    limit: z.number().int().positive().nullable(),
    threads: z.number().int().positive().nullable(),
    contextSize: z.number().int().positive(),
    /** `native` (chess-score: shared prefixes evaluated once, documents batched) or `node` (node-llama-cpp, one request at a time); absent in older files. */
    scorer: z.enum(['native', 'node']).optional(),
  }),
  note: z.string(),
  tasks: z.record(z.string(), taskResultSchema),
  average: z
    .object({
      tasks: z.array(z.string()),
      acc: metricSchema,
      accNorm: metricSchema,
      /** Mean over tasks of each task's primary metric (absent in older files). */
      primary: metricSchema.optional(),
    })
    .nullable(),
  perplexity: perplexityResultSchema.nullable(),
  /** Weight bytes a token reads (tensor table and achieved sparsity, sparsity.ts weightTraffic) and the file's tensor bytes; referencePerToken: the --reference model's, dense (absent in older files). */
  weightBytes: z
    .object({ total: z.number().nonnegative(), perToken: z.number().nonnegative(), referencePerToken: z.number().positive().nullable() })
    .nullable()
    .optional(),
  /** KL divergence and perplexity ratio to a reference model (chess eval --reference); absent otherwise. */
  divergence: divergenceResultSchema.nullable().optional(),
  /** Achieved sparsity per layer (zeroed / seen over the layer's thresholded activations), from the sparse runtime's counters; null for dense runs. */
  layerSparsity: z.array(z.number().min(0).max(1)).nullable(),
  /** Per-site detail of the same counters, and the weight bytes read per token they imply (absent in older files). */
  sparsity: sparsityDetailSchema.nullable().optional(),
});
export type EvalResult = z.infer<typeof evalResultSchema>;

const spreadSchema = z.object({ median: finite, min: finite, max: finite });
export type Spread = z.infer<typeof spreadSchema>;

export const benchMeasurementSchema = z.object({
  model: z.number().int().nonnegative(),
  threads: z.number().int().positive(),
  repeat: z.number().int().nonnegative(),
  promptTokens: z.number().int().positive(),
  generatedTokens: z.number().int().positive(),
  prefillTokPerSec: finite,
  decodeTokPerSec: finite,
  timeToFirstTokenMs: finite,
  loadMs: finite,
  peakRssBytes: z.number().int().nonnegative(),
  /** Fraction of weight bytes read per decoded token (sparse runtime counters); null for dense runs. */
  weightBytesReadFraction: z.number().min(0).max(1).nullable(),
  /** Per-layer achieved sparsity reported by the sparse runtime (decoded tokens only); null for dense runs. */
  layerSparsity: z.array(z.number().min(0).max(1)).nullable(),
  /** Per-site detail (decoded tokens only); absent in older files. */
  sparsity: sparsityDetailSchema.nullable().optional(),
});
export type BenchMeasurement = z.infer<typeof benchMeasurementSchema>;

export const benchSummarySchema = z.object({
  model: z.number().int().nonnegative(),
  threads: z.number().int().positive(),
  decodeTokPerSec: spreadSchema,
  prefillTokPerSec: spreadSchema,
  timeToFirstTokenMs: spreadSchema,
  peakRssBytes: z.number().int().nonnegative(),
  weightBytesReadFraction: z.number().nullable(),
  /** Per-repeat ratio to the first model in the same round (same threads): median/min/max; null for the first model. */
  decodeSpeedup: spreadSchema.nullable(),
  prefillSpeedup: spreadSchema.nullable(),
});
export type BenchSummary = z.infer<typeof benchSummarySchema>;

export const benchResultSchema = z.object({
  kind: z.literal('chess-bench'),
  version: z.literal(1),
  createdAt: z.string(),
  machine: z.object({ cpu: z.string(), cores: z.number().int().positive(), memoryBytes: z.number().nonnegative() }),
  settings: z.object({
    threads: z.array(z.number().int().positive()),
    tokens: z.number().int().positive(),
    promptTokens: z.number().int().positive(),
    repeat: z.number().int().positive(),
  }),
  models: z.array(modelInfoSchema.extend({ runtime: runtimeSchema })).min(1),
  measurements: z.array(benchMeasurementSchema),
  summary: z.array(benchSummarySchema),
});
export type BenchResult = z.infer<typeof benchResultSchema>;

/** `chess llama-bench`: llama.cpp's llama-bench, a stock and the patched build, models interleaved per round (llama-bench.ts). */
export const llamaBenchResultSchema = z.object({
  kind: z.literal('chess-llama-bench'),
  version: z.literal(1),
  createdAt: z.string(),
  finishedAt: z.string(),
  machine: z.object({ cpu: z.string(), cores: z.number().int().positive(), memoryBytes: z.number().nonnegative() }),
  /** `git rev-parse HEAD` of the checkout (`-dirty` with local changes), null outside one. */
  gitRevision: z.string().nullable(),
  settings: z.object({
    threads: z.number().int().positive(),
    tg: z.number().int().positive(),
    pp: z.number().int().nonnegative(),
    rounds: z.number().int().positive(),
  }),
  binaries: z.object({ stock: z.string().nullable(), patched: z.string().nullable() }),
  models: z
    .array(
      modelInfoSchema.extend({
        build: z.enum(['stock', 'patched']),
        /** How the input-sparse projections are stored: `_cb` column blocks, `_t` transposed, or none. */
        layout: z.enum(['dense', 'column-blocks', 'transposed', 'column-blocks+transposed']),
        /** Weight bytes a decoded token reads at the achieved sparsity (docs/gguf-sparse.md §7). */
        weightBytesPerToken: z.number().nonnegative(),
        /** The first model's bytes per token over this one's: the speedup of a purely memory-bound decode. */
        byteIdealSpeedup: finite,
        /** Mean over layers of the achieved sparsity of the decode runs (runtime counters); null for stock runs. */
        achievedSparsity: z.number().min(0).max(1).nullable(),
      }),
    )
    .min(1),
  samples: z.array(z.object({ model: z.number().int().nonnegative(), round: z.number().int().nonnegative(), test: z.enum(['tg', 'pp']), tokensPerSecond: finite })),
  summary: z.array(
    z.object({
      model: z.number().int().nonnegative(),
      decodeTokPerSec: spreadSchema,
      prefillTokPerSec: spreadSchema.nullable(),
      /** Per-round ratio to the first model: median/min/max; null for the first model. */
      decodeSpeedup: spreadSchema.nullable(),
      prefillSpeedup: spreadSchema.nullable(),
    }),
  ),
});
export type LlamaBenchResult = z.infer<typeof llamaBenchResultSchema>;

export type AnyResult =
  | { kind: 'eval'; file: string; result: EvalResult }
  | { kind: 'bench'; file: string; result: BenchResult }
  | { kind: 'llama-bench'; file: string; result: LlamaBenchResult };

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

/** Validate parsed JSON as an eval or bench result; errors name the file and the field. */
export function validateResult(file: string, value: unknown): AnyResult {
  const kind = (value as { kind?: unknown } | null)?.kind;
  if (kind === 'chess-device-bench') return validateDeviceResult(file, value);
  if (kind !== 'chess-eval' && kind !== 'chess-bench' && kind !== 'chess-llama-bench') {
    throw new ChessError(
      'REPORT_BAD_RESULT',
      `${file}: field 'kind' must be 'chess-eval', 'chess-bench', 'chess-llama-bench' or 'chess-device-bench' (a file written by chess eval, chess bench or chess llama-bench with --json, or by a bundle's ./run bench), got ${JSON.stringify(kind)}`,
      { file, field: 'kind' },
    );
  }
  const schema = kind === 'chess-eval' ? evalResultSchema : kind === 'chess-bench' ? benchResultSchema : llamaBenchResultSchema;
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = formatPath(issue.path);
    throw new ChessError('REPORT_BAD_RESULT', `${file}: field '${field}': ${issue.message}`, { file, field, issues: parsed.error.issues.length });
  }
  if (kind === 'chess-eval') return { kind: 'eval', file, result: parsed.data as EvalResult };
  if (kind === 'chess-bench') return { kind: 'bench', file, result: parsed.data as BenchResult };
  return { kind: 'llama-bench', file, result: parsed.data as LlamaBenchResult };
}

/** A bundle's `./run bench` result (device-bench.ts), read as a llama-bench result labelled with the device's CPU. */
function validateDeviceResult(file: string, value: unknown): AnyResult {
  const parsed = deviceBenchResultSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = formatPath(issue.path);
    throw new ChessError('REPORT_BAD_RESULT', `${file}: field '${field}': ${issue.message}`, { file, field, issues: parsed.error.issues.length });
  }
  try {
    return { kind: 'llama-bench', file, result: deviceBenchToLlamaBench(parsed.data, file) };
  } catch (error) {
    if (error instanceof ChessError) throw error;
    throw new ChessError('REPORT_BAD_RESULT', (error as Error).message, { file });
  }
}

export function readResultFile(file: string): AnyResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ChessError('REPORT_FILE_UNREADABLE', `${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { file });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ChessError('REPORT_BAD_RESULT', `${file}: not valid JSON (${(error as Error).message})`, { file });
  }
  return validateResult(file, value);
}
