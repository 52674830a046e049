/**
 * Runs the independent references of the codec tests: gguf-py (gguf_py_ref.py
 * in the pinned Python environment) and llama.cpp's C reference quantizers
 * (quantize_ref.c compiled against the pristine tree). Test support only.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LLAMA_CPP_COMMIT, ensureLlamaSource } from '@chess/assets';
import { cachePath, ensureCacheDir, ensurePythonEnv } from '@chess/core';
import type { GGMLType } from '../../types.ts';

const run = promisify(execFile);
const HERE = dirname(fileURLToPath(import.meta.url));
const GGUF_PY_SCRIPT = join(HERE, 'gguf_py_ref.py');
const HARNESS_SOURCE = join(HERE, 'quantize_ref.c');

/** A scratch directory removed by `dispose()`. */
export async function scratchDir(): Promise<{ path: string; dispose: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'chess-codecs-'));
  return { path, dispose: () => rm(path, { recursive: true, force: true }) };
}

async function ggufPy(args: string[]): Promise<string> {
  const python = await ensurePythonEnv();
  const { stdout } = await run(python, [GGUF_PY_SCRIPT, ...args], { maxBuffer: 64 << 20 });
  return stdout;
}

export interface ReferenceTensorLocation {
  readonly name: string;
  readonly type: GGMLType;
  /** Absolute byte offset of the tensor data in the file. */
  readonly offset: number;
  readonly nbytes: number;
  readonly elements: number;
}

export interface ReferenceTensor extends ReferenceTensorLocation {
  /** sha256 of gguf-py's dequantized values as little-endian float32. */
  readonly sha256: string;
}

function jsonLines<T>(stdout: string): T[] {
  return stdout.trim().split('\n').map((line) => JSON.parse(line) as T);
}

/** Where gguf-py's GGUFReader finds each tensor of a GGUF file. */
export async function ggufPyTensorLocations(path: string): Promise<ReferenceTensorLocation[]> {
  return jsonLines(await ggufPy(['tensors', path]));
}

/** Every tensor of a GGUF file as gguf-py's GGUFReader + dequantize see it. */
export async function ggufPyModelManifest(path: string): Promise<ReferenceTensor[]> {
  return jsonLines(await ggufPy(['model', path]));
}

/** The raw data bytes of a tensor, read with plain fs at the reference offset. */
export function readTensorBytes(path: string, tensor: ReferenceTensorLocation): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const bytes = new Uint8Array(tensor.nbytes);
    let done = 0;
    while (done < bytes.length) {
      const n = readSync(fd, bytes, done, bytes.length - done, tensor.offset + done);
      if (n === 0) throw new Error(`${path}: unexpected end of file in tensor ${tensor.name}`);
      done += n;
    }
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/** gguf-py's dequantized values of one tensor (for mismatch diagnostics). */
export async function ggufPyDumpTensor(path: string, name: string): Promise<Float32Array> {
  const scratch = await scratchDir();
  try {
    const out = join(scratch.path, 'tensor.f32');
    await ggufPy(['dump', path, name, out]);
    return toFloat32(await readFile(out));
  } finally {
    await scratch.dispose();
  }
}

export type GgufPyJob =
  | { readonly op: 'dequantize'; readonly type: GGMLType; readonly input: Uint8Array }
  | { readonly op: 'quantize'; readonly type: GGMLType; readonly input: Float32Array };

/** Runs the jobs in one Python process; returns each job's output bytes in order. */
export async function ggufPyJobs(jobs: readonly GgufPyJob[]): Promise<Uint8Array[]> {
  const scratch = await scratchDir();
  try {
    const manifest = await Promise.all(
      jobs.map(async (job, i) => {
        const input = join(scratch.path, `${i}.in`);
        const bytes = job.input instanceof Float32Array ? asBytes(job.input) : job.input;
        await writeFile(input, bytes);
        return { op: job.op, type: job.type, input, output: join(scratch.path, `${i}.out`) };
      }),
    );
    const jobsPath = join(scratch.path, 'jobs.json');
    await writeFile(jobsPath, JSON.stringify(manifest));
    await ggufPy(['jobs', jobsPath]);
    return Promise.all(manifest.map(async (job) => new Uint8Array(await readFile(job.output))));
  } finally {
    await scratch.dispose();
  }
}

