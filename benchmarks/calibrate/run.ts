/**
 * calibrate: wall time and peak RSS of `chess calibrate` on the default model
 * (SmolLM2-135M Q4_1), measured with GNU time around the CLI, as a user runs it.
 *
 *   pnpm -C benchmarks calibrate [--tokens N] [--ctx C] [--seed S] [--json OUT]
 *
 * Peak RSS: GNU time's "Maximum resident set size" is the largest single
 * process of the tree (node or the native chess-profile collector); the
 * collector also reports its own peak, recorded separately.
 */
import { spawn } from 'node:child_process';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { UsageError, repoRoot, writeFileAtomic } from '@chess/core';
import { fetchDefaultModel } from '@chess/models';

function parseArgs(argv: string[]): { tokens: number; ctx: number; seed: number; json: string } {
  const o = { tokens: 65536, ctx: 512, seed: 0, json: join(repoRoot(), 'benchmarks', 'results', 'calibrate.json') };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new UsageError('BENCH_BAD_ARGUMENT', `${flag} needs a value`, { flag });
    if (flag === '--json') o.json = resolve(value);
    else if (flag === '--tokens' || flag === '--ctx' || flag === '--seed') o[flag.slice(2) as 'tokens' | 'ctx' | 'seed'] = Number(value);
    else throw new UsageError('BENCH_BAD_ARGUMENT', `unknown option ${flag}`, { flag });
  }
  return o;
}

const options = parseArgs(process.argv.slice(2));
const model = await fetchDefaultModel();
const work = await mkdtemp(join(tmpdir(), 'chess-bench-calibrate-'));
const out = join(work, 'profile.prof');
const args = ['-v', 'pnpm', '-C', repoRoot(), 'chess', 'calibrate', '--model', model, '--tokens', String(options.tokens), '--ctx', String(options.ctx), '--seed', String(options.seed), '--out', out];
const load = loadavg()[0];
const stderr: string[] = [];
const code = await new Promise<number>((resolvePromise, reject) => {
  const child = spawn('/usr/bin/time', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let pending = '';
  child.stderr.on('data', (chunk: Buffer) => {
    process.stderr.write(chunk);
    const lines = (pending + chunk.toString('utf8')).split(/[\n\r]/);
    pending = lines.pop() ?? '';
    stderr.push(...lines);
  });
  child.on('error', reject);
  child.on('close', (c) => resolvePromise(c ?? 1));
});
if (code !== 0) throw new Error(`chess calibrate failed with exit code ${code}`);
const field = (re: RegExp): string | undefined => stderr.map((l) => re.exec(l)?.[1]).find((v) => v !== undefined);
const wall = field(/Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)/) ?? '';
const wallSeconds = wall.split(':').reduce((acc, part) => acc * 60 + Number(part), 0);
const result = {
  benchmark: 'calibrate',
  model,
  tokens: options.tokens,
  ctx: options.ctx,
  seed: options.seed,
  wallSeconds,
  tokensPerSecond: options.tokens / wallSeconds, // one pass over the windows (wall time includes start-up and tokenization)
  cpuSeconds: Number(field(/User time \(seconds\): ([\d.]+)/)) + Number(field(/System time \(seconds\): ([\d.]+)/)),
  maxRssMiB: Number(field(/Maximum resident set size \(kbytes\): (\d+)/)) / 1024,
  collectorPeakRssMiB: Number(field(/chess-profile peak RSS (\d+) MiB/)),
  profileBytes: (await stat(out)).size,
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, loadAverageAtStart: load, loadAverageAtEnd: loadavg()[0] },
};
await rm(work, { recursive: true, force: true });
await writeFileAtomic(options.json, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
