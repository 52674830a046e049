/**
 * The patched runtime on column-block weights (docs/gguf-sparse.md §3.1, format 2): a
 * `blk.N.<proj>_cb.weight` holds the source's own blocks re-arranged per input channel,
 * so at sparsity 0 the file must compute its dense twin's function (the same tensors in
 * the row layout, run by the patched build's dense path: no chess data, so the stock graph).
 *
 * - Batches (prefill route: counted mask, row layout restored by chess_cb_to_rows, ggml's
 *   own mul_mat) compute the twin's products bit for bit where the twin's weights are not
 *   repacked (Q4_1, Q8_0, Q5_0, Q5_1, Q5_K, Q6_K on x86): their logits are equal. Q4_0 and
 *   Q4_K twins go through ggml's repacked GEMM, whose float additions come in another order.
 * - One token per decode (chess_spmv_cb_parts): the same per-block integer sums on the same
 *   8-bit activations as ggml's vec_dot, added across blocks in group order instead of ggml's
 *   lane order: float-summation noise, ~1e-7 of a product's magnitude, which the next
 *   product's 8-bit activation quantization turns into a step of one quantum where an
 *   activation sits at a rounding boundary; over two layers that reaches the logits as up to
 *   ~0.5 (as it does between ggml's own one-token and batched paths on the dense twin, logged
 *   beside each case). Bound: NOISE_MAX_LOGIT_DIFF; a wrong block, scale, row, channel or
 *   sign moves the logits by units and the top-1 token at most positions.
 * - With thresholds, the default routes against CHESS_DENSE_REFERENCE=1 (ggml's own masks and
 *   products on the restored rows) of the same file, both routes.
 * - Malformed `_cb` tensors are refused at load with the tensor's name, without a crash.
 * The 30-layer acceptance (llama-perplexity KL divergence against the dense model, on the
 * compiler's output) is @chess/compiler's column-blocks-exactness.test.ts.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGMLType, ggmlRowBytes, ggufValue, openGGUF, writeGGUF, type GGUFValue, type GGUFWriteTensor } from '@chess/gguf';
import { fetchDefaultModel } from '@chess/assets';
import { buildBackend } from './build.ts';
import { SAMPLE_TEXT, compareLogits, compareProbabilities, evaluateProbabilities, type Evaluation } from './eval-runner.ts';
import { makeSyntheticLlama } from './synthetic-model.ts';
import { makeDenseTwin, makeSparseTestModel, type SparseMethod } from './test-models.ts';

const MINUTE = 60_000;
const log = (line: string): void => {
  process.stderr.write(`[column-blocks.test] ${line}\n`);
};

let smollm2: string;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-cb-test-'));
  smollm2 = await fetchDefaultModel({ log });
  await buildBackend({ log });
}, 90 * MINUTE);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** K-quants need n_in % 256 == 0 (SmolLM2's hidden size is 576): a random-weight model of hidden size 256. */
const SYNTHETIC_SHAPE = { nEmbd: 256, nFF: 768, nHead: 4, nHeadKV: 2, nLayer: 2 } as const;

interface TypeCase {
  type: GGMLType;
  /** Dense source of the case (written on first use). */
  source: () => Promise<string>;
  /** SmolLM2's projections re-encoded in this type (the source's own type when absent). */
  denseType?: GGMLType;
  /** The twin's weights sit in a repacking buffer on this machine (ggml's repacked GEMM adds in another order). */
  repacked: boolean;
}

const smol = async (): Promise<string> => smollm2;
const synthetic = (type: GGMLType) => async (): Promise<string> => makeSyntheticLlama({ type, ...SYNTHETIC_SHAPE, tokenizerFrom: smollm2, log });

/** ggml-cpu repacks Q4_0 and Q4_K on x86 (AVX2); on other CPUs more types: there every batch case gets the noise bound. */
const repacks = (type: GGMLType): boolean => process.arch !== 'x64' || type === GGMLType.Q4_0 || type === GGMLType.Q4_K;

