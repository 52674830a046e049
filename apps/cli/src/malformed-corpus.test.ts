/**
 * Every (malformed file x model-reading command) pair (issue 20): a clean
 * `error[CODE]` line, the same code `chess inspect` gives (our reader runs first
 * in every command, before the importer, llama.cpp's parser or node-llama-cpp's),
 * exit 1 or 2, no output file (nor a temporary one), under 10 s and 1 GiB peak RSS
 * per case. The corpus (__fixtures__/malformed-corpus.ts): 33 files built byte by
 * byte, a FIFO and 7 truncations of the real SmolLM2, so 41 files x 9 commands = 369 pairs.
 * One child process per command runs all files (__fixtures__/corpus-runner.ts); it
 * logs each case before running it, so a hang (the child is killed after the
 * per-case bound times the case count) or a crash names the case.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchDefaultModel } from '@chess/assets';
import { escapeControl } from '@chess/core';
import { writeMalformedCorpus, type CorpusCase } from './__fixtures__/malformed-corpus.ts';

const CASE_MS = 10_000;
const MAX_RSS = 1 << 30;
const runner = join(dirname(fileURLToPath(import.meta.url)), '__fixtures__', 'corpus-runner.ts');

let work: string;
let cases: CorpusCase[];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-malformed-'));
  await mkdir(join(work, 'corpus'));
  cases = await writeMalformedCorpus(join(work, 'corpus'), await fetchDefaultModel());
}, 600_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** The model-reading commands; {file} is the model, outputs go to {out}. */
const COMMANDS: Record<string, string[]> = {
  inspect: ['inspect', '{file}'],
  ir: ['ir', '{file}'],
  import: ['import', '{file}', '--out', '{out}/import.gguf'],
  transform: ['transform', '--model', '{file}', '--out', '{out}/sparse.gguf'],
  calibrate: ['calibrate', '--model', '{file}', '--out', '{out}/profile.prof'],
  eval: ['eval', '--model', '{file}', '--tasks', 'piqa', '--limit', '1', '--json', '{out}/eval.json'],
  bench: ['bench', '--model', '{file}', '--json', '{out}/bench.json'],
  'llama-bench': ['llama-bench', '--model', '{file}', '--json', '{out}/llama-bench.json'],
  'model quantize': ['model', 'quantize', '--model', '{file}', '--type', 'q8_0', '--out', '{out}/quantized.gguf'],
  'export-onnx': ['export-onnx', '{file}', '--out', '{out}/model.onnx'],
};

interface CaseResult {
  name: string;
  exit: number;
  ms: number;
  stdout: string;
  stderr: string;
  hwmBytes: number;
  leftovers: string[];
}

async function runCommand(command: string): Promise<{ results: CaseResult[]; started: string[]; code: number | null; signal: string | null; output: string }> {
  const outDir = join(work, `out-${command.replace(' ', '-')}`);
  await mkdir(outDir);
  const results = join(work, `${command.replace(' ', '-')}.jsonl`);
  const spec = join(work, `${command.replace(' ', '-')}.json`);
  writeFileSync(spec, JSON.stringify({ args: COMMANDS[command]!.map((a) => a.replaceAll('{out}', outDir)), cases, outDir, results }));
  writeFileSync(results, '');
  const child = spawn('tsx', [runner, spec], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  // startup (module loading on a loaded machine) plus the bound of every case
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000 + cases.length * CASE_MS);
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  const lines = readFileSync(results, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as CaseResult | { start: string });
  return {
    results: lines.filter((l): l is CaseResult => 'exit' in l),
    started: lines.filter((l): l is { start: string } => 'start' in l).map((l) => l.start),
    code,
    signal,
    output,
  };
}

// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('the malformed-GGUF corpus through every model-reading command', () => {
  it('the corpus is what the reader refuses (41 files)', () => {
    expect(cases.length).toBe(41);
  });

  for (const command of Object.keys(COMMANDS)) {
    it(
      `chess ${command}: every file refused with the reader's error[CODE], exit 1 or 2, no output, < 10 s and < 1 GiB each`,
      async () => {
        const run = await runCommand(command);
        const unfinished = run.started.filter((name) => !run.results.some((r) => r.name === name));
        expect(unfinished, `${command}: a case started and never finished (hang or crash; child exit ${run.code} ${run.signal}):\n${run.output.slice(-2000)}`).toEqual([]);
        expect(run.code, run.output.slice(-2000)).toBe(0);
        expect(run.results.map((r) => r.name)).toEqual(cases.map((c) => c.name));
        for (const r of run.results) {
          const c = cases.find((x) => x.name === r.name)!;
          const where = `chess ${command} ${c.name}: ${r.stderr}`;
          expect([1, 2], where).toContain(r.exit);
          const lines = r.stderr.split('\n').filter(Boolean);
          expect(lines, where).toHaveLength(1);
          expect(lines[0], where).toMatch(/^error\[[A-Z0-9_]+\]: /);
          expect(lines[0]!.slice(6, lines[0]!.indexOf(']')), where).toBe(c.except?.[command] ?? c.code);
          expect(lines[0], `${where}: names the file`).toContain(escapeControl(c.path));
          expect(RAW_CONTROL.test(r.stderr), `${where}: raw control bytes`).toBe(false);
          expect(r.stdout, where).toBe('');
          expect(r.leftovers, `${where}: output left behind`).toEqual([]);
          expect(r.ms, `${where}: took ${r.ms.toFixed(0)} ms`).toBeLessThan(CASE_MS);
          expect(r.hwmBytes, `${where}: peak RSS ${(r.hwmBytes / 2 ** 20).toFixed(0)} MiB`).toBeLessThan(MAX_RSS);
        }
        const slowest = run.results.reduce((a, b) => (b.ms > a.ms ? b : a));
        process.stderr.write(
          `[malformed-corpus] chess ${command}: ${run.results.length} files refused; slowest ${slowest.name} ${slowest.ms.toFixed(0)} ms; peak RSS ${(Math.max(...run.results.map((r) => r.hwmBytes)) / 2 ** 20).toFixed(0)} MiB\n`,
        );
      },
      180_000 + 41 * CASE_MS,
    );
  }
});
