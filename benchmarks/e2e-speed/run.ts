/**
 * e2e-speed: end-to-end decode (tg) and prefill (pp) speed of compiled sparse
 * models against the dense model, on a synthetic 7B shape, through llama-bench.
 *
 *   pnpm -C benchmarks e2e-speed [--shape llama2-7b] [--types q4_0,q4_k_m,f16] [--methods chess+,teal]
 *       [--sparsity 0.5] [--layout column-blocks | --layout transposed --transposed-type q8_0|same|...] [--threads 2] [--tg 32] [--pp 512]
 *       [--rounds 3] [--calibration-tokens 1024] [--refine-tokens 512] [--layers N] [--read-ceiling on|off]
 *       [--x86 avx512|avx2vnni|avx2] [--json OUT]
 *
 * --x86 avx2: both llama-bench builds (stock and patched) are made for AVX2 + FMA + F16C only
 * (no AVX-512) and our kernels run their avx2 table (CHESS_KERNEL_ISA=avx2): what an
 * AVX2-only CPU (older x86 laptops) gets, measured on this machine. --x86 avx2vnni: the same
 * plus AVX-VNNI in both builds (Intel client CPUs since Alder Lake), our avx2vnni table.
 * Default json then results/e2e-speed-<level>.json. The default is this machine's level (/proc/cpuinfo), so that
 * an AVX2-only machine measures its own builds instead of dying on AVX-512 instructions.
 *
 * A 7B F16 model is 13.5 GB: three of them do not stay in this machine's page cache (24 GB),
 * so the F16 run uses fewer blocks (`--types f16 --layers 8 --json results/e2e-speed-f16.json`);
 * the ideal speedup printed beside each result accounts for the larger share of the output matrix.
 *
 * Per weight type: a random-weight model of the shape (`chess model synth`, cached; q4_k_m is
 * llama.cpp's own mix: an F16 synth through the bundled tree's llama-quantize), calibrated
 * through the patched runtime on the bundled calibration text (`chess calibrate`; random
 * weights, so any text gives the same statistics) and compiled by `chess transform` for each
 * method with its DEFAULT options (the layout users get; `--layout` and `--transposed-type`
 * are passed on only when given here): the real compiler output, not hand-made thresholds.
 * Profiles and compiled models are cached by the compiler's sources too (a changed compiler
 * recompiles). Then, in each round and in rotated order, one llama-bench process per (build, model, test): the stock llama-bench
 * (pristine tree, built like the patched one: at the host's level both are GGML_NATIVE shared
 * builds with the same release flags, at another --x86 level both are static fixed-level builds)
 * on the dense model, the patched one on the dense model (the patch must cost
 * nothing) and on every sparse model. Speedups are paired per round against the stock dense
 * run of the same round (the machine is shared and noisy), reported as median with min and max.
 *
 * The patched runs write the runtime's achieved-sparsity counters (CHESS_SPARSITY_REPORT);
 * with the file's own tensor table they give the weight bytes each decoded token reads in the
 * file's layout (for column blocks: per group with a kept channel, its scale section and the
 * kept columns; @chess/bench weightTraffic), hence the layout's byte-ideal speedup of a
 * memory-bound decode (dense bytes / sparse bytes) and our efficiency against it.
 *
 * Read ceiling (`--read-ceiling on`, the default): each sparse model also decodes with
 * CHESS_READ_CEILING=1, where the one-token sparse products read their rows and compute nothing,
 * keeping a pseudo-random share of channels at the target sparsity (CHESS_READ_CEILING_SPARSITY;
 * zero outputs would otherwise change which rows later products keep). Its speed, rescaled from
 * the bytes it read to the bytes the real run read, is what any arithmetic could reach on this
 * machine for that access pattern: `read_ceiling_decode_speedup` and `efficiency_vs_read_ceiling`.
 *
 * Every result names the CPU, the date and the git revision it was measured with.
 */
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chessKernelIsa, ensurePatchedTool, hostX86Level, parseX86Level, type X86Level } from '@chess/backend-llamacpp';
import {
  compilerSourcesHash,
  ensureStockTool,
  gitRevision,
  llamaBenchOnce,
  machineInfo,
  readSparsityReport,
  readWeightTable,
  round4,
  siteSparsity,
  spread,
  weightLayout,
  weightTraffic,
  type SparsityCounters,
  type WeightTensor,
} from '@chess/bench';
import { ggmlTypeName } from '@chess/gguf';
import { ChessError, UsageError, cachePath, repoRoot, writeFileAtomic } from '@chess/core';
import { SHAPES, ensureSynthModel, parseSynthTarget, synthCacheName } from '@chess/models';

