/**
 * sweep: the README's SmolLM2 table, end to end, as one command.
 *
 *   pnpm -C benchmarks sweep [--limit N|all] [--tasks a,b] [--only teal-50,...] [--ppl-windows W]
 *                            [--calib-tokens T] [--repeat R] [--tokens N] [--threads T]
 *                            [--skip-bench] [--resume] [--fresh] [--out DIR]
 *
 * 1. fetch the default model (SmolLM2-135M-Instruct Q4_1);
 * 2. calibrate ONCE (`chess calibrate`, Brown corpus, seed 0) and reuse that
 *    profile for every method and sparsity (recalibrates only when the cached
 *    profile is unreadable, e.g. after a profile-format change);
 * 3. transform: cats, chess, chess+, teal at 30/50/70% (`chess transform`);
 * 4. accuracy of the dense model and of every sparse one, one `chess eval` per
 *    model x task (the first --limit documents, `--limit all` for the full
 *    sets; per-document scores for the paired comparisons), and per sparse
 *    model its divergence from dense (`chess eval --reference`: KL, same top,
 *    PPL ratio with intervals on --ppl-windows held-out LAMBADA windows of 512);
 *    every part is cached under $CHESS_CACHE_DIR/sweep/parts, so an interrupted
 *    sweep continues where it stopped; the parts are merged into one eval file
 *    per model;
 * 5. decode/prefill speed (`chess bench`): dense on the stock build (the
 *    baseline), dense on the patched build, every sparse model on the patched
 *    build, interleaved per repeat, ratios with their spread;
 * 6. results as JSON in benchmarks/results/sweep/ (one eval file per model,
 *    bench.json, sweep.json with the settings and wall times), the report
 *    (report.md, report.html) and the README table (`sweep-table`).
 *
 * Every step is a `chess` CLI command in a child process; every JSON file is
 * written atomically (an interrupted sweep leaves complete files or none);
 * evaluation parts are always reused (cached per model x task), --resume also
 * keeps an existing bench.json. The profile and
 * the sparse models are cached under $CHESS_CACHE_DIR/sweep and reused by
 * later runs; --fresh deletes them first (do that after a change to
 * calibrate or transform).
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, statSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { UsageError, cachePath, repoRoot, writeFileAtomic } from '@chess/core';
import { fetchDefaultModel } from '@chess/assets';
import { MC_TASKS, averageOverTasks, compilerSourcesHash, gitRevision, parseTaskList, readResultFile, type EvalResult } from '@chess/bench';
import { METHODS, SPARSITIES, modelTag, updateReadmeTable } from './table.ts';

interface Options {
  /** Documents per task; 0 = all. */
  limit: number;
  tasks: string;
  /** Sparse model tags to run (e.g. teal-50,chessplus-30); empty = all twelve. */
  only: string[];
  skipBench: boolean;
  pplWindows: number;
  calibTokens: number;
  repeat: number;
  tokens: number;
  promptTokens: number;
  threads: number;
  resume: boolean;
  fresh: boolean;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    limit: 1000,
    tasks: MC_TASKS.join(','),
    only: [],
    skipBench: false,
    pplWindows: 8,
    calibTokens: 16384,
    repeat: 3,
    tokens: 64,
    promptTokens: 128,
    threads: 1,
    resume: false,
    fresh: false,
    out: join(repoRoot(), 'benchmarks', 'results', 'sweep'),
  };
  const integers: Record<string, keyof Options> = {
    '--limit': 'limit',
    '--ppl-windows': 'pplWindows',
    '--calib-tokens': 'calibTokens',
    '--repeat': 'repeat',
    '--tokens': 'tokens',
    '--prompt-tokens': 'promptTokens',
    '--threads': 'threads',
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--resume' || flag === '--fresh') {
      options[flag === '--resume' ? 'resume' : 'fresh'] = true;
      continue;
    }
    if (flag === '--skip-bench') {
      options.skipBench = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new UsageError('BENCH_BAD_ARGUMENT', `${flag} needs a value`, { flag });
    const key = integers[flag];
    if (key && Number.isInteger(Number(value)) && Number(value) > 0) (options as unknown as Record<string, number>)[key] = Number(value);
    else if (flag === '--limit' && value === 'all') options.limit = 0;
    else if (flag === '--tasks') options.tasks = parseTaskList(value).join(',');
    else if (flag === '--only') options.only = value.split(',').map((t) => t.trim());
    else if (flag === '--out') options.out = resolve(value);
    else throw new UsageError('BENCH_BAD_ARGUMENT', `unknown option or bad value: ${flag} ${value}`, { flag, value });
  }
  return options;
}

const log = (line: string) => process.stderr.write(`[sweep] ${line}\n`);

