/**
 * A new method needs only its layout: this file defines one that thresholds
 * one more site than CHESS w/ (the input of W_k, which CHESS leaves dense) and
 * runs it through the driver to a GGUF. Its tensors and metadata are checked
 * against the contract: the W_k input threshold (the s-quantile of the
 * profile's W_k input distribution, from its definition), W_k in column
 * blocks (the encoder of @chess/gguf on the source tensor; that encoder is
 * checked against numpy + gguf-py in @chess/gguf), W_v untouched.
 * Running the file on the patched runtime is the runtime's half (later).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGMLType, type GGUFFile, columnBlocksFromRows, dequantize, openGGUF } from '@chess/gguf';
import { registerMethod } from '@chess/pass-chess';
import { fixedCalibrator } from './calibrator.ts';
import { compile } from './compile.ts';
import { compilerListing } from './listing.ts';
import { TINY, inputScale, rmsOf, scoreScale, tinyModel, tinyProfile } from './__fixtures__/tiny.ts';

const TOY = registerMethod('chess-k', {
  summary: 'CHESS w/ plus one threshold on the input of W_k',
  gate: 'channel',
  inputs: ['attn_q', 'attn_k', 'attn_output'],
  inputSparse: ['attn_q', 'attn_k', 'attn_output', 'ffn_down'],
});

let work: string;
let model: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-compiler-toy-'));
  model = await tinyModel(join(work, 'tiny.gguf'), 7);
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const f32 = async (file: GGUFFile, name: string, n: number) => dequantize(GGMLType.F32, await file.readTensorData(file.tensor(name)!), n);

describe('a toy method defined here, through the driver to a GGUF', () => {
  it('writes the W_k input threshold and W_k in column blocks; the rest as for chess+', async () => {
    const out = join(work, 'toy.gguf');
    const result = await compile({ model, out, method: TOY, sparsity: 0.5, refineTokens: 0 }, { calibrator: fixedCalibrator(tinyProfile()) });
    expect(result.placements.map((p) => p.tensor)).toEqual([0, 1].flatMap((il) => ['attn_q', 'attn_k', 'attn_output', 'ffn_down'].map((p) => `blk.${il}.${p}_cb.weight`)));
    const file = await openGGUF(out);
    const source = await openGGUF(model);
    try {
      const md = file.metadata;
      expect(md.getString('general.architecture')).toBe('chess');
      expect(md.getString('chess.method')).toBe('chess-k');
      expect(md.getString('chess.statistic')).toBe('rms');
      expect(md.getNumber('chess.format_version')).toBe(2);
      for (let il = 0; il < TINY.nLayer; il++) {
        for (const p of ['attn_q', 'attn_k', 'attn_output'] as const) {
          expect(file.tensor(`blk.${il}.${p}_in_tau`)!.shape.map(Number)).toEqual([1]);
          expect((await f32(file, `blk.${il}.${p}_in_tau`, 1))[0]).toBe(Math.fround(0.5 * inputScale(il, p)));
        }
        const gate = await f32(file, `blk.${il}.ffn_gate_tau`, TINY.nFF);
        for (let i = 0; i < TINY.nFF; i += 17) expect(gate[i]).toBe(Math.fround((0.5 * scoreScale(il)) / rmsOf(i)));
        for (const p of ['attn_v', 'ffn_gate', 'ffn_up']) expect(file.tensor(`blk.${il}.${p}_in_tau`)).toBeUndefined();

        // W_k: the source's type, shape and bytes, re-arranged per input channel; its row layout gone
        const k = file.tensor(`blk.${il}.attn_k_cb.weight`)!;
        const src = source.tensor(`blk.${il}.attn_k.weight`)!;
        expect([k.type, k.shape.map(Number), k.byteLength]).toEqual([src.type, src.shape.map(Number), src.byteLength]);
        const [nIn, nOut] = src.shape.map(Number) as [number, number];
        expect(Buffer.from(await file.readTensorData(k)).equals(Buffer.from(columnBlocksFromRows(src.type, await source.readTensorData(src), nIn, nOut)))).toBe(true);
        expect(file.tensor(`blk.${il}.attn_k.weight`)).toBeUndefined();
        // W_v still reads the dense hidden state, in its row layout, byte for byte
        const v = file.tensor(`blk.${il}.attn_v.weight`)!;
        expect(Buffer.from(await file.readTensorData(v)).equals(Buffer.from(await source.readTensorData(source.tensor(`blk.${il}.attn_v.weight`)!)))).toBe(true);
      }
      // the source's tensors plus 2 layers x (gate + 3 input thresholds)
      expect(file.tensors.length).toBe(source.tensors.length + TINY.nLayer * 4);
    } finally {
      await file.close();
      await source.close();
    }
  });

  it('is listed with the methods and accepted by name; an unregistered name is refused with the list', async () => {
    expect(compilerListing().methods.map((m) => m.name)).toContain('chess-k');
    await expect(compile({ model, out: join(work, 'x.gguf'), method: 'chess-kv', refineTokens: 0 }, { calibrator: fixedCalibrator(tinyProfile()) })).rejects.toMatchObject({
      code: 'CHESS_UNKNOWN_METHOD',
      message: expect.stringMatching(/^method: unknown method 'chess-kv'; valid methods: chess, chess\+, cats, teal, budget, chess-k$/),
    });
  });
});
