/**
 * transform: wall time of `chess transform` on SmolLM2-135M-Instruct Q4_1 with
 * the defaults (chess+, sparsity 0.5, transposed q8_0), as a user runs it: the
 * CLI in a child process, start-up included. Target: under 2 minutes on the
 * 2-core CI machine.
 *
 *   pnpm -C benchmarks transform [--repeats N] [--profile P] [--json OUT]
 *
 * Two timings: `defaults` (no --profile: calibration on the fly, then the
 * transform) and, with --profile, `withProfile` (the transform alone).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { UsageError, repoRoot, writeFileAtomic } from '@chess/core';
import { fetchDefaultModel } from '@chess/models';

interface Options {
  repeats: number;
  profile?: string;
  skipDefaults: boolean;
  json: string;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { repeats: 3, skipDefaults: false, json: join(repoRoot(), 'benchmarks', 'results', 'transform.json') };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--skip-defaults') {
      options.skipDefaults = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new UsageError('BENCH_BAD_ARGUMENT', `${flag} needs a value`, { flag });
    if (flag === '--repeats' && Number.isInteger(Number(value)) && Number(value) > 0) options.repeats = Number(value);
    else if (flag === '--profile') options.profile = resolve(value);
    else if (flag === '--json') options.json = resolve(value);
    else throw new UsageError('BENCH_BAD_ARGUMENT', `unknown option or bad value: ${flag} ${value}`, { flag, value });
  }
  return options;
}

interface RunResult {
  seconds: number;
  code: number;
  tail: string;
  /** user + system CPU seconds of the whole process tree (GNU time): the work, independent of how loaded the machine is. */
  cpuSeconds: number;
  /** largest resident set of any single process of the tree (GNU time), MiB */
  maxRssMiB: number;
  /** load average (1 min) when the run ended */
  load: number;
}

function chess(args: string[]): Promise<RunResult> {
  const main = join(repoRoot(), 'apps', 'cli', 'src', 'main.ts');
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn('/usr/bin/time', ['-v', process.execPath, '--import', import.meta.resolve('tsx'), main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk.toString('utf8')).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => {
      const field = (re: RegExp) => Number(re.exec(tail)?.[1] ?? Number.NaN);
      resolvePromise({
        seconds: (performance.now() - started) / 1000,
        code: code ?? 1,
        tail,
        cpuSeconds: field(/User time \(seconds\): ([\d.]+)/) + field(/System time \(seconds\): ([\d.]+)/),
        maxRssMiB: field(/Maximum resident set size \(kbytes\): (\d+)/) / 1024,
        load: loadavg()[0]!,
      });
    });
  });
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`[transform] ${line}\n`);
  const model = await fetchDefaultModel({ log });
  const work = await mkdtemp(join(tmpdir(), 'chess-bench-transform-'));
  const loadBefore = loadavg()[0]!;
  const runs: Record<string, { seconds: number[]; cpuSeconds: number[]; maxRssMiB: number[]; loadAtEnd: number[]; outputBytes: number }> = {};
  try {
    const variants: Array<[string, string[]]> = [];
    if (!options.skipDefaults) variants.push(['defaults', []]);
    if (options.profile) variants.push(['withProfile', ['--profile', options.profile]]);
    for (const [name, extra] of variants) {
      const seconds: number[] = [];
      const cpuSeconds: number[] = [];
      const maxRssMiB: number[] = [];
      const loadAtEnd: number[] = [];
      let outputBytes = 0;
      for (let r = 0; r < options.repeats; r++) {
        const out = join(work, `${name}-${r}.gguf`);
        const result = await chess(['transform', '--out', out, ...extra]);
        if (result.code !== 0) throw new Error(`chess transform ${extra.join(' ')} failed (exit ${result.code}):\n${result.tail}`);
        seconds.push(result.seconds);
        cpuSeconds.push(result.cpuSeconds);
        maxRssMiB.push(result.maxRssMiB);
        loadAtEnd.push(result.load);
        outputBytes = (await stat(out)).size;
        await rm(out);
        log(`${name} #${r + 1}: ${result.seconds.toFixed(1)} s wall, ${result.cpuSeconds.toFixed(1)} CPU s, peak RSS ${result.maxRssMiB.toFixed(0)} MiB, load ${result.load.toFixed(2)}`);
      }
      runs[name] = { seconds, cpuSeconds, maxRssMiB, loadAtEnd, outputBytes };
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const summary = Object.fromEntries(
    Object.entries(runs).map(([name, r]) => {
      const sorted = [...r.seconds].sort((a, b) => a - b);
      return [name, { ...r, minSeconds: sorted[0], medianSeconds: sorted[Math.floor(sorted.length / 2)], maxSeconds: sorted.at(-1) }];
    }),
  );
  const report = {
    benchmark: 'transform',
    description:
      'wall time of `chess transform` (CLI child process, start-up included) on the default model with default options (chess+, sparsity 0.5, transposed q8_0; ' +
      'without --profile: one-pass calibration on 6144 tokens of the Brown corpus + one refinement on the sparse model over 4096 tokens). ' +
      'cpuSeconds = user + system CPU of the process tree (GNU time); on a machine shared with other jobs wall time exceeds cpuSeconds / cores.',
    command: `pnpm -C benchmarks transform --repeats ${options.repeats}${options.profile ? ' --profile <profile of the default model>' : ''}${options.skipDefaults ? ' --skip-defaults' : ''}`,
    targetSeconds: 120,
    date: new Date().toISOString(),
    model,
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, loadAverage: { before: loadBefore, after: loadavg()[0]! }, node: process.version },
    results: summary,
  };
  await writeFileAtomic(options.json, `${JSON.stringify(report, null, 2)}\n`);
  log(`wrote ${options.json}`);
}

await main();