/** Run `chess ...` in a child process; stdout is returned, stderr goes to the log file and the terminal. */
function chess(args: string[], logFile: NodeJS.WritableStream): Promise<{ stdout: string; seconds: number }> {
  const main = join(repoRoot(), 'apps', 'cli', 'src', 'main.ts');
  const started = performance.now();
  logFile.write(`\n$ chess ${args.join(' ')}\n`);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let tail = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      logFile.write(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-3000);
      logFile.write(chunk);
      process.stderr.write(chunk);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolvePromise({ stdout, seconds: (performance.now() - started) / 1000 });
      else reject(new Error(`chess ${args.join(' ')} failed (exit ${code}):\n${tail}`));
    });
  });
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const started = performance.now();
  await mkdir(o.out, { recursive: true });
  const work = cachePath('sweep');
  if (o.fresh) await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const logFile = createWriteStream(join(work, 'sweep.log'), { flags: 'a' });
  const load = { before: loadavg()[0]! };
  const wall: Record<string, number> = {};
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const r = await f();
    wall[name] = (wall[name] ?? 0) + (performance.now() - t) / 1000;
    return r;
  };

  const dense = await fetchDefaultModel({ log });

  // 2. one calibration for everything
  const profile = join(work, `smollm2-${o.calibTokens}.prof`);
  const calibrate = () => timed('calibrate', () => chess(['calibrate', '--model', dense, '--tokens', String(o.calibTokens), '--seed', '0', '--out', profile], logFile));
  if (!existsSync(profile)) {
    log(`calibrating on ${o.calibTokens} tokens (once; reused by every method and sparsity)`);
    await calibrate();
  } else log(`reusing the calibration profile ${profile}`);

  // 3. transforms
  const models: { tag: string; method: string; sparsity: number; path: string }[] = [{ tag: 'dense', method: 'dense', sparsity: 0, path: dense }];
  for (const method of METHODS) {
    for (const sparsity of SPARSITIES) {
      const tag = modelTag(method, sparsity);
      if (o.only.length > 0 && !o.only.includes(tag)) continue;
      const path = join(work, `smollm2-${tag}-cal${o.calibTokens}.gguf`);
      const args = ['transform', '--model', dense, '--method', method, '--sparsity', String(sparsity), '--profile', profile, '--out', path];
      if (!existsSync(path)) {
        try {
          await timed('transform', () => chess(args, logFile));
        } catch (error) {
          // A cached profile from an older calibrate may no longer be readable: calibrate again, once.
          if (!/PROFILE_(INVALID|UNREADABLE)|CHESS_PROFILE/.test((error as Error).message)) throw error;
          log('the cached profile is not readable by this transform: recalibrating');
          await calibrate();
          await timed('transform', () => chess(args, logFile));
        }
      }
      models.push({ tag, method, sparsity, path });
    }
  }

  // 4. accuracy, one cached part per model x task, and the divergence of every sparse model from dense
  const partsRoot = join(work, 'parts', o.limit === 0 ? 'all' : `limit${o.limit}`);
  const part = async (m: (typeof models)[number], name: string, args: string[]): Promise<EvalResult> => {
    // keyed by the model file itself: a re-transformed model is evaluated again
    const st = statSync(m.path);
    const dir = join(partsRoot, `${m.tag}-${st.size}-${Math.floor(st.mtimeMs)}`);
    const json = join(dir, `${name}.json`);
    if (existsSync(json)) {
      const r = readResultFile(json);
      if (r.kind === 'eval') return r.result;
    }
    await mkdir(dir, { recursive: true });
    log(`eval ${m.tag} ${name}`);
    await timed('eval', () => chess(['eval', '--model', m.path, '--threads', String(o.threads), ...args, '--json', json], logFile));
    const r = readResultFile(json);
    if (r.kind !== 'eval') throw new UsageError('SWEEP_RESULTS_INVALID', `${json}: not an eval result`, { json });
    return r.result;
  };
  const tasks = o.tasks.split(',');
  for (const m of models) {
    const json = join(o.out, `eval-${m.tag}.json`);
    const parts: EvalResult[] = [];
    for (const task of tasks) parts.push(await part(m, task, ['--tasks', task, ...(o.limit > 0 ? ['--limit', String(o.limit)] : [])]));
    const kl =
      m.method === 'dense'
        ? await part(m, 'ppl', ['--no-tasks', '--ppl', 'lambada', '--ppl-windows', String(o.pplWindows)])
        : await part(m, 'divergence', ['--no-tasks', '--ppl', 'lambada', '--ppl-windows', String(o.pplWindows), '--reference', dense]);
    await writeFileAtomic(json, `${JSON.stringify(mergeParts(parts, kl), null, 2)}\n`);
  }

  // 5. speed: dense stock (baseline), dense patched, every sparse model (patched), interleaved
  const benchJson = join(o.out, 'bench.json');
  if (!o.skipBench && !(o.resume && existsSync(benchJson))) {
    const args = ['bench', '--model', dense, '--runtime', 'stock', '--model', dense, '--runtime', 'patched'];
    for (const m of models.slice(1)) args.push('--model', m.path, '--runtime', 'patched');
    args.push('--threads', String(o.threads), '--tokens', String(o.tokens), '--prompt-tokens', String(o.promptTokens), '--repeat', String(o.repeat), '--json', benchJson);
    log(`bench: ${models.length + 1} models x ${o.repeat} repeats, ${o.threads} thread(s)`);
    await timed('bench', () => chess(args, logFile));
  }

  // 6. report, summary, README table
  const evalFiles = models.map((m) => join(o.out, `eval-${m.tag}.json`));
  await chess(['report', ...evalFiles, ...(existsSync(benchJson) ? [benchJson] : []), '--md', join(o.out, 'report.md'), '--html', join(o.out, 'report.html')], logFile);
  const totalSeconds = (performance.now() - started) / 1000;
  const summary = {
    benchmark: 'sweep',
    description:
      'SmolLM2-135M-Instruct Q4_1: dense and cats/chess/chess+/teal at 30/50/70% target sparsity; one calibration profile for all; ' +
      '8-task zero-shot accuracy on the first --limit documents of each task with per-document scores (paired with dense), KL to dense and perplexity ratio on held-out LAMBADA windows (chess eval --reference), decode speed (chess bench)',
    gitRevision: gitRevision(),
    compilerSourcesHash: compilerSourcesHash(),
    command: `pnpm -C benchmarks sweep --limit ${o.limit === 0 ? 'all' : o.limit} --tasks ${o.tasks}${o.only.length ? ` --only ${o.only.join(',')}` : ''}${o.skipBench ? ' --skip-bench' : ''} --ppl-windows ${o.pplWindows} --calib-tokens ${o.calibTokens} --repeat ${o.repeat} --tokens ${o.tokens} --prompt-tokens ${o.promptTokens} --threads ${o.threads}`,
    date: new Date().toISOString(),
    settings: { ...o, out: undefined, fresh: undefined, methods: METHODS, sparsities: SPARSITIES, calibrationSeed: 0 },
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, loadAverage: { ...load, after: loadavg()[0]! }, node: process.version },
    // calibrate / transform are absent when the cached profile and models were reused.
    wallSeconds: { ...wall, total: totalSeconds },
    files: { evals: models.map((m) => ({ tag: m.tag, method: m.method, sparsity: m.sparsity, file: `eval-${m.tag}.json` })), bench: 'bench.json' },
  };
  await writeFileAtomic(join(o.out, 'sweep.json'), `${JSON.stringify(summary, null, 2)}\n`);
  if (existsSync(benchJson)) await updateReadmeTable({ resultsDir: o.out, readme: join(repoRoot(), 'README.md') });
  else log('no bench.json (--skip-bench): README table not rewritten');
  logFile.end();
  log(`done in ${(totalSeconds / 60).toFixed(1)} min (${Object.entries(wall).map(([k, v]) => `${k} ${(v / 60).toFixed(1)} min`).join(', ')}); results in ${o.out}`);
}

