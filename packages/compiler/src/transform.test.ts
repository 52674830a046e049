/**
 * The driver file to file on a small synthetic GGUF (2 layers, SmolLM2
 * tokenizer, Q4_1), profiles given (fixedCalibrator):
 * determinism (same profile + options => same bytes) and the sparse GGUF
 * contract as read back by the GGUF reader (keys, tensor names, shapes, types,
 * threshold values, column-block and transposed data), the layout options.
 * The column-block bytes are compared with the encoder of @chess/gguf applied
 * to the source tensor (the encoder itself is checked byte for byte against an
 * independent numpy + gguf-py construction in @chess/gguf).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGMLType, type GGUFFile, columnBlocksFromRows, dequantize, openGGUF, quantize } from '@chess/gguf';
import { importGGUF } from '@chess/import-gguf';
import { fetchDefaultModel, parseShape, synthesizeModel } from '@chess/models';
import { type Method, type ThresholdProfile, TOOL, transposeMatrix } from '@chess/pass-chess';
import { closeToFloat32, expectThresholdsMatch, referenceThresholdsOfStatistics, statisticsOfProfile } from '@chess/pass-chess/reference';
import { flatProfile } from '@chess/pass-chess/testing';
import { fixedCalibrator } from './calibrator.ts';
import { compile } from './compile.ts';

let work: string;
let model: string;
/** head_dim 16 with one KV head: W_k and W_v have n_out = 16, which the column-block layout cannot hold. */
let narrowKv: string;
let profile: ThresholdProfile;
let narrowProfile: ThresholdProfile;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-compiler-transform-'));
  model = join(work, 'tiny.gguf');
  await synthesizeModel({ shape: parseShape('{"base":"smollm2","nLayer":2,"nEmbd":64,"nFF":128,"nHead":2,"nHeadKV":1}'), type: GGMLType.Q4_1, out: model, seed: 3 });
  const { module, file } = await importGGUF(model);
  await file.close();
  profile = { ...flatProfile(module), calibration: { source: 'synthetic-test', tokens: 1234, seed: 42 } };
  narrowKv = join(work, 'narrow-kv.gguf');
  await synthesizeModel({ shape: parseShape('{"base":"smollm2","nLayer":2,"nEmbd":64,"nFF":128,"nHead":4,"nHeadKV":1}'), type: GGMLType.Q4_1, out: narrowKv, seed: 4 });
  const narrow = await importGGUF(narrowKv);
  await narrow.file.close();
  narrowProfile = flatProfile(narrow.module);
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

/** The numpy reference's chess+ (mean-abs, 50%) thresholds for a profile given by its statistics: the golden values. */
async function goldenThresholds(of: ThresholdProfile) {
  const [golden] = await referenceThresholdsOfStatistics(statisticsOfProfile(of, [0.5]), [{ method: 'chess+', statistic: 'mean-abs', sparsity: 0.5 }]);
  return golden!;
}

/** The thresholds a sparse GGUF holds (chess+: gate vector, q and o input scalars), per layer. */
async function thresholdsInFile(file: GGUFFile, nLayer: number, nFF: number) {
  const layers = [];
  for (let il = 0; il < nLayer; il++) {
    const inputs: Record<string, number> = {};
    for (const p of ['attn_q', 'attn_output']) inputs[p] = dequantize(GGMLType.F32, await file.readTensorData(file.tensor(`blk.${il}.${p}_in_tau`)!), 1)[0]!;
    layers.push({ gate: dequantize(GGMLType.F32, await file.readTensorData(file.tensor(`blk.${il}.ffn_gate_tau`)!), nFF), inputs });
  }
  return layers;
}

async function transform(method: Method, out: string, extra: { layout?: 'column-blocks' | 'transposed'; transposedType?: 'f32' | 'q8_0' | 'q4_1' } = {}) {
  return compile({ model, out: join(work, out), method, statistic: 'mean-abs', sparsity: 0.5, refineTokens: 0, ...extra }, { calibrator: fixedCalibrator(profile) });
}