type Method = 'chess' | 'chess+' | 'cats' | 'teal';
const METHODS: readonly Method[] = ['chess', 'chess+', 'cats', 'teal'];

interface Options {
  shape: string;
  types: string[];
  methods: Method[];
  sparsity: number;
  /** `chess transform --layout` (undefined: the compiler's default). */
  layout?: 'column-blocks' | 'transposed';
  /** `chess transform --transposed-type` with --layout transposed; 'same': the model's own type. */
  transposedType?: string;
  threads: number;
  tg: number;
  x86: X86Level;
  pp: number;
  rounds: number;
  calibrationTokens: number;
  /** Tokens of calibration text run on the partially sparsified model to refine its thresholds (transform --refine-tokens). */
  refineTokens: number;
  /** Keep only this many blocks (default: the shape's); per-layer work is what sparsity changes. */
  layers?: number;
  /** Also decode every sparse model in read-ceiling mode. */
  readCeiling: boolean;
  json: string;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    shape: 'llama2-7b',
    // the types users download; F16 runs on fewer layers (see above)
    types: ['q4_0', 'q4_k_m'],
    methods: ['chess+', 'teal'],
    sparsity: 0.5,
    threads: 2,
    tg: 32,
    pp: 512,
    rounds: 3,
    calibrationTokens: 1024,
    refineTokens: 512,
    readCeiling: true,
    x86: hostX86Level() ?? 'avx512',
    json: '',
  };
  const positive = (flag: string, value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new UsageError('BENCH_BAD_ARGUMENT', `${flag} ${value}: expected a positive integer`, { flag, value });
    return n;
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i]!, argv[i + 1]];
    if (value === undefined) throw new UsageError('BENCH_BAD_ARGUMENT', `${flag} needs a value`, { flag });
    switch (flag) {
      case '--x86':
        options.x86 = parseX86Level(value);
        break;
      case '--shape':
        if (!(value in SHAPES)) throw new UsageError('BENCH_BAD_ARGUMENT', `--shape ${value}: expected one of ${Object.keys(SHAPES).join(', ')}`, { value });
        options.shape = value;
        break;
      case '--types':
        options.types = value.split(',');
        for (const t of options.types) parseSynthTarget(t);
        break;
      case '--methods':
        options.methods = value.split(',') as Method[];
        for (const m of options.methods) {
          if (!METHODS.includes(m)) throw new UsageError('BENCH_BAD_ARGUMENT', `--methods: unknown method '${m}', expected ${METHODS.join(', ')}`, { value });
        }
        break;
      case '--sparsity': {
        const s = Number(value);
        if (!(s >= 0 && s < 1)) throw new UsageError('BENCH_BAD_ARGUMENT', `--sparsity ${value}: expected a number in [0, 1)`, { value });
        options.sparsity = s;
        break;
      }
      case '--layout':
        if (value !== 'column-blocks' && value !== 'transposed') throw new UsageError('BENCH_BAD_ARGUMENT', `--layout ${value}: expected column-blocks or transposed`, { flag, value });
        options.layout = value;
        break;
      case '--transposed-type':
        options.transposedType = value;
        break;
      case '--threads':
        options.threads = positive(flag, value);
        break;
      case '--tg':
        options.tg = positive(flag, value);
        break;
      case '--pp':
        options.pp = positive(flag, value);
        break;
      case '--read-ceiling':
        if (value !== 'on' && value !== 'off') throw new UsageError('BENCH_BAD_ARGUMENT', `--read-ceiling ${value}: expected on or off`, { flag, value });
        options.readCeiling = value === 'on';
        break;
      case '--rounds':
        options.rounds = positive(flag, value);
        break;
      case '--layers':
        options.layers = positive(flag, value);
        break;
      case '--refine-tokens': {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 0) throw new UsageError('BENCH_BAD_ARGUMENT', `--refine-tokens ${value}: expected an integer >= 0`, { value });
        options.refineTokens = n;
        break;
      }
      case '--calibration-tokens':
        options.calibrationTokens = positive(flag, value);
        break;
      case '--json':
        options.json = resolve(value);
        break;
      default:
        throw new UsageError('BENCH_BAD_ARGUMENT', `unknown option ${flag}`, { flag });
    }
  }
  if (options.transposedType !== undefined && options.layout !== 'transposed') {
    throw new UsageError('BENCH_BAD_ARGUMENT', '--transposed-type applies to --layout transposed only (the default layout keeps the source type)', {});
  }
  if (!options.json) options.json = join(repoRoot(), 'benchmarks', 'results', options.x86 === 'avx512' ? 'e2e-speed.json' : `e2e-speed-${options.x86}.json`);
  return options;
}

