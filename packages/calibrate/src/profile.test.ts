import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Xoshiro128 } from '@chess/models';
import { sha256OfFile } from './hash.ts';
import { ChannelHistograms, DEFAULT_HISTOGRAM_SPEC, Histogram } from './histogram.ts';
import { checkProfileMatchesModel, decodeProfile, encodeProfile, layerProfile, projectionInputs, readProfile, writeProfile, type CalibrationProfile } from './profile.ts';

function randomHistogram(rng: Xoshiro128, n: number): Histogram {
  const h = new Histogram();
  for (let i = 0; i < n; i++) h.add(rng.nextFloat() < 0.05 ? 0 : Math.exp(8 * (rng.nextFloat() - 0.7)));
  return h;
}

const CHANNEL_SPEC = { subBits: 3, minExp: -16, maxExp: 6 };

function syntheticProfile(seed: number, sha256 = 'ab'.repeat(32)): CalibrationProfile {
  const rng = new Xoshiro128(seed);
  const nFF = 48;
  const layers = Array.from({ length: 3 }, () => {
    const upMeanAbs = Float64Array.from({ length: nFF }, () => rng.nextFloat());
    const upRms = upMeanAbs.map((v) => v * 1.3);
    const qkv = randomHistogram(rng, 500);
    const gateUp = randomHistogram(rng, 500);
    const gateChannels = new ChannelHistograms(CHANNEL_SPEC, nFF);
    for (let i = 0; i < nFF; i++) for (let k = 0; k < 20; k++) gateChannels.add(i, rng.nextFloat() < 0.05 ? 0 : Math.exp(8 * (rng.nextFloat() - 0.7)));
    return layerProfile({ upMeanAbs, upRms, gateAbs: randomHistogram(rng, 300), gateChannels, inputs: projectionInputs(qkv, randomHistogram(rng, 200), gateUp, randomHistogram(rng, 200)) });
  });
  return {
    format: 2,
    model: { sha256, file: 'm.gguf', arch: 'llama', nLayer: 3, nEmbd: 16, nFF, nHead: 2, nHeadKV: 1 },
    calibration: { source: 'synthetic', textSha256: 'cd'.repeat(32), tokens: 100, windowTokens: 50, seed, tool: 'test' },
    histogram: { ...DEFAULT_HISTOGRAM_SPEC },
    channelHistogram: { ...CHANNEL_SPEC },
    layers,
  };
}

describe('profile file', () => {
  it('round-trips exactly and encodes deterministically', async () => {
    const p = syntheticProfile(1);
    const bytes = encodeProfile(p);
    expect(Buffer.from(encodeProfile(syntheticProfile(1))).equals(Buffer.from(bytes))).toBe(true);
    expect(Buffer.from(encodeProfile(syntheticProfile(2))).equals(Buffer.from(bytes))).toBe(false);
    const dir = await mkdtemp(join(tmpdir(), 'chess-prof-'));
    await writeProfile(join(dir, 'p.prof'), p);
    const q = await readProfile(join(dir, 'p.prof'));
    expect(q.model).toEqual(p.model);
    expect(q.calibration).toEqual(p.calibration);
    for (let il = 0; il < 3; il++) {
      const a = p.layers[il]!;
      const b = q.layers[il]!;
      expect(b.upMeanAbs).toEqual(a.upMeanAbs);
      expect(b.upRms).toEqual(a.upRms);
      for (const [x, y] of [
        [a.gateAbs, b.gateAbs],
        [a.gateChannels.channel(0), b.gateChannels.channel(0)],
        [a.gateChannels.channel(47), b.gateChannels.channel(47)],
        [a.inputs.attn_q, b.inputs.attn_q],
        [a.inputs.attn_output, b.inputs.attn_output],
        [a.inputs.ffn_up, b.inputs.ffn_up],
        [a.inputs.ffn_down, b.inputs.ffn_down],
      ] as const) {
        expect(y.counts).toEqual(x.counts);
        expect([y.zeros, y.underflow, y.overflow, y.min, y.max]).toEqual([x.zeros, x.underflow, x.overflow, x.min, x.max]);
        expect(y.quantile(0.37)).toBe(x.quantile(0.37));
      }
      expect(b.gateChannels.counts).toEqual(a.gateChannels.counts);
      expect(b.gateChannels.min).toEqual(a.gateChannels.min);
      expect(b.gateChannels.max).toEqual(a.gateChannels.max);
      expect(b.score.rms.quantile(0.5)).toBe(a.score.rms.quantile(0.5));
      expect(b.score['mean-abs'].quantile(0.3)).toBe(a.score['mean-abs'].quantile(0.3));
      // q, k, v read one input; gate and up read one input
      expect(b.inputs.attn_k).toBe(b.inputs.attn_q);
      expect(b.inputs.attn_v).toBe(b.inputs.attn_q);
      expect(b.inputs.ffn_gate).toBe(b.inputs.ffn_up);
    }
    expect(Buffer.from(encodeProfile(q)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('refuses files that are not profiles, truncated or of another format', async () => {
    const bytes = Buffer.from(encodeProfile(syntheticProfile(3)));
    expect(() => decodeProfile(Buffer.from('hello world, not a profile'), 'x.prof')).toThrow(/x\.prof: not a CHESS calibration profile/);
    expect(() => decodeProfile(bytes.subarray(0, bytes.length - 8), 'cut.prof')).toThrow(expect.objectContaining({ code: 'PROFILE_INVALID' }));
    const v1 = Buffer.from(bytes);
    v1.writeUInt32LE(1, 8);
    expect(() => decodeProfile(v1, 'v1.prof')).toThrow(/v1\.prof: profile format 1, this tool reads format 2/);
    await expect(readProfile('/nonexistent/p.prof')).rejects.toMatchObject({ code: 'PROFILE_UNREADABLE' });
  });

  it('checks that a profile was made from the given model file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'chess-prof-'));
    await writeFile(join(dir, 'a.gguf'), 'model A');
    await writeFile(join(dir, 'b.gguf'), 'model B');
    const p = syntheticProfile(4, await sha256OfFile(join(dir, 'a.gguf')));
    await expect(checkProfileMatchesModel(p, join(dir, 'a.gguf'))).resolves.toBeUndefined();
    const error = await checkProfileMatchesModel(p, join(dir, 'b.gguf')).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PROFILE_MODEL_MISMATCH', details: { profileModel: 'm.gguf', model: join(dir, 'b.gguf') } });
    expect((error as Error).message).toContain('m.gguf');
    expect((error as Error).message).toContain(join(dir, 'b.gguf'));
    expect(await readFile(join(dir, 'b.gguf'), 'utf8')).toBe('model B');
  });
});
