/**
 * The `budget` method through the driver on the tiny synthetic model (the
 * structure, not accuracy: a synthetic model says nothing about that): the
 * allocation fits the budget by the bench's own byte model (@chess/bench
 * weightTraffic over the written file's tensor table, with counters made to
 * drop exactly the allocated fraction at each site, against the dense source's
 * table), it is recorded in the file and read back, the thresholds are the
 * profile's quantiles at the allocated levels (the gate's weight-aware:
 * tau_i m_i |W_down col i| is one value per layer), the output is the same
 * bytes on a second run, and bad options fail before any calibration.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SparsityCounters, readWeightTable, weightTraffic } from '@chess/bench';
import { ChannelHistograms, Histogram, PROJECTIONS, type Projection, layerProfile } from '@chess/calibrate';
import { SPARSE_GGUF, recordedBudget } from '@chess/contract';
import { mulberry32 } from '@chess/core';
import { GGMLType, type GGUFFile, dequantize, openGGUF } from '@chess/gguf';
import type { ThresholdProfile } from '@chess/pass-chess';
import { type Calibrator, fixedCalibrator } from './calibrator.ts';
import { compile } from './compile.ts';
import { TINY, tinyModel } from './__fixtures__/tiny.ts';

let work: string;
let model: string;

/** A profile of the tiny model with real histograms of seeded random activations (scales differ per layer and projection). */
function histogramProfile(seed = 5): ThresholdProfile {
  const r = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const spec = { subBits: 8, minExp: -34, maxExp: 14 };
  const chSpec = { subBits: 3, minExp: -16, maxExp: 6 };
  const layers = Array.from({ length: TINY.nLayer }, (_, il) => {
    const inputs = new Map<string, Histogram>();
    const hist = (key: string, scale: number) => {
      const h = new Histogram(spec);
      for (let n = 0; n < 4000; n++) h.add(scale * gauss() * (r() < 0.1 ? 4 : 1));
      inputs.set(key, h);
      return h;
    };
    const qkv = hist('qkv', 1 + il);
    const o = hist('o', 0.5 + il);
    const gu = hist('gu', 2 - il * 0.5);
    const down = hist('down', 0.3);
    const gateChannels = new ChannelHistograms(chSpec, TINY.nFF);
    const gateAbs = new Histogram(spec);
    for (let i = 0; i < TINY.nFF; i++) {
      const scale = 0.2 + (i % 7) * 0.1;
      for (let n = 0; n < 200; n++) {
        const v = scale * gauss();
        gateChannels.add(i, v);
        gateAbs.add(v);
      }
    }
    const byProj: Record<Projection, Histogram> = { attn_q: qkv, attn_k: qkv, attn_v: qkv, attn_output: o, ffn_gate: gu, ffn_up: gu, ffn_down: down };
    return layerProfile({
      upMeanAbs: Float64Array.from({ length: TINY.nFF }, (_, i) => 0.5 + i / TINY.nFF),
      upRms: Float64Array.from({ length: TINY.nFF }, (_, i) => 0.6 + i / TINY.nFF),
      gateAbs,
      gateChannels,
      inputs: Object.fromEntries(PROJECTIONS.map((p) => [p, byProj[p]])) as Record<Projection, Histogram>,
    });
  });
  return {
    model: { arch: 'llama', nLayer: TINY.nLayer, nEmbd: TINY.nEmbd, nFF: TINY.nFF, file: 'tiny.gguf' },
    calibration: { source: 'synthetic-test', tokens: 4000, seed },
    layers,
  };
}

const refusing: Calibrator = {
  async profile() {
    throw new Error('the calibrator must not be called');
  },
};

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-compiler-budget-'));
  model = await tinyModel(join(work, 'tiny.gguf'), 11);
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const f32 = async (file: GGUFFile, name: string, n: number) => dequantize(GGMLType.F32, await file.readTensorData(file.tensor(name)!), n);