const log = (line: string): void => void process.stderr.write(`[e2e-speed] ${line}\n`);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, echo = false): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      const text = d.toString();
      stderr = (stderr + text).slice(-64_000);
      if (echo) process.stderr.write(text);
    });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
  });
}

/** `pnpm chess ...` from the repository root; its last stdout line is the output path. */
async function chess(args: string[]): Promise<void> {
  const result = await run('pnpm', ['--silent', '-C', repoRoot(), 'chess', ...args], process.env, true);
  if (result.code !== 0) throw new ChessError('BENCH_STEP_FAILED', `chess ${args.join(' ')} failed (exit ${result.code})`, { args });
}

/** What --layout / --transposed-type ask of `chess transform`: nothing by default. */
function layoutArgs(options: Options, type: string): { args: string[]; key: string } {
  if (options.layout === undefined) return { args: [], key: 'default' };
  if (options.layout === 'column-blocks') return { args: ['--layout', 'column-blocks'], key: 'cb' };
  const transposed = options.transposedType === undefined ? undefined : options.transposedType === 'same' ? type : options.transposedType;
  return { args: ['--layout', 'transposed', ...(transposed ? ['--transposed-type', transposed] : [])], key: `t-${transposed ?? 'default'}` };
}

/** The dense random-weight model (the synthetic-model cache), its profile and one compiled model per method (cached here). */
async function prepareModels(options: Options, type: string): Promise<{ dense: string; sparse: Map<Method, string> }> {
  const dir = cachePath('bench-models');
  // `chess calibrate` / `transform` write into it and refuse a missing directory (a cold cache)
  await mkdir(dir, { recursive: true });
  const base = SHAPES[options.shape]!;
  const shape = options.layers === undefined ? base : { ...base, name: `${base.name}-${options.layers}l`, nLayer: options.layers };
  const target = parseSynthTarget(type);
  const last = { synth: -10, quantize: -10 };
  const { path: dense } = await ensureSynthModel({
    shape,
    target,
    seed: 0,
    llamaQuantize: () => ensureStockTool('llama-quantize', log, options.x86),
    log,
    progress: (phase, done, total) => {
      const pct = Math.floor((100 * done) / total);
      if (pct >= last[phase] + 10) log(`  ${phase} ${(last[phase] = pct)}%`);
    },
  });
  const stem = `${synthCacheName(shape, target, 0).replace(/\.gguf$/, '')}.c${compilerSourcesHash()}`;
  const profile = join(dir, `${stem}.t${options.calibrationTokens}.profile`);
  if (!existsSync(profile)) {
    log(`calibrating ${dense} on ${options.calibrationTokens} tokens`);
    await chess(['calibrate', '--model', dense, '--tokens', String(options.calibrationTokens), '--ctx', '256', '--out', profile]);
  }
  const layout = layoutArgs(options, type);
  const sparse = new Map<Method, string>();
  for (const method of options.methods) {
    const out = join(dir, `${stem}.t${options.calibrationTokens}.r${options.refineTokens}.${method}.s${options.sparsity}.${layout.key}.gguf`);
    if (!existsSync(out)) {
      log(`compiling ${method} at ${options.sparsity} (layout: ${layout.args.length > 0 ? layout.args.join(' ') : "the compiler's default"}) -> ${out}`);
      await chess([
        'transform',
        '--model', dense,
        '--profile', profile,
        '--method', method,
        '--sparsity', String(options.sparsity),
        ...layout.args,
        '--refine-tokens', String(options.refineTokens),
        '--out', out,
      ]);
    }
    sparse.set(method, out);
  }
  return { dense, sparse };
}

