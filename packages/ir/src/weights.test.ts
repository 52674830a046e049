import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Module } from './module.ts';
import { parse } from './parser.ts';
import { print } from './printer.ts';
import { memoryWeight, weightBytes, weightChunks } from './weights.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chess-ir-weights-'));
  await writeFile(join(dir, 'model.bin'), Uint8Array.from({ length: 100 }, (_, i) => i));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('weight bytes', () => {
  it('streams a file range in chunks, resolving relative sources against baseDir', async () => {
    const m = new Module();
    m.addSource('model', 'model.bin');
    m.addWeight({ name: 'w', dtype: 'f16', shape: [5], source: { kind: 'file', file: 'model', offset: 10, byteLength: 10 } });
    const chunks: number[][] = [];
    for await (const c of weightChunks(m, 'w', { baseDir: dir, chunkBytes: 4 })) chunks.push(Array.from(c));
    expect(chunks).toEqual([[10, 11, 12, 13], [14, 15, 16, 17], [18, 19]]);
  });

  it('fails clearly when the file is shorter than the range', async () => {
    const m = new Module();
    m.addSource('model', join(dir, 'model.bin'));
    m.addWeight({ name: 'w', dtype: 'f32', shape: [8], source: { kind: 'file', file: 'model', offset: 90, byteLength: 32 } });
    await expect(weightBytes(m, 'w')).rejects.toThrow(/ends at 100, expected 32 bytes from offset 90/);
  });

  it('serves memory weights, eager or lazy, and refuses detached ones', async () => {
    const m = new Module();
    const thr = new Float32Array([0.5, -1]);
    m.addWeight(memoryWeight('thr', 'f32', [2], thr));
    m.addWeight(memoryWeight('lazy', 'i32', [1], async () => new Int32Array([7])));
    expect(Array.from(new Float32Array((await weightBytes(m, 'thr')).slice().buffer))).toEqual([0.5, -1]);
    expect(Array.from(new Int32Array((await weightBytes(m, 'lazy')).slice().buffer))).toEqual([7]);
    expect(() => memoryWeight('bad', 'f32', [3], thr)).toThrow(/needs 12 bytes, got 8/);
    // the text form records that data lives in memory, not the data itself
    const back = parse(print(m));
    await expect(weightBytes(back, 'thr')).rejects.toThrow(expect.objectContaining({ code: 'IR_WEIGHT_DETACHED' }));
  });
});
