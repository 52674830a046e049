import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ChessError, cachePath } from '@chess/core';
import type { RequestScore, ScoringPlan } from './loglik.ts';
import { prebuiltBinaryPackage } from './runtime.ts';

/**
 * The native scorer (native/chess-score.cpp): the evaluator's forward passes in C++ against
 * the libllama of the build that runs the model, so that only the log-probabilities the
 * metrics need reach JavaScript. Built on first use with the system C++ compiler (`$CXX`,
 * else g++) into the cache, one binary per (build, source) pair.
 */

const run = promisify(execFile);
const SOURCE = join(dirname(fileURLToPath(import.meta.url)), '..', 'native', 'chess-score.cpp');

export type ScorerFlavour = 'stock' | 'patched';

export interface NativeScorer {
  flavour: ScorerFlavour;
  binary: string;
  /** Directory of the libllama / ggml libraries it runs on. */
  libDir: string;
}

/** The versioned shared library of that name in `dir` (node-llama-cpp renames them, e.g. libllama.v0.4.0.so). */
function sharedLibrary(dir: string, stem: 'llama' | 'ggml'): string {
  const re = new RegExp(`^lib${stem}(\\.v[^-]*)?\\.so$`);
  const found = readdirSync(dir).filter((f) => re.test(f));
  if (found.length !== 1) {
    throw new ChessError('EVAL_SCORER_BUILD_FAILED', `${dir}: expected one lib${stem}*.so, found ${found.length ? found.join(', ') : 'none'}`, { dir });
  }
  return found[0]!;
}

async function locate(flavour: ScorerFlavour, log: (line: string) => void): Promise<{ libDir: string; includeRoot: string }> {
  const backend = await import('@chess/backend-llamacpp');
  if (flavour === 'patched') {
    const info = await backend.buildBackend({ log });
    return { libDir: info.binDir, includeRoot: info.sourceDir };
  }
  const pkg = prebuiltBinaryPackage();
  if (!pkg) throw new ChessError('EVAL_SCORER_BUILD_FAILED', "node-llama-cpp's prebuilt binary package for this platform is not installed", {});
  const libDir = join(pkg.dir, 'bins', `${process.platform}-${process.arch}`);
  // The prebuilt was compiled from the same llama.cpp commit as the bundled source (llama.h identical).
  return { libDir, includeRoot: await backend.ensureLlamaSource(log) };
}

/** Build (once) and return the scorer linked against the given build's libraries. */
export async function ensureNativeScorer(flavour: ScorerFlavour, log: (line: string) => void = () => undefined): Promise<NativeScorer> {
  const { libDir, includeRoot } = await locate(flavour, log);
  const llama = sharedLibrary(libDir, 'llama');
  const ggml = sharedLibrary(libDir, 'ggml');
  const source = readFileSync(SOURCE);
  const hash = createHash('sha256').update(source).update(`\0${libDir}\0${llama}\0${ggml}\0${includeRoot}`).digest('hex').slice(0, 16);
  const binary = cachePath('bench', `chess-score-${flavour}-${hash}`);
  if (existsSync(binary)) return { flavour, binary, libDir };
  await mkdir(dirname(binary), { recursive: true });
  const tmp = `${binary}.tmp-${process.pid}`;
  const cxx = process.env.CXX ?? 'g++';
  const args = [
    '-O2',
    '-std=c++17',
    `-I${join(includeRoot, 'include')}`,
    `-I${join(includeRoot, 'ggml', 'include')}`,
    SOURCE,
    '-o',
    tmp,
    `-L${libDir}`,
    `-l:${llama}`,
    `-l:${ggml}`,
    '-lggml-base',
    `-Wl,-rpath,${libDir}`,
  ];
  log(`building the native scorer against ${libDir}`);
  try {
    await run(cxx, args, { maxBuffer: 16 << 20 });
  } catch (error) {
    await rm(tmp, { force: true });
    const e = error as { stderr?: string; message: string };
    throw new ChessError('EVAL_SCORER_BUILD_FAILED', `${cxx} ${SOURCE} failed: ${(e.stderr ?? e.message).slice(-2000)}`, { cxx, source: SOURCE }, { cause: error });
  }
  await rename(tmp, binary);
  return { flavour, binary, libDir };
}