describe('deterministic output', () => {
  it('same profile and options give a byte-identical GGUF', async () => {
    await transform('chess+', 'a.gguf');
    await transform('chess+', 'b.gguf');
    await transform('teal', 'c.gguf');
    expect(await sha256(join(work, 'a.gguf'))).toBe(await sha256(join(work, 'b.gguf')));
    expect(await sha256(join(work, 'a.gguf'))).not.toBe(await sha256(join(work, 'c.gguf')));
  });
});

describe('the sparse GGUF contract', () => {
  async function withFile<T>(path: string, f: (file: GGUFFile, source: GGUFFile) => Promise<T>): Promise<T> {
    const file = await openGGUF(path);
    const source = await openGGUF(model);
    try {
      return await f(file, source);
    } finally {
      await file.close();
      await source.close();
    }
  }

  it('metadata: the chess wrapper, every chess.* key, every source key kept', async () => {
    await transform('chess', 'meta.gguf');
    await withFile(join(work, 'meta.gguf'), async (file, source) => {
      const md = file.metadata;
      expect(md.getString('general.architecture')).toBe('chess');
      expect(md.getString('chess.base_architecture')).toBe('llama');
      expect(md.getNumber('chess.format_version')).toBe(2);
      expect(md.getString('chess.method')).toBe('chess');
      expect(md.getString('chess.statistic')).toBe('mean-abs');
      expect(md.getNumber('chess.target_sparsity')).toBe(0.5);
      expect(md.getString('chess.calibration.source')).toBe('synthetic-test');
      expect(Number(md.getNumber('chess.calibration.tokens'))).toBe(1234);
      expect(Number(md.getNumber('chess.calibration.seed'))).toBe(42);
      expect(md.getString('chess.tool')).toBe(TOOL);
      for (const [key, value] of source.metadata) {
        if (key !== 'general.architecture') expect(md.get(key), key).toEqual(value);
      }
    });
  });

  it('cats and teal record statistic none', async () => {
    await transform('cats', 'cats.gguf');
    await withFile(join(work, 'cats.gguf'), async (file) => expect(file.metadata.getString('chess.statistic')).toBe('none'));
  });

  it('chess+: thresholds and column-block projections with the contract names, shapes, types and bytes; the file is the source plus thresholds', async () => {
    const result = await transform('chess+', 'plus.gguf');
    expect(result.placements.map((p) => [p.weight, p.layout, p.tensor])).toEqual(
      [0, 1].flatMap((il) => ['attn_q', 'attn_output', 'ffn_down'].map((p) => [`blk.${il}.${p}.weight`, 'column-blocks', `blk.${il}.${p}_cb.weight`])),
    );
    const golden = await goldenThresholds(profile);
    await withFile(join(work, 'plus.gguf'), async (file, source) => {
      expectThresholdsMatch(await thresholdsInFile(file, 2, 128), golden);
      expect(file.metadata.getNumber('chess.format_version')).toBe(2);
      const names = new Set(file.tensors.map((t) => t.name));
      for (let il = 0; il < 2; il++) {
        for (const p of ['attn_q', 'attn_output', 'ffn_down']) {
          expect(names.has(`blk.${il}.${p}.weight`)).toBe(false);
          expect(names.has(`blk.${il}.${p}_t.weight`)).toBe(false);
          // the source's type, shape (ne [n_in, n_out]) and byte count; the source's blocks re-arranged
          const cb = file.tensor(`blk.${il}.${p}_cb.weight`)!;
          const src = source.tensor(`blk.${il}.${p}.weight`)!;
          expect(cb.type).toBe(src.type);
          expect(cb.shape).toEqual(src.shape);
          expect(cb.byteLength).toBe(src.byteLength);
          const [nIn, nOut] = src.shape.map(Number) as [number, number];
          const bytes = await file.readTensorData(cb);
          expect(Buffer.from(bytes).equals(Buffer.from(columnBlocksFromRows(src.type, await source.readTensorData(src), nIn, nOut)))).toBe(true);
          expect(Buffer.from(bytes).equals(Buffer.from(await source.readTensorData(src)))).toBe(false);
        }
        for (const p of ['attn_k', 'attn_v', 'ffn_gate', 'ffn_up']) expect(names.has(`blk.${il}.${p}.weight`)).toBe(true);
        const gate = file.tensor(`blk.${il}.ffn_gate_tau`)!;
        expect(gate.type).toBe(GGMLType.F32);
        expect(gate.shape.map(Number)).toEqual([128]);
        for (const p of ['attn_q', 'attn_output'] as const) expect(file.tensor(`blk.${il}.${p}_in_tau`)!.shape.map(Number)).toEqual([1]);
      }
      // only additions: 2 layers x (3 taus); the weights' bytes are the source's, plus the thresholds
      expect(file.tensors.length).toBe(source.tensors.length + 2 * 3);
      const bytes = (f: GGUFFile) => f.tensors.reduce((n, t) => n + t.byteLength, 0);
      expect(bytes(file)).toBe(bytes(source) + 2 * (128 + 1 + 1) * 4);
    });
  });

  it('--layout transposed: re-quantized transposed projections (format 1)', async () => {
    const result = await transform('chess+', 'plus-t.gguf', { layout: 'transposed' });
    expect(new Set(result.placements.map((p) => p.layout))).toEqual(new Set(['transposed']));
    await withFile(join(work, 'plus-t.gguf'), async (file, source) => {
      expect(file.metadata.getNumber('chess.format_version')).toBe(1);
      for (let il = 0; il < 2; il++) {
        for (const p of ['attn_q', 'attn_output', 'ffn_down']) {
          expect(file.tensor(`blk.${il}.${p}.weight`)).toBeUndefined();
          expect(file.tensor(`blk.${il}.${p}_cb.weight`)).toBeUndefined();
        }
        // ffn_down [n_in = 128] -> [n_out = 64]: ggml ne of the transposed copy is [n_out, n_in]
        const down = file.tensor(`blk.${il}.ffn_down_t.weight`)!;
        expect(down.shape.map(Number)).toEqual([64, 128]);
        expect(down.type).toBe(GGMLType.Q8_0);
        const src = source.tensor(`blk.${il}.ffn_down.weight`)!;
        const w = dequantize(src.type, await source.readTensorData(src), 64 * 128);
        expect(Buffer.from(await file.readTensorData(down)).equals(Buffer.from(quantize(GGMLType.Q8_0, transposeMatrix(w, 64, 128))))).toBe(true);
      }
    });
  });

  it('a projection the column-block layout cannot hold keeps its row layout and is reported (masked-dense route)', async () => {
    const out = join(work, 'narrow-teal.gguf');
    const result = await compile({ model: narrowKv, out, method: 'teal', sparsity: 0.5, refineTokens: 0 }, { calibrator: fixedCalibrator(narrowProfile) });
    const rows = result.placements.filter((p) => p.layout === 'rows');
    expect(rows.map((p) => p.weight)).toEqual(['blk.0.attn_k.weight', 'blk.0.attn_v.weight', 'blk.1.attn_k.weight', 'blk.1.attn_v.weight']);
    for (const p of rows) expect(p.reason).toMatch(/n_out = 16 is not a positive multiple of 32/);
    expect(result.placements.filter((p) => p.layout === 'column-blocks')).toHaveLength(2 * 5);
    const file = await openGGUF(out);
    const source = await openGGUF(narrowKv);
    try {
      expect(file.metadata.getNumber('chess.format_version')).toBe(2);
      for (const p of rows) {
        expect(file.tensor(`blk.${p.layer}.${p.proj}_cb.weight`)).toBeUndefined();
        expect(Buffer.from(await file.readTensorData(file.tensor(p.weight)!)).equals(Buffer.from(await source.readTensorData(source.tensor(p.weight)!)))).toBe(true);
        expect(file.tensor(`blk.${p.layer}.${p.proj}_in_tau`)).toBeDefined();
      }
    } finally {
      await file.close();
      await source.close();
    }
  });

  it('f32 transposed weights hold exactly the transposed source values', async () => {
    await transform('teal', 'teal-f32.gguf', { layout: 'transposed', transposedType: 'f32' });
    await withFile(join(work, 'teal-f32.gguf'), async (file, source) => {
      for (const p of ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down']) {
        const src = source.tensor(`blk.1.${p}.weight`)!;
        const [nIn, nOut] = src.shape.map(Number) as [number, number];
        const t = file.tensor(`blk.1.${p}_t.weight`)!;
        expect(t.shape.map(Number)).toEqual([nOut, nIn]);
        const w = dequantize(src.type, await source.readTensorData(src), nIn * nOut);
        const wt = dequantize(GGMLType.F32, await file.readTensorData(t), nIn * nOut);
        for (let o = 0; o < nOut; o++) for (let i = 0; i < nIn; i += 7) expect(wt[i * nOut + o]).toBe(w[o * nIn + i]);
        expect(file.tensor(`blk.1.${p}_in_tau`)).toBeDefined();
      }
      expect(file.tensor('blk.1.ffn_gate_tau')).toBeUndefined();
    });
  });
});