interface Sample {
  round: number;
  tokensPerSecond: number;
}

interface Variant {
  /** e.g. "stock dense", "patched chess+" */
  label: string;
  build: 'stock' | 'patched';
  method: 'dense' | Method;
  model: string;
  tg: Sample[];
  pp: Sample[];
  /** Counters of the last decode run (cumulative over its warmup and timed tokens). */
  counters?: SparsityCounters;
  /** Read-ceiling mode (decode only): the variant whose arithmetic this one leaves out. */
  ceilingOf?: Variant;
}

function llamaBench(binary: string, variant: Variant, test: 'tg' | 'pp', options: Options, reportPath?: string): Promise<number> {
  const env = { ...process.env };
  delete env.CHESS_READ_CEILING;
  delete env.CHESS_READ_CEILING_SPARSITY;
  const kernelIsa = chessKernelIsa(options.x86); // else the best available (or the caller's CHESS_KERNEL_ISA)
  if (kernelIsa) env.CHESS_KERNEL_ISA = kernelIsa;
  if (variant.ceilingOf) {
    env.CHESS_READ_CEILING = '1';
    env.CHESS_READ_CEILING_SPARSITY = String(options.sparsity);
  }
  if (reportPath) env.CHESS_SPARSITY_REPORT = reportPath;
  else delete env.CHESS_SPARSITY_REPORT;
  return llamaBenchOnce({ binary, model: variant.model, test, tokens: test === 'tg' ? options.tg : options.pp, threads: options.threads, env });
}


/** Median, min, max (rounded) and count, from @chess/bench's summary. */
function spreadOf(values: number[]): { median: number; min: number; max: number; n: number } {
  const { median, min, max } = spread(values);
  return { median: round4(median), min: round4(min), max: round4(max), n: values.length };
}

/** Per round, variant tokens/s over the stock dense tokens/s of the same round. */
function pairedRatios(variant: Sample[], baseline: Sample[]): number[] {
  return variant.flatMap((s) => {
    const base = baseline.find((b) => b.round === s.round);
    return base ? [s.tokensPerSecond / base.tokensPerSecond] : [];
  });
}