const TYPE_CASES: TypeCase[] = [
  { type: GGMLType.Q4_1, source: smol, repacked: repacks(GGMLType.Q4_1) },
  { type: GGMLType.Q4_0, source: smol, denseType: GGMLType.Q4_0, repacked: repacks(GGMLType.Q4_0) },
  { type: GGMLType.Q8_0, source: smol, denseType: GGMLType.Q8_0, repacked: repacks(GGMLType.Q8_0) },
  { type: GGMLType.Q4_K, source: synthetic(GGMLType.Q4_K), repacked: repacks(GGMLType.Q4_K) },
  { type: GGMLType.Q5_K, source: synthetic(GGMLType.Q5_K), repacked: repacks(GGMLType.Q5_K) },
  { type: GGMLType.Q6_K, source: synthetic(GGMLType.Q6_K), repacked: repacks(GGMLType.Q6_K) },
  { type: GGMLType.Q5_0, source: synthetic(GGMLType.Q5_0), repacked: repacks(GGMLType.Q5_0) },
  { type: GGMLType.Q5_1, source: synthetic(GGMLType.Q5_1), repacked: repacks(GGMLType.Q5_1) },
];

/** Two layers: enough to chain every route (cb product into cb product), few enough that rounding flips stay rare. */
const LAYERS = 2;
/**
 * Float-summation noise through two layers, in logits: a product summed in another order
 * flips some 8-bit activation roundings of the next products, and the flips reach the logits.
 * Measured on these models (SmolLM2 Q4_1, synthetic Q6_K): our kernel with its additions
 * regrouped (CHESS_DECODE_PARTS=1 against 2) 0.38 / 0.21; ggml's own one-token path against its
 * batched path on the dense twin 0.35 / 0.63; column blocks against the twin 0.45 / 0.45. The
 * bound is ~1.5x the largest; a wrong block, scale, row, channel or sign moves logits by units.
 */
const NOISE_MAX_LOGIT_DIFF = 1.0;

function expectLoaded(result: Evaluation): void {
  expect(result.binary.flavour).toBe('patched');
  expect(result.loadError, result.log.slice(-5).join('\n')).toBeUndefined();
  expect(result.probs!.every((p) => Number.isFinite(p))).toBe(true);
}

function describeDiff(a: Evaluation, b: Evaluation): { logit: number; top1: number; text: string } {
  const logits = compareLogits(a.probs!, b.probs!, a.nVocab!);
  const probs = compareProbabilities(a.probs!, b.probs!, a.nVocab!);
  expect(logits.positions).toBeGreaterThan(50);
  expect(logits.minCompared).toBeGreaterThan(0.9);
  return {
    logit: logits.maxLogitDiff,
    top1: probs.top1Agreement,
    text: `max logit diff ${logits.maxLogitDiff.toExponential(2)}, max |dp| ${probs.maxAbsDiff.toExponential(2)}, max KL ${probs.maxKl.toExponential(2)}, top-1 ${probs.top1Agreement.toFixed(3)}`,
  };
}