describe('SmolLM2 (Q4_1), chess+ and teal', () => {
  it('every input-sparse projection in column blocks, byte-identical to the encoder on the source tensor; the file within 0.5% of the source', async () => {
    const source = await fetchDefaultModel();
    const { module, file: imported } = await importGGUF(source);
    await imported.close();
    const flat = flatProfile(module);
    for (const method of ['chess+', 'teal'] as const) {
      const out = join(work, `smollm2-${method}.gguf`);
      const result = await compile({ model: source, out, method, sparsity: 0.5, refineTokens: 0 }, { calibrator: fixedCalibrator(flat) });
      expect(result.placements.every((p) => p.layout === 'column-blocks')).toBe(true);
      expect(result.placements).toHaveLength(30 * (method === 'teal' ? 7 : 3));
      const file = await openGGUF(out);
      const src = await openGGUF(source);
      try {
        for (const p of result.placements) {
          const s = src.tensor(p.weight)!;
          const [nIn, nOut] = s.shape.map(Number) as [number, number];
          const expected = columnBlocksFromRows(s.type, await src.readTensorData(s), nIn, nOut);
          expect(Buffer.from(await file.readTensorData(file.tensor(p.tensor)!)).equals(Buffer.from(expected)), p.tensor).toBe(true);
        }
        // the source's bytes plus thresholds (chess+: 30 x (1536 + 2) f32, teal: 30 x 7) and their tensor infos
        expect(file.fileSize / src.fileSize).toBeGreaterThan(1);
        expect(file.fileSize / src.fileSize).toBeLessThan(1.005);
      } finally {
        await file.close();
        await src.close();
      }
    }
  }, 300_000);
});