/**
 * The C harness, built once per (llama.cpp commit, harness source) into the
 * cache. It links ggml-quants.c alone; --gc-sections drops the functions that
 * would need the rest of ggml. -ffp-contract=off: ggml-base is built for the
 * baseline ISA, where the compiler cannot fuse a*b+c into an FMA either.
 */
export function ensureQuantizeHarness(): Promise<string> {
  // One build per process even when many callers ask at once.
  harness ??= buildQuantizeHarness();
  return harness;
}

let harness: Promise<string> | undefined;

async function buildQuantizeHarness(): Promise<string> {
  const source = readFileSync(HARNESS_SOURCE);
  const key = createHash('sha256').update(source).digest('hex').slice(0, 12);
  const dir = cachePath('build', `quantize-ref-${LLAMA_CPP_COMMIT.slice(0, 12)}-${key}`);
  const binary = join(dir, 'quantize_ref');
  if (existsSync(binary)) return binary;
  const tree = await ensureLlamaSource();
  // built aside and renamed into place; concurrent test processes wait for the first
  await ensureCacheDir(dir, {
    what: 'the C quantization harness',
    complete: (d) => existsSync(join(d, 'quantize_ref')),
    build: async (tmp) => {
      await mkdir(tmp, { recursive: true });
      const cc = process.env.CC ?? 'cc';
      const flags = ['-O2', '-std=gnu11', '-ffp-contract=off', '-ffunction-sections', '-fdata-sections', '-Wl,--gc-sections', '-w'];
      const includes = ['-I', join(tree, 'ggml', 'include'), '-I', join(tree, 'ggml', 'src')];
      const sources = [HARNESS_SOURCE, join(tree, 'ggml', 'src', 'ggml-quants.c')];
      await run(cc, [...flags, ...includes, ...sources, '-lm', '-o', join(tmp, 'quantize_ref')]);
    },
  });
  return binary;
}

/** Block types the C harness writes, by file name. */
export const HARNESS_OUTPUTS = ['f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1'] as const;
export type HarnessOutput = (typeof HARNESS_OUTPUTS)[number];

/** llama.cpp's reference encodings of `values` (length a multiple of 32). */
export async function cQuantize(values: Float32Array): Promise<Record<HarnessOutput, Uint8Array>> {
  const binary = await ensureQuantizeHarness();
  const scratch = await scratchDir();
  try {
    const input = join(scratch.path, 'in.f32');
    await writeFile(input, asBytes(values));
    await run(binary, [input, scratch.path]);
    const entries = await Promise.all(
      HARNESS_OUTPUTS.map(async (name) => [name, new Uint8Array(await readFile(join(scratch.path, `${name}.bin`)))] as const),
    );
    return Object.fromEntries(entries) as Record<HarnessOutput, Uint8Array>;
  } finally {
    await scratch.dispose();
  }
}

/** ggml's GGML_FP16_TO_FP32 of all 65536 fp16 patterns, as fp32 bits. */
export async function cFp16Table(): Promise<Uint32Array> {
  const binary = await ensureQuantizeHarness();
  const scratch = await scratchDir();
  try {
    const out = join(scratch.path, 'table.f32');
    await run(binary, ['--fp16-table', out]);
    return new Uint32Array(toFloat32(await readFile(out)).buffer);
  } finally {
    await scratch.dispose();
  }
}

export function asBytes(values: Float32Array | Uint32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** Copies into a fresh, aligned buffer (Node Buffers may sit at any offset of a pool). */
export function toFloat32(bytes: Uint8Array): Float32Array {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}