describe('column-block weights at sparsity 0 compute the dense twin (TEAL: all seven projections in column blocks)', () => {
  for (const c of TYPE_CASES) {
    const name = GGMLType[c.type];
    it(
      `${name}: one batch (restored rows, ggml's product) ${c.repacked ? `within float noise of the repacked twin` : 'bit for bit'}, one token per decode (chess_spmv_cb_parts) within float noise`,
      async () => {
        const source = await c.source();
        const twin = await makeDenseTwin({ source, denseType: c.denseType, layers: LAYERS, log });
        const model = await makeSparseTestModel({ method: 'teal', source, sparsity: 0, layout: 'column-blocks', denseType: c.denseType, layers: LAYERS, log });
        await expectColumnBlocks(model, c.type);
        const runs: Record<string, Evaluation> = {};
        for (const [key, file, batchSize] of [
          ['twinBatch', twin, undefined],
          ['twinDecode', twin, 1],
          ['cbBatch', model, undefined],
          ['cbDecode', model, 1],
        ] as const) {
          const reportPath = join(work, `s0-${name}-${key}.json`);
          runs[key] = await evaluateProbabilities({ flavour: 'patched', model: file, text: SAMPLE_TEXT, batchSize, env: { CHESS_SPARSITY_REPORT: reportPath } });
          expectLoaded(runs[key]!);
          if (key.startsWith('cb')) {
            // the sparse sites ran and counted every token, prefill included (what they drop at
            // sparsity 0 are exact zeros, e.g. of a Q4_0 embedding: not checked here)
            const report = JSON.parse(await readFile(reportPath, 'utf8')) as { totals: Record<string, { seen: number }> };
            const tokens = runs[key]!.tokens!.length;
            for (const site of ['attn_q_in', 'attn_output_in', 'ffn_up_in', 'ffn_down_in']) expect(report.totals[site]?.seen, `${key} ${site}`).toBeGreaterThan(tokens);
          }
        }
        expect(runs.cbBatch!.tokens).toEqual(runs.twinBatch!.tokens);
        const batch = describeDiff(runs.twinBatch!, runs.cbBatch!);
        const decode = describeDiff(runs.twinDecode!, runs.cbDecode!);
        const ggmlNoise = describeDiff(runs.twinBatch!, runs.twinDecode!);
        log(`${name}: one batch ${batch.text}; one token ${decode.text}; (ggml's own one-token vs batch on the twin: ${ggmlNoise.text})`);
        if (c.repacked) expect(batch.logit).toBeLessThan(NOISE_MAX_LOGIT_DIFF);
        else expect(batch.logit).toBe(0);
        expect(decode.logit).toBeLessThan(NOISE_MAX_LOGIT_DIFF);
        expect(batch.top1).toBeGreaterThan(0.95);
        expect(decode.top1).toBeGreaterThan(0.95);
      },
      20 * MINUTE,
    );
  }
});

/** The file holds the projections in column blocks of the expected type (and not in rows). */
async function expectColumnBlocks(model: string, type: GGMLType): Promise<void> {
  const file = await openGGUF(model);
  try {
    expect(file.metadata.getNumber('chess.format_version')).toBe(2);
    for (const proj of ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down']) {
      expect(file.tensor(`blk.1.${proj}_cb.weight`)?.type, proj).toBe(type);
      expect(file.tensor(`blk.1.${proj}.weight`), proj).toBeUndefined();
    }
  } finally {
    await file.close();
  }
}