describe('layout options', () => {
  it('a transposed type without the transposed layout, an unknown layout: refused before any work', async () => {
    await expect(transform('chess', 'conflict.gguf', { transposedType: 'q8_0' })).rejects.toMatchObject({ code: 'CHESS_LAYOUT_CONFLICT' });
    await expect(transform('chess', 'conflict.gguf', { layout: 'column-blocks', transposedType: 'q4_1' })).rejects.toMatchObject({
      code: 'CHESS_LAYOUT_CONFLICT',
      message: expect.stringMatching(/transposed type \('q4_1'\) applies only to the transposed layout, not to 'column-blocks'/),
    });
    await expect(transform('chess', 'bad-layout.gguf', { layout: 'rows' as 'transposed' })).rejects.toMatchObject({ code: 'CHESS_BAD_LAYOUT' });
  });
});

describe('refinement on the partially sparsified model', () => {
  it('measures the written sparse GGUF, recomputes every threshold from the measurement, writes those', async () => {
    // a measured profile whose distributions differ per layer and site from the dense one
    const scaled = (k: number): ThresholdProfile => ({
      ...profile,
      layers: profile.layers.map((lp, il) => ({
        ...lp,
        gateAbs: { quantile: (p: number) => k * (il + 1) * p, cdf: (v: number) => v / (k * (il + 1)) },
        score: {
          rms: { quantile: (p: number) => 2 * k * (il + 1) * p, cdf: (t: number) => t / (2 * k * (il + 1)) },
          'mean-abs': { quantile: (p: number) => 3 * k * (il + 1) * p, cdf: (t: number) => t / (3 * k * (il + 1)) },
        },
        inputs: Object.fromEntries(Object.keys(lp.inputs).map((proj, j) => [proj, { quantile: (p: number) => k * (j + 2) * p, cdf: (v: number) => v / (k * (j + 2)) }])) as typeof lp.inputs,
      })),
    });
    const seen: Array<{ path: string; iteration: number; arch: string | undefined; gate0: number }> = [];
    const refine = async (path: string, iteration: number) => {
      const file = await openGGUF(path);
      try {
        const tau = file.tensor('blk.0.ffn_gate_tau')!;
        seen.push({ path, iteration, arch: file.metadata.getString('general.architecture'), gate0: dequantize(GGMLType.F32, await file.readTensorData(tau), 128)[0]! });
      } finally {
        await file.close();
      }
      return scaled(iteration);
    };
    const out = join(work, 'refined.gguf');
    const result = await compile({ model, out, method: 'chess+', statistic: 'mean-abs', sparsity: 0.5, refineIterations: 2 }, { calibrator: fixedCalibrator(profile, refine) });
    // each iteration measured a chess GGUF holding the thresholds of the step before
    expect(seen.map((s) => [s.iteration, s.arch])).toEqual([
      [1, 'chess'],
      [2, 'chess'],
    ]);
    const [dense, after1, after2] = await Promise.all([goldenThresholds(profile), goldenThresholds(scaled(1)), goldenThresholds(scaled(2))]);
    expect(closeToFloat32(seen[0]!.gate0, dense.layers[0]!.gate![0]!)).toBe(true);
    expect(closeToFloat32(seen[1]!.gate0, after1.layers[0]!.gate![0]!)).toBe(true);
    // what the thresholds in force dropped on each measurement
    expect(result.refinement).toHaveLength(2);
    // the step-1 thresholds (s-quantiles of scaled(1)) drop a quarter of scaled(2), whose scale is twice as large
    expect(result.refinement[1]!.achieved.ffn_gate_act![0]).toBeCloseTo(0.25, 6);
    expect(result.refinement[1]!.achieved.ffn_gate_act![1]).toBeCloseTo(0.25, 6);
    expect(result.refinement[1]!.achieved.attn_q_in![0]).toBeCloseTo(0.25, 6);
    // the file holds the thresholds of the last measurement
    expectThresholdsMatch(result.thresholds.layers, after2);
    const file = await openGGUF(out);
    try {
      expectThresholdsMatch(await thresholdsInFile(file, 2, 128), after2);
    } finally {
      await file.close();
    }
    // refinement does not change anything else: the same bytes as a plain transform with the measured profile
    const plain = join(work, 'plain-measured.gguf');
    await compile({ model, out: plain, method: 'chess+', statistic: 'mean-abs', sparsity: 0.5, refineTokens: 0 }, { calibrator: fixedCalibrator(scaled(2)) });
    expect(await sha256(plain)).toBe(await sha256(out));
  });

  it('refuses a bad iteration count before any work', async () => {
    const refine = async () => profile;
    await expect(compile({ model, out: join(work, 'bad.gguf'), method: 'chess', sparsity: 0.5, refineIterations: 11 }, { calibrator: fixedCalibrator(profile, refine) })).rejects.toMatchObject({
      code: 'TRANSFORM_BAD_OPTION',
    });
  });
});
