import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256File } from '@chess/assets';
import { loadStockLlama } from '@chess/backend-llamacpp';
import { ensurePythonEnv } from '@chess/core';
import { GGMLType, dequantize, openGGUF } from '@chess/gguf';
import { parseSynthType } from './random-blocks.ts';
import { parseShape } from './shapes.ts';
import { synthesizeModel } from './synth.ts';

const run = promisify(execFile);
let work: string;
const TINY = parseShape('{"base": "smollm2", "nLayer": 2, "name": "tiny"}');

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-synth-'));
}, 60_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('synthesizeModel', () => {
  it('is reproducible: same seed same bytes, another seed other bytes', async () => {
    const a = join(work, 'a.gguf');
    const b = join(work, 'b.gguf');
    const c = join(work, 'c.gguf');
    await synthesizeModel({ shape: TINY, type: GGMLType.Q4_0, out: a, seed: 7 });
    await synthesizeModel({ shape: TINY, type: GGMLType.Q4_0, out: b, seed: 7 });
    await synthesizeModel({ shape: TINY, type: GGMLType.Q4_0, out: c, seed: 8 });
    expect(await sha256File(a)).toBe(await sha256File(b));
    expect(await sha256File(a)).not.toBe(await sha256File(c));
  }, 120_000);

  it.each(['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1'])('writes %s weights of the intended scale', async (typeName) => {
    const type = parseSynthType(typeName);
    const out = join(work, `tiny-${typeName}.gguf`);
    await synthesizeModel({ shape: TINY, type, out, seed: 1 });
    const file = await openGGUF(out);
    try {
      expect(file.metadata.getString('general.architecture')).toBe('llama');
      expect(file.tensors).toHaveLength(2 + 9 * 2);
      const up = file.tensor('blk.1.ffn_up.weight')!;
      expect(up.type).toBe(type);
      expect(up.shape).toEqual([576, 1536]);
      const values = dequantize(up.type, await file.readTensorData(up), up.elementCount);
      let sum = 0;
      let sq = 0;
      for (const v of values) {
        expect(Number.isFinite(v)).toBe(true);
        sum += v;
        sq += v * v;
      }
      const mean = sum / values.length;
      const std = Math.sqrt(sq / values.length - mean * mean);
      // Zero-mean (q4_0's (q - 8) d alone has mean -d/2 ~ -0.0022: block scales carry random signs).
      expect(Math.abs(mean)).toBeLessThan(0.0003);
      expect(std).toBeGreaterThan(0.015);
      expect(std).toBeLessThan(0.026);
    } finally {
      await file.close();
    }
  }, 120_000);

  it('writes files gguf-py reads (tensor table and data sizes)', async () => {
    const out = join(work, 'tiny-for-gguf-py.gguf');
    await synthesizeModel({ shape: TINY, type: GGMLType.Q8_0, out, seed: 2 });
    const python = await ensurePythonEnv();
    const script = 'import sys, gguf; r = gguf.GGUFReader(sys.argv[1]); print(len(r.tensors), r.fields["general.architecture"].contents(), sum(int(t.n_bytes) for t in r.tensors))';
    const { stdout } = await run(python, ['-c', script, out]);
    const file = await openGGUF(out);
    const bytes = file.tensors.reduce((n, t) => n + t.byteLength, 0);
    await file.close();
    expect(stdout.trim()).toBe(`20 llama ${bytes}`);
  }, 120_000);

  it('rejects unsupported types with the list of supported ones', () => {
    expect(() => parseSynthType('q6_K')).toThrow(/expected one of f32, f16, bf16, q8_0, q4_0, q4_1/);
  });

  it('produces a model stock llama.cpp loads and generates from', async () => {
    const out = join(work, 'gen-q4_1.gguf');
    await synthesizeModel({ shape: TINY, type: GGMLType.Q4_1, out, seed: 3 });
    const llama = await loadStockLlama();
    try {
      const model = await llama.loadModel({ modelPath: out, gpuLayers: 0 });
      const context = await model.createContext({ contextSize: 64, threads: 2 });
      const sequence = context.getSequence();
      const tokens = model.tokenize('Hello world');
      const generated: number[] = [];
      for await (const token of sequence.evaluate(tokens, { temperature: 0 })) {
        generated.push(token as number);
        if (generated.length === 8) break;
      }
      expect(generated).toHaveLength(8);
      for (const token of generated) expect(token).toBeLessThan(49152);
      await context.dispose();
      await model.dispose();
    } finally {
      await llama.dispose();
    }
  }, 180_000);
});