describe('column-block weights with thresholds (50%): the kernels against ggml on the restored rows', () => {
  // CHESS_DENSE_REFERENCE=1 takes the restore + mul_mat route at every batch size (ggml's own
  // mask ops), the default batches the same route after the counted mask op. So one token per
  // decode checks the kernel against the restore route (a bug in either shows: masking skipped
  // in the restore route was caught here, top-1 0.20-0.84), and one batch checks the counted
  // mask op (and chess+'s fused W_up: for batches an integer GEMM on AVX-512 / AVX2) against
  // ggml's. The restore route itself equals the dense twin bit for bit (above). An activation
  // within float noise of its threshold flips between two routes and moves the output by far
  // more than the noise (see backend.test.ts): the bounds are loose, top-1 agreement sharper.
  // (A batch against the kernel decoding the same text is no check: ggml's own one-token and
  // batched paths differ, and the flips take top-1 down to 0.77 on these random models.)
  const cases: Array<{ method: SparseMethod; type: GGMLType; source: () => Promise<string> }> = [
    { method: 'chess+', type: GGMLType.Q4_1, source: smol },
    { method: 'teal', type: GGMLType.Q4_1, source: smol },
    { method: 'teal', type: GGMLType.Q4_K, source: synthetic(GGMLType.Q4_K) },
    { method: 'chess+', type: GGMLType.Q6_K, source: synthetic(GGMLType.Q6_K) },
  ];
  const MAX_ABS_DIFF = 0.2;
  const MIN_TOP1 = 0.95;
  for (const { method, type, source } of cases) {
    it(
      `${method}, ${GGMLType[type]}: one token per decode and one batch`,
      async () => {
        const model = await makeSparseTestModel({ method, source: await source(), sparsity: 0.5, layout: 'column-blocks', layers: LAYERS, log });
        const tag = `${method}-${GGMLType[type]}`;
        const run = async (batchSize: number | undefined, env: Record<string, string>): Promise<Evaluation> => {
          const result = await evaluateProbabilities({ flavour: 'patched', model, text: SAMPLE_TEXT, batchSize, env });
          expectLoaded(result);
          return result;
        };
        const reportPath = join(work, `s05-${tag}.json`);
        const decode = await run(1, { CHESS_SPARSITY_REPORT: reportPath });
        const report = JSON.parse(await readFile(reportPath, 'utf8')) as { totals: Record<string, { sparsity: number }> };
        const decodeRef = await run(1, { CHESS_DENSE_REFERENCE: '1' });
        const batch = await run(undefined, {});
        const batchRef = await run(undefined, { CHESS_DENSE_REFERENCE: '1' });
        const checks = [
          ['one token: kernel vs ggml on the restored rows', compareProbabilities(decodeRef.probs!, decode.probs!, decode.nVocab!)],
          ['one batch: default vs CHESS_DENSE_REFERENCE', compareProbabilities(batchRef.probs!, batch.probs!, batch.nVocab!)],
        ] as const;
        log(
          `${tag}: ${checks.map(([what, c]) => `${what}: max |dp| ${c.maxAbsDiff.toExponential(2)}, max KL ${c.maxKl.toExponential(2)}, top-1 ${c.top1Agreement.toFixed(3)}`).join('; ')}; ` +
            `achieved ${Object.entries(report.totals).map(([s, t]) => `${s} ${(100 * t.sparsity).toFixed(1)}%`).join(', ')}`,
        );
        // the thresholds bite (the comparison would be vacuous otherwise)
        expect(report.totals.attn_q_in!.sparsity).toBeGreaterThan(0.2);
        expect(report.totals[method === 'teal' ? 'ffn_up_in' : 'ffn_gate_act']!.sparsity).toBeGreaterThan(0.2);
        for (const [what, c] of checks) {
          expect(c.maxAbsDiff, what).toBeLessThan(MAX_ABS_DIFF);
          expect(c.top1Agreement, what).toBeGreaterThan(MIN_TOP1);
        }
      },
      20 * MINUTE,
    );
  }
});