/** Per site: min, mean, max over the layers that have it. */
function siteSummary(counters: SparsityCounters | undefined): Record<string, { min: number; mean: number; max: number }> {
  const out: Record<string, { min: number; mean: number; max: number }> = {};
  for (const [site, perLayer] of Object.entries(counters ? siteSparsity(counters) : {})) {
    const values = perLayer.filter((v): v is number => v !== null);
    out[site] = { min: round4(Math.min(...values)), mean: round4(values.reduce((a, b) => a + b, 0) / values.length), max: round4(Math.max(...values)) };
  }
  return out;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const started = new Date();
  const loadStart = loadavg();
  const patchedBench = await ensurePatchedTool('llama-bench', options.x86, log);
  const stockBench = await ensureStockTool('llama-bench', log, options.x86);
  log(`stock llama-bench: ${stockBench}`);
  log(`patched llama-bench: ${patchedBench}`);

  const scratch = await mkdtemp(join(tmpdir(), 'chess-e2e-speed-'));
  const results: unknown[] = [];
  try {
    for (const type of options.types) {
      const { dense, sparse } = await prepareModels(options, type);
      const variants: Variant[] = [
        { label: 'stock dense', build: 'stock', method: 'dense', model: dense, tg: [], pp: [] },
        { label: 'patched dense', build: 'patched', method: 'dense', model: dense, tg: [], pp: [] },
        ...[...sparse].map(([method, model]): Variant => ({ label: `patched ${method}`, build: 'patched', method, model, tg: [], pp: [] })),
      ];
      if (options.readCeiling)
        for (const real of variants.filter((v) => v.build === 'patched' && v.method !== 'dense'))
          variants.push({ label: `${real.label} read-ceiling`, build: 'patched', method: real.method, model: real.model, tg: [], pp: [], ceilingOf: real });
      for (let round = 0; round < options.rounds; round++) {
        // rotate the order each round so drift in machine load is spread over all variants
        const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
        for (const variant of order) {
          for (const test of variant.ceilingOf ? (['tg'] as const) : (['tg', 'pp'] as const)) {
            const reportPath = variant.build === 'patched' && test === 'tg' ? join(scratch, `report-${variants.indexOf(variant)}-${round}.json`) : undefined;
            const binary = variant.build === 'stock' ? stockBench : patchedBench;
            const tps = await llamaBench(binary, variant, test, options, reportPath);
            variant[test].push({ round, tokensPerSecond: tps });
            if (reportPath) variant.counters = readSparsityReport(reportPath) ?? undefined;
            log(`${type} round ${round + 1}/${options.rounds} ${variant.label.padEnd(16)} ${test} ${tps.toFixed(3)} tok/s (load ${loadavg()[0]!.toFixed(1)})`);
          }
        }
      }
      const baseline = variants[0]!;
      const tables = new Map<string, WeightTensor[]>();
      for (const variant of variants) if (!tables.has(variant.model)) tables.set(variant.model, await readWeightTable(variant.model));
      const denseBytes = weightTraffic(tables.get(dense)!, null).readBytes;
      // the layout's byte-ideal: bytes a token reads at the achieved sparsity, from the file's own tensor table
      const bytesOf = new Map<Variant, number>();
      for (const variant of variants)
        bytesOf.set(variant, variant.method === 'dense' ? denseBytes : weightTraffic(tables.get(variant.model)!, variant.counters ?? null).readBytes);
      for (const variant of variants) {
        const table = tables.get(variant.model)!;
        const bytes = bytesOf.get(variant)!;
        const ideal = denseBytes / bytes;
        const decode = spreadOf(pairedRatios(variant.tg, baseline.tg));
        // read ceiling of a real sparse variant: the read-ceiling run's speedup, rescaled from the
        // bytes it read to the bytes the real run read (same bandwidth), paired per round
        const ceilingRun = variants.find((v) => v.ceilingOf === variant);
        const ceiling = ceilingRun ? spreadOf(pairedRatios(ceilingRun.tg, baseline.tg).map((r) => (r * bytesOf.get(ceilingRun)!) / bytes)) : null;
        const decodeTps = spreadOf(variant.tg.map((s) => s.tokensPerSecond));
        results.push({
          shape: options.shape,
          type,
          variant: variant.label,
          build: variant.build,
          method: variant.method,
          sparsity_target: variant.method === 'dense' ? 0 : options.sparsity,
          model: variant.model,
          file_bytes: statSync(variant.model).size,
          layout: weightLayout(table),
          // ggml types of the input-sparse projections as stored (column blocks keep the source's)
          sparse_projection_types: [...new Set(table.filter((t) => /_(cb|t)\.weight$/.test(t.name)).map((t) => ggmlTypeName(t.type)))].sort(),
          // read-ceiling runs compute nothing: their speed is a limit, not a result
          read_ceiling_mode: variant.ceilingOf !== undefined,
          decode_tps: decodeTps,
          prefill_tps: variant.ceilingOf ? null : spreadOf(variant.pp.map((s) => s.tokensPerSecond)),
          decode_speedup_vs_stock_dense: decode,
          prefill_speedup_vs_stock_dense: variant.ceilingOf ? null : spreadOf(pairedRatios(variant.pp, baseline.pp)),
          weight_bytes_per_token: Math.round(bytes),
          // weight traffic of the median decode: near the machine's read bandwidth when decoding is memory-bound
          decode_weight_gbps: round4((bytes * decodeTps.median) / 1e9),
          // dense bytes per token over this layout's at the achieved sparsity: the limit of a memory-bound decode
          ideal_decode_speedup: round4(ideal),
          decode_efficiency: round4(decode.median / ideal),
          read_ceiling_decode_speedup: ceiling,
          efficiency_vs_read_ceiling: ceiling ? round4(decode.median / ceiling.median) : null,
          achieved_sparsity: siteSummary(variant.counters),
        });
        const limit = ceiling ? `, read ceiling x${ceiling.median.toFixed(3)} [${ceiling.min.toFixed(3)}, ${ceiling.max.toFixed(3)}]` : '';
        log(
          `${type} ${variant.label} (${weightLayout(table)}, ${(statSync(variant.model).size / 2 ** 20).toFixed(0)} MiB): ` +
            `decode x${decode.median.toFixed(3)} [${decode.min.toFixed(3)}, ${decode.max.toFixed(3)}], byte-ideal x${ideal.toFixed(3)}${limit}`,
        );
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const json = {
    benchmark: 'end-to-end llama-bench: stock dense vs patched dense vs compiled sparse models',
    started: started.toISOString(),
    finished: new Date().toISOString(),
    machine: { ...machineInfo(), loadavg_start: loadStart, loadavg_end: loadavg() },
    git_revision: gitRevision(),
    options: { ...options, json: undefined },
    // which builds were compared: at the host's level both are GGML_NATIVE shared builds with the same release flags
    llama_bench: { stock: stockBench, patched: patchedBench },
    timing: 'one llama-bench process per (variant, test, round), -r 1 after its warmup; speedups paired per round against stock dense',
    read_ceiling:
      'read-ceiling runs (CHESS_READ_CEILING=1, CHESS_READ_CEILING_SPARSITY=target): one-token sparse products read their rows (a pseudo-random share at the target sparsity) and compute nothing; read_ceiling_decode_speedup = their paired speedup x their weight bytes / the real run\'s weight bytes',
    bytes_model:
      'weight bytes read per decoded token: @chess/bench weightTraffic (docs/gguf-sparse.md section 7) with the achieved sparsity of the decode run; ' +
      'a column-block tensor (section 3.1) reads, per group of input channels with a kept channel, its scale section and the kept columns',
    results,
  };
  await writeFileAtomic(options.json, `${JSON.stringify(json, null, 2)}\n`);
  log(`wrote ${options.json}`);
}

main().catch((error: unknown) => {
  const e = error as { code?: string; message?: string };
  process.stderr.write(`error[${e.code ?? 'UNEXPECTED'}]: ${e.message ?? String(error)}\n`);
  process.exit(error instanceof UsageError ? 2 : 1);
});