/** Run the scorer; `onLine` sees each stdout line as it arrives. */
function runScorer(scorer: NativeScorer, args: string[], input: string | null, onLine: (line: string) => void, env?: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(scorer.binary, [...args, '--lib-dir', scorer.libDir], {
      stdio: [input === null ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let buffered = '';
    let stderr = '';
    let failed: unknown;
    child.stdout!.on('data', (chunk: Buffer) => {
      if (failed !== undefined) return;
      buffered += chunk.toString();
      let nl: number;
      try {
        while ((nl = buffered.indexOf('\n')) >= 0) {
          onLine(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
        }
      } catch (error) {
        // a malformed line: stop the child and report it instead of throwing from a stream handler
        failed = error;
        child.kill();
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (failed !== undefined) reject(failed);
      else if (code === 0) resolve();
      else reject(new ChessError('EVAL_SCORER_FAILED', `${scorer.binary} ${args[0]} failed (${signal ? `signal ${signal}` : `exit ${code}`}): ${stderr.trim().slice(-1500)}`, { code, signal }));
    });
    if (input !== null) {
      child.stdin!.on('error', () => undefined); // a child that dies early reports through 'close'
      child.stdin!.end(input);
    }
  });
}

export interface ScoreOptions {
  threads: number;
  /** Tokens per llama_decode (documents are packed up to this; a longer document gets its own). */
  batch?: number;
  /** Sequences per llama_decode (one per choice). */
  sequences?: number;
  env?: Record<string, string>;
  onDocument?: (done: number, total: number) => void;
}

/**
 * Log-likelihood of every choice of every document: the same quantities as
 * LogLikelihoodScorer.scorePlan, from one process evaluating each document's shared prefix once.
 */
export async function scoreDocuments(scorer: NativeScorer, modelPath: string, docs: readonly ScoringPlan[][], options: ScoreOptions): Promise<RequestScore[][]> {
  const parts: string[] = [`D ${docs.length}`];
  for (const choices of docs) {
    parts.push(`C ${choices.length}`);
    for (const c of choices) parts.push(`${c.input.length} ${c.firstTarget} ${c.input.join(' ')}`);
  }
  const out: RequestScore[][] = docs.map((d) => new Array(d.length));
  const remaining = docs.map((d) => d.length);
  let done = 0;
  const args = ['score', '--model', modelPath, '--threads', String(options.threads), '--batch', String(options.batch ?? 1024), '--seqs', String(options.sequences ?? 32)];
  await runScorer(
    scorer,
    args,
    `${parts.join('\n')}\n`,
    (line) => {
      const f = line.trim().split(' ');
      const doc = Number(f[0]);
      const choice = Number(f[1]);
      const plan = docs[doc]?.[choice];
      if (!plan || f.length - 3 !== plan.input.length - plan.firstTarget) {
        throw new ChessError('EVAL_SCORER_FAILED', `native scorer: malformed line '${line.slice(0, 120)}'`, {});
      }
      const tokenLogProbs = f.slice(3).map(Number);
      out[doc]![choice] = { logLikelihood: tokenLogProbs.reduce((a, b) => a + b, 0), tokenLogProbs, greedy: f[2] === '1' };
      if (--remaining[doc]! === 0) options.onDocument?.(++done, docs.length);
    },
    options.env,
  );
  if (remaining.some((r) => r !== 0)) throw new ChessError('EVAL_SCORER_FAILED', 'native scorer: some choices were not scored', {});
  return out;
}

/** Per scored position of the divergence run (chess-score kl). */
export interface DivergencePositions {
  window: Int32Array;
  kl: Float64Array;
  nllReference: Float64Array;
  nllModel: Float64Array;
  sameTop: Uint8Array;
}

export interface DivergenceRunOptions {
  threads: number;
  ctx: number;
  /** Windows evaluated (0: all). */
  windows: number;
  env?: Record<string, string>;
  onWindow?: (done: number, total: number) => void;
}

/** KL(reference || model) and both NLLs at every scored position of llama-perplexity's windows of `textFile`. */
export async function divergencePositions(
  scorer: NativeScorer,
  modelPath: string,
  referencePath: string,
  textFile: string,
  options: DivergenceRunOptions,
): Promise<DivergencePositions> {
  const window: number[] = [];
  const kl: number[] = [];
  const nllR: number[] = [];
  const nllM: number[] = [];
  const same: number[] = [];
  const args = ['kl', '--model', modelPath, '--reference', referencePath, '--text-file', textFile, '--ctx', String(options.ctx), '--chunks', String(options.windows), '--threads', String(options.threads)];
  let last = -1;
  await runScorer(
    scorer,
    args,
    null,
    (line) => {
      const f = line.trim().split(' ');
      if (f.length !== 5) throw new ChessError('EVAL_SCORER_FAILED', `native scorer: malformed line '${line.slice(0, 120)}'`, {});
      const w = Number(f[0]);
      if (w !== last) {
        if (last >= 0) options.onWindow?.(last + 1, options.windows);
        last = w;
      }
      window.push(w);
      kl.push(Number(f[1]));
      nllR.push(Number(f[2]));
      nllM.push(Number(f[3]));
      same.push(f[4] === '1' ? 1 : 0);
    },
    options.env,
  );
  if (kl.length === 0) throw new ChessError('EVAL_SCORER_FAILED', 'native scorer: no scored positions', {});
  return {
    window: Int32Array.from(window),
    kl: Float64Array.from(kl),
    nllReference: Float64Array.from(nllR),
    nllModel: Float64Array.from(nllM),
    sameTop: Uint8Array.from(same),
  };
}