/** One eval result per model from its per-task parts and its perplexity / divergence part. */
function mergeParts(parts: EvalResult[], kl: EvalResult): EvalResult {
  const first = parts[0] ?? kl;
  const tasks: EvalResult['tasks'] = {};
  for (const p of parts) Object.assign(tasks, p.tasks);
  const names = Object.keys(tasks);
  const metric = (t: EvalResult['tasks'][string], k: 'acc' | 'accNorm') => ({ value: t[k].value, stderr: t[k].stderr ?? Number.NaN });
  const avg = names.length > 0 ? averageOverTasks(names.map((n) => ({ documents: tasks[n]!.documents, acc: metric(tasks[n]!, 'acc'), accNorm: metric(tasks[n]!, 'accNorm') })), names) : undefined;
  const nn = (m: { value: number; stderr: number }) => ({ value: m.value, stderr: Number.isFinite(m.stderr) ? m.stderr : null });
  return {
    ...first,
    settings: { ...first.settings, tasks: names },
    tasks,
    average: avg ? { tasks: names, acc: nn(avg.acc), accNorm: nn(avg.accNorm), primary: nn(avg.primary) } : null,
    perplexity: kl.perplexity,
    divergence: kl.divergence ?? null,
    // achieved sparsity and bytes per token over the held-out text run (every position of its windows)
    layerSparsity: kl.layerSparsity,
    sparsity: kl.sparsity ?? null,
    weightBytes: kl.weightBytes ?? null,
  };
}

await main();
