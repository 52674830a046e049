/**
 * sweep: the README's SmolLM2 table, end to end, as one command.
 *
 *   pnpm -C benchmarks sweep [--limit N] [--ppl-windows W] [--calib-tokens T]
 *                            [--repeat R] [--tokens N] [--threads T] [--resume] [--fresh]
 *
 * 1. fetch the default model (SmolLM2-135M-Instruct Q4_1);
 * 2. calibrate ONCE (`chess calibrate`, Brown corpus, seed 0) and reuse that
 *    profile for every method and sparsity (recalibrates only when the cached
 *    profile is unreadable, e.g. after a profile-format change);
 * 3. transform: cats, chess, chess+, teal at 30/50/70% (`chess transform`);
 * 4. accuracy of the dense model and of every sparse one (`chess eval`: the 8
 *    zero-shot tasks on the first --limit documents each, LAMBADA perplexity
 *    on --ppl-windows windows of 512; sparse models through the patched build);
 * 5. decode/prefill speed (`chess bench`): dense on the stock build (the
 *    baseline), dense on the patched build, every sparse model on the patched
 *    build, interleaved per repeat, ratios with their spread;
 * 6. results as JSON in benchmarks/results/sweep/ (one eval file per model,
 *    bench.json, sweep.json with the settings and wall times), the report
 *    (report.md, report.html) and the README table (`sweep-table`).
 *
 * Every step is a `chess` CLI command in a child process; every JSON file is
 * written atomically (an interrupted sweep leaves complete files or none), and
 * --resume skips the models whose eval file already exists. The profile and
 * the sparse models are cached under $CHESS_CACHE_DIR/sweep and reused by
 * later runs; --fresh deletes them first (do that after a change to
 * calibrate or transform).
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { UsageError, cachePath, repoRoot, writeFileAtomic } from '@chess/core';
import { fetchDefaultModel } from '@chess/assets';
import { METHODS, SPARSITIES, modelTag, updateReadmeTable } from './table.ts';

interface Options {
  limit: number;
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
    limit: 40,
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
    const value = argv[++i];
    if (value === undefined) throw new UsageError('BENCH_BAD_ARGUMENT', `${flag} needs a value`, { flag });
    const key = integers[flag];
    if (key && Number.isInteger(Number(value)) && Number(value) > 0) (options as unknown as Record<string, number>)[key] = Number(value);
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
      const path = join(work, `smollm2-${tag}.gguf`);
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

  // 4. accuracy
  for (const m of models) {
    const json = join(o.out, `eval-${m.tag}.json`);
    if (o.resume && existsSync(json)) {
      log(`eval ${m.tag}: kept ${json} (--resume)`);
      continue;
    }
    log(`eval ${m.tag} (${models.indexOf(m) + 1}/${models.length})`);
    await timed('eval', () =>
      chess(['eval', '--model', m.path, '--limit', String(o.limit), '--ppl', 'lambada', '--ppl-windows', String(o.pplWindows), '--threads', String(o.threads), '--json', json], logFile),
    );
  }

  // 5. speed: dense stock (baseline), dense patched, every sparse model (patched), interleaved
  const benchJson = join(o.out, 'bench.json');
  if (!(o.resume && existsSync(benchJson))) {
    const args = ['bench', '--model', dense, '--runtime', 'stock', '--model', dense, '--runtime', 'patched'];
    for (const m of models.slice(1)) args.push('--model', m.path, '--runtime', 'patched');
    args.push('--threads', String(o.threads), '--tokens', String(o.tokens), '--prompt-tokens', String(o.promptTokens), '--repeat', String(o.repeat), '--json', benchJson);
    log(`bench: ${models.length + 1} models x ${o.repeat} repeats, ${o.threads} thread(s)`);
    await timed('bench', () => chess(args, logFile));
  }

  // 6. report, summary, README table
  const evalFiles = models.map((m) => join(o.out, `eval-${m.tag}.json`));
  await chess(['report', ...evalFiles, benchJson, '--md', join(o.out, 'report.md'), '--html', join(o.out, 'report.html')], logFile);
  const totalSeconds = (performance.now() - started) / 1000;
  const summary = {
    benchmark: 'sweep',
    description:
      'SmolLM2-135M-Instruct Q4_1: dense and cats/chess/chess+/teal at 30/50/70% target sparsity; one calibration profile for all; ' +
      '8-task zero-shot accuracy on the first --limit documents of each task and LAMBADA perplexity (chess eval), decode speed (chess bench)',
    command: `pnpm -C benchmarks sweep --limit ${o.limit} --ppl-windows ${o.pplWindows} --calib-tokens ${o.calibTokens} --repeat ${o.repeat} --tokens ${o.tokens} --prompt-tokens ${o.promptTokens} --threads ${o.threads}`,
    date: new Date().toISOString(),
    settings: { ...o, out: undefined, fresh: undefined, methods: METHODS, sparsities: SPARSITIES, calibrationSeed: 0 },
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, loadAverage: { ...load, after: loadavg()[0]! }, node: process.version },
    // calibrate / transform are absent when the cached profile and models were reused.
    wallSeconds: { ...wall, total: totalSeconds },
    files: { evals: models.map((m) => ({ tag: m.tag, method: m.method, sparsity: m.sparsity, file: `eval-${m.tag}.json` })), bench: 'bench.json' },
  };
  await writeFileAtomic(join(o.out, 'sweep.json'), `${JSON.stringify(summary, null, 2)}\n`);
  await updateReadmeTable({ resultsDir: o.out, readme: join(repoRoot(), 'README.md') });
  logFile.end();
  log(`done in ${(totalSeconds / 60).toFixed(1)} min (${Object.entries(wall).map(([k, v]) => `${k} ${(v / 60).toFixed(1)} min`).join(', ')}); results in ${o.out}`);
}

await main();
