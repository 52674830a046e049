/**
 * gguf-read: parse the header and dequantize every tensor of a GGUF file to
 * float32, with @chess/gguf (openGGUF + readTensorData + dequantize) and with
 * gguf-py (GGUFReader + gguf.quants.dequantize), in interleaved repeats so both
 * see the same machine state. Throughput is bytes of GGUF tensor data per second.
 *
 *   pnpm -C benchmarks gguf-read [--repeats N] [--model PATH] [--json OUT]
 *
 * Both sides time in process (start-up and imports excluded) and read a file
 * that the warm-up pass has put in the page cache.
 */
import { execFile } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { UsageError, ensurePythonEnv, repoRoot, writeFileAtomic } from '@chess/core';
import { dequantize, ggmlTypeName, openGGUF } from '@chess/gguf';
import { fetchDefaultModel } from '@chess/models';

const run = promisify(execFile);
const PY_SCRIPT = join(import.meta.dirname, 'gguf_py_read.py');

interface Options {
  repeats: number;
  model?: string;
  json: string;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { repeats: 7, json: join(repoRoot(), 'benchmarks', 'results', 'gguf-read.json') };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new UsageError('BENCH_BAD_ARGUMENT', `${flag} needs a value`, { flag });
    if (flag === '--repeats' && Number.isInteger(Number(value)) && Number(value) > 0) options.repeats = Number(value);
    else if (flag === '--model') options.model = resolve(value);
    else if (flag === '--json') options.json = resolve(value);
    else throw new UsageError('BENCH_BAD_ARGUMENT', `unknown option or bad value: ${flag} ${value}`, { flag, value });
    i++;
  }
  return options;
}

interface Sample {
  seconds: number;
  /** @chess/gguf only: time inside dequantize() (the rest is header parsing and file reads). */
  dequantizeSeconds?: number;
  tensorBytes: number;
}

async function chessRead(path: string): Promise<Sample> {
  const start = performance.now();
  let dequantizeMs = 0;
  let tensorBytes = 0;
  const file = await openGGUF(path);
  try {
    for (const t of file.tensors) {
      const bytes = await file.readTensorData(t);
      const t0 = performance.now();
      dequantize(t.type, bytes, t.elementCount);
      dequantizeMs += performance.now() - t0;
      tensorBytes += t.byteLength;
    }
  } finally {
    await file.close();
  }
  return { seconds: (performance.now() - start) / 1000, dequantizeSeconds: dequantizeMs / 1000, tensorBytes };
}

async function ggufPyRead(python: string, path: string): Promise<Sample> {
  const { stdout } = await run(python, [PY_SCRIPT, path], { maxBuffer: 1 << 20 });
  const result = JSON.parse(stdout) as { seconds: number; tensor_bytes: number };
  return { seconds: result.seconds, tensorBytes: result.tensor_bytes };
}

function summarize(samples: Sample[]) {
  const seconds = samples.map((s) => s.seconds).sort((a, b) => a - b);
  const median = (xs: number[]) => (xs.length % 2 ? xs[(xs.length - 1) / 2]! : (xs[xs.length / 2 - 1]! + xs[xs.length / 2]!) / 2);
  const bytes = samples[0]!.tensorBytes;
  const mbps = (s: number) => bytes / 1e6 / s;
  const dequant = samples.flatMap((s) => (s.dequantizeSeconds === undefined ? [] : [s.dequantizeSeconds])).sort((a, b) => a - b);
  return {
    seconds: { median: median(seconds), min: seconds[0]!, max: seconds.at(-1)! },
    mbPerSecond: { median: mbps(median(seconds)), min: mbps(seconds.at(-1)!), max: mbps(seconds[0]!) },
    ...(dequant.length ? { dequantizeSeconds: { median: median(dequant), min: dequant[0]!, max: dequant.at(-1)! } } : {}),
    samples: samples.map((s) => s.seconds),
  };
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const path = options.model ?? (await fetchDefaultModel());
  const python = await ensurePythonEnv((line) => console.error(line));

  const file = await openGGUF(path);
  const tensorTypes: Record<string, number> = {};
  for (const t of file.tensors) tensorTypes[ggmlTypeName(t.type)] = (tensorTypes[ggmlTypeName(t.type)] ?? 0) + 1;
  const tensorCount = file.tensors.length;
  await file.close();

  const loadBefore = loadavg()[0]!;
  // Warm-up (not recorded): page cache, JIT, numpy imports' first-touch costs.
  await chessRead(path);
  await ggufPyRead(python, path);
  const chess: Sample[] = [];
  const ggufPy: Sample[] = [];
  for (let r = 0; r < options.repeats; r++) {
    // Alternate which side goes first so neither always runs on a freshly idle machine.
    if (r % 2 === 0) {
      chess.push(await chessRead(path));
      ggufPy.push(await ggufPyRead(python, path));
    } else {
      ggufPy.push(await ggufPyRead(python, path));
      chess.push(await chessRead(path));
    }
  }
  if (chess[0]!.tensorBytes !== ggufPy[0]!.tensorBytes) {
    throw new Error(`tensor byte counts differ: @chess/gguf ${chess[0]!.tensorBytes}, gguf-py ${ggufPy[0]!.tensorBytes}`);
  }

  const { stdout: pyVersions } = await run(python, ['-c', 'import gguf, numpy, importlib.metadata as m; print(m.version("gguf"), numpy.__version__)']);
  const [ggufVersion, numpyVersion] = pyVersions.trim().split(' ');
  const results = { chessGguf: summarize(chess), ggufPy: summarize(ggufPy) };
  const report = {
    benchmark: 'gguf-read',
    description: 'parse the GGUF header and dequantize every tensor to float32; MB/s = GGUF tensor data bytes (1e6) per second',
    command: `pnpm -C benchmarks gguf-read --repeats ${options.repeats}${options.model ? ` --model ${options.model}` : ''}`,
    date: new Date().toISOString(),
    model: { path, tensors: tensorCount, tensorTypes, tensorBytes: chess[0]!.tensorBytes },
    repeats: options.repeats,
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      // 1-minute load average before and after: a busy machine slows both sides and widens min-max.
      loadAverage: { before: loadBefore, after: loadavg()[0]! },
      node: process.version,
      gguf: ggufVersion,
      numpy: numpyVersion,
    },
    results,
    speedupMedian: results.ggufPy.seconds.median / results.chessGguf.seconds.median,
  };
  await writeFileAtomic(options.json, `${JSON.stringify(report, null, 2)}\n`);

  const row = (name: string, r: (typeof results)['chessGguf']) =>
    `${name.padEnd(22)} ${r.seconds.median.toFixed(3).padStart(8)} s  ${r.seconds.min.toFixed(3)}-${r.seconds.max.toFixed(3)} s  ${r.mbPerSecond.median.toFixed(0).padStart(6)} MB/s`;
  console.log(`gguf-read: ${path} (${tensorCount} tensors, ${(report.model.tensorBytes / 1e6).toFixed(1)} MB tensor data), ${options.repeats} repeats`);
  console.log(`${'reader'.padEnd(22)} ${'median'.padStart(10)}  ${'min-max'.padEnd(13)}  ${'median'.padStart(6)}`);
  console.log(row('@chess/gguf', results.chessGguf));
  console.log(row('gguf-py (numpy)', results.ggufPy));
  const dq = results.chessGguf.dequantizeSeconds;
  if (dq) console.log(`@chess/gguf time inside dequantize(): median ${dq.median.toFixed(3)} s`);
  console.log(`speed-up (median): ${report.speedupMedian.toFixed(2)}x; JSON: ${options.json}`);
}

await main();