describe('malformed column-block tensors are refused at load, naming the tensor', () => {
  let good: string;
  beforeAll(async () => {
    good = await makeSparseTestModel({ method: 'teal', source: smollm2, sparsity: 0, layout: 'column-blocks', layers: LAYERS, log });
  }, 20 * MINUTE);

  /** A copy of `from` with metadata and tensors edited. */
  async function variant(
    name: string,
    from: string,
    edit: { metadata?: (entries: Array<[string, GGUFValue]>) => Array<[string, GGUFValue]>; tensors?: (tensors: GGUFWriteTensor[]) => GGUFWriteTensor[] },
  ): Promise<string> {
    const out = join(work, `${name}.gguf`);
    const file = await openGGUF(from);
    try {
      const tensors: GGUFWriteTensor[] = file.tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.type, byteLength: t.byteLength, data: () => file.tensorChunks(t) }));
      const metadata = [...file.metadata] as Array<[string, GGUFValue]>;
      await writeGGUF(out, { metadata: edit.metadata ? edit.metadata(metadata) : metadata, tensors: edit.tensors ? edit.tensors(tensors) : tensors });
    } finally {
      await file.close();
    }
    return out;
  }

  const bytesOf = (type: GGMLType, nIn: number, nOut: number, fill = 0x11): GGUFWriteTensor['data'] => async () => new Uint8Array(ggmlRowBytes(type, nIn) * nOut).fill(fill);
  const replace = (name: string, by: (t: GGUFWriteTensor) => GGUFWriteTensor) => (tensors: GGUFWriteTensor[]) => tensors.map((t) => (t.name === name ? by(t) : t));
  const setFormat = (version: number) => (entries: Array<[string, GGUFValue]>) =>
    entries.map(([k, v]): [string, GGUFValue] => (k === 'chess.format_version' ? [k, ggufValue.u32(version)] : [k, v]));

  async function expectRefused(model: string, ...fragments: string[]): Promise<void> {
    const result = await evaluateProbabilities({ flavour: 'patched', model });
    expect(result.binary.flavour).toBe('patched');
    expect(result.loadError).toBeDefined();
    const text = result.log.join('\n');
    log(`${model}: ${text.split('\n').find((l) => l.includes('chess')) ?? result.loadError}`);
    for (const fragment of fragments) expect(text).toContain(fragment);
  }

  it(
    'a type without a column-block layout (q2_K)',
    async () => {
      const model = await variant('cb-type', good, {
        tensors: replace('blk.0.ffn_down_cb.weight', (t) => ({ ...t, type: GGMLType.Q2_K, byteLength: ggmlRowBytes(GGMLType.Q2_K, 1536) * 576, data: bytesOf(GGMLType.Q2_K, 1536, 576) })),
      });
      await expectRefused(model, 'blk.0.ffn_down_cb.weight has type q2_K, which has no column-block layout');
    },
    10 * MINUTE,
  );

  it(
    'a shape other than the projection\'s (32 rows short: a byte count that is not the weight\'s)',
    async () => {
      const model = await variant('cb-shape', good, {
        tensors: replace('blk.1.attn_q_cb.weight', (t) => ({ ...t, shape: [576, 544], byteLength: ggmlRowBytes(t.type, 576) * 544, data: bytesOf(t.type, 576, 544) })),
      });
      await expectRefused(model, 'blk.1.attn_q_cb.weight has shape [576, 544, 1, 1], expected [576, 576]');
    },
    10 * MINUTE,
  );

  it(
    'n_out not a multiple of 32 (chess_cb_check): a model with 16-wide K/V heads',
    async () => {
      const source = await makeSyntheticLlama({ type: GGMLType.Q4_0, nEmbd: 256, nFF: 512, nHead: 16, nHeadKV: 1, nLayer: 1, tokenizerFrom: smollm2, log });
      const base = await makeSparseTestModel({ method: 'chess+', source, sparsity: 0, layout: 'column-blocks', log });
      // attn_k is [256, 16]: the encoder refuses it, so its rows are written as if re-arranged
      const model = await variant('cb-check', base, {
        metadata: (entries) => entries,
        tensors: (tensors) => tensors.map((t) => (t.name === 'blk.0.attn_k.weight' ? { ...t, name: 'blk.0.attn_k_cb.weight' } : t)),
      });
      await expectRefused(model, 'blk.0.attn_k_cb.weight', 'cannot be in column-block layout', 'n_out 16');
    },
    10 * MINUTE,
  );

  it(
    'both blk.N.<proj>_cb.weight and blk.N.<proj>.weight',
    async () => {
      const model = await variant('cb-and-rows', good, {
        tensors: (tensors) => [...tensors, { name: 'blk.1.ffn_up.weight', shape: [576, 1536], type: GGMLType.Q4_1, data: bytesOf(GGMLType.Q4_1, 576, 1536) }],
      });
      await expectRefused(model, 'both blk.1.ffn_up.weight and blk.1.ffn_up_cb.weight are present');
    },
    10 * MINUTE,
  );

  it(
    'both blk.N.<proj>_cb.weight and blk.N.<proj>_t.weight',
    async () => {
      const model = await variant('cb-and-t', good, {
        tensors: (tensors) => [...tensors, { name: 'blk.0.attn_v_t.weight', shape: [192, 576], type: GGMLType.F32, data: bytesOf(GGMLType.F32, 192, 576, 0) }],
      });
      await expectRefused(model, 'both blk.0.attn_v_cb.weight and blk.0.attn_v_t.weight are present');
    },
    10 * MINUTE,
  );

  it(
    'a _cb tensor in a file that declares chess.format_version 1',
    async () => {
      const model = await variant('cb-format-1', good, { metadata: setFormat(1) });
      await expectRefused(model, 'blk.0.attn_q_cb.weight is in column-block layout, which needs chess.format_version 2');
    },
    10 * MINUTE,
  );

  it(
    'chess.format_version 3 (newer than this build)',
    async () => {
      const model = await variant('cb-format-3', good, { metadata: setFormat(3) });
      await expectRefused(model, 'chess.format_version 3 is not supported by this build');
    },
    10 * MINUTE,
  );
});