/** Counters that drop exactly `sparsity[layer][site]` at each site (and the gate's zeros at W_down's input, as the runtime counts them). */
function countersOf(sites: readonly string[], sparsity: readonly (readonly number[])[]): SparsityCounters {
  const seen = 1 << 20;
  const layers = new Map<number, Record<string, { seen: number; zeroed: number }>>();
  sparsity.forEach((row, il) => {
    const entry: Record<string, { seen: number; zeroed: number }> = {};
    row.forEach((s, k) => (entry[sites[k]!] = { seen, zeroed: Math.round(s * seen) }));
    if (entry.ffn_gate_act) entry.ffn_down_in = { ...entry.ffn_gate_act };
    layers.set(il, entry);
  });
  return { nLayer: sparsity.length, layers } as SparsityCounters;
}

describe('budget method on the tiny model', () => {
  it('fits the budget by the bench byte model, records its allocation, and thresholds at the allocated levels', async () => {
    const profile = histogramProfile();
    const dense = await readWeightTable(model);
    const denseBytes = weightTraffic(dense, null).readBytes;
    for (const budget of [0.995, 0.99, 0.985]) {
      const out = join(work, `budget-${budget}.gguf`);
      const result = await compile({ model, out, method: 'budget', budget, refineTokens: 0 }, { calibrator: fixedCalibrator(profile) });
      const allocation = result.thresholds.allocation!;
      expect(allocation.budget).toBe(budget);
      expect(allocation.estimate).toBeLessThanOrEqual(budget);
      expect(allocation.sites).toEqual(['ffn_gate_act', 'attn_q_in', 'attn_k_in', 'attn_v_in', 'attn_output_in', 'ffn_gate_in']);
      expect(allocation.sparsity.flat().some((s) => s > 0)).toBe(true);

      // the bench's byte model on the written file (less the thresholds it reads too: the budget is of weight bytes)
      const table = await readWeightTable(out);
      const tauBytes = table.filter((t) => t.name.endsWith('_tau')).reduce((a, t) => a + t.bytes, 0);
      const read = weightTraffic(table, countersOf(allocation.sites, allocation.sparsity)).readBytes - tauBytes;
      expect(read / denseBytes).toBeLessThanOrEqual(budget + 1e-9);
      expect(Math.abs(read / denseBytes - allocation.estimate)).toBeLessThan(1e-6);

      const file = await openGGUF(out);
      const source = await openGGUF(model);
      try {
        const md = file.metadata;
        expect(md.getString(SPARSE_GGUF.keys.method)).toBe('budget');
        const raw = (key: string): unknown => {
          const v = md.get(key);
          if (v === undefined) return undefined;
          return 'items' in v ? Array.from(v.items as ArrayLike<unknown>) : v.value;
        };
        const recorded = recordedBudget(raw);
        expect(recorded).not.toBeNull();
        expect(typeof recorded).not.toBe('string');
        const rec = recorded as Exclude<typeof recorded, string | null>;
        expect(rec.budget).toBe(Math.fround(budget));
        expect(rec.estimate).toBe(Math.fround(allocation.estimate));
        expect(rec.sites).toEqual(allocation.sites);
        expect(rec.sparsity).toEqual(allocation.sparsity.map((row) => row.map(Math.fround)));
        expect(md.getNumber(SPARSE_GGUF.keys.targetSparsity)).toBe(Math.fround(allocation.sparsity.flat().reduce((a, b) => a + b, 0) / allocation.sparsity.flat().length));

        for (let il = 0; il < TINY.nLayer; il++) {
          const lp = profile.layers[il]!;
          // inputs: the quantile of the input histogram at the allocated level (0 at level 0)
          for (const [k, site] of allocation.sites.entries()) {
            if (site === 'ffn_gate_act') continue;
            const proj = site.replace(/_in$/, '') as Projection;
            const s = allocation.sparsity[il]![k]!;
            expect((await f32(file, `blk.${il}.${proj}_in_tau`, 1))[0]).toBe(Math.fround(s === 0 ? 0 : lp.inputs[proj].quantile(s)));
          }
          // gate: tau_i * m_i * |W_down col i| is the same for every channel (weight-aware scores), the level-quantile of those scores
          const s = allocation.sparsity[il]![0]!;
          const tau = await f32(file, `blk.${il}.ffn_gate_tau`, TINY.nFF);
          const down = source.tensor(`blk.${il}.ffn_down.weight`)!;
          const w = dequantize(down.type, await source.readTensorData(down), TINY.nFF * TINY.nEmbd);
          const c = Array.from({ length: TINY.nFF }, (_, i) => Math.sqrt(Array.from({ length: TINY.nEmbd }, (_, r) => w[r * TINY.nFF + i]! ** 2).reduce((a, b) => a + b, 0)));
          const t = Array.from(tau, (v, i) => v * lp.upRms[i]! * c[i]!);
          if (s === 0) expect(t.every((v) => v === 0)).toBe(true);
          else {
            for (const v of t) expect(Math.abs(v / t[0]! - 1)).toBeLessThan(1e-6);
            // the fraction of the calibration's weighted scores at or below t is the allocated level
            const scale = Array.from({ length: TINY.nFF }, (_, i) => lp.upRms[i]! * c[i]!);
            expect(lp.gateChannels!.mixtureCdf(scale, t[0]!)).toBeCloseTo(s, 3);
          }
        }
      } finally {
        await file.close();
        await source.close();
      }
    }
  }, 300_000);

  it('the same inputs give the same file, byte for byte', async () => {
    const digest = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');
    const a = join(work, 'again-a.gguf');
    const b = join(work, 'again-b.gguf');
    await compile({ model, out: a, method: 'budget', budget: 0.99, refineTokens: 0 }, { calibrator: fixedCalibrator(histogramProfile()) });
    await compile({ model, out: b, method: 'budget', budget: 0.99, refineTokens: 0 }, { calibrator: fixedCalibrator(histogramProfile()) });
    expect(await digest(a)).toBe(await digest(b));
  }, 300_000);

  it('refuses bad options, naming the option, before calibrating', async () => {
    const out = join(work, 'bad.gguf');
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ method: 'chess+', budget: 0.8 }, 'CHESS_BUDGET_METHOD', /^budget: a byte budget applies only to a budget method \(budget\), not to 'chess\+'/],
      [{ method: 'budget' }, 'CHESS_BUDGET_REQUIRED', /^budget: required by method 'budget'/],
      [{ method: 'budget', budget: 0 }, 'CHESS_BAD_BUDGET', /^budget: expected a fraction .* in \(0, 1\], got '0'/],
      [{ method: 'budget', budget: 1.5 }, 'CHESS_BAD_BUDGET', /got '1.5'/],
      [{ method: 'budget', budget: 'most' }, 'CHESS_BAD_BUDGET', /got 'most'/],
      [{ method: 'budget', budget: 0.8, sparsity: 0.5 }, 'CHESS_BUDGET_METHOD', /^sparsity: method 'budget' allocates sparsity per layer and site from budget; drop sparsity/],
      [{ method: 'budget', budget: 0.8, layout: 'transposed' }, 'CHESS_LAYOUT_CONFLICT', /^layout: method 'budget' budgets the bytes of the column-block layout/],
      // the tied output head alone is most of this model: 0.5 cannot be reached
      [{ method: 'budget', budget: 0.5 }, 'CHESS_BUDGET_UNREACHABLE', /^budget 0.5 is below what this method can reach on this model: 0\.9\d+ of the dense bytes/],
    ];
    for (const [input, code, message] of cases) {
      await expect(compile({ model, out, refineTokens: 0, ...input }, { calibrator: refusing }), JSON.stringify(input)).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
    }
  }, 300_000);
});
