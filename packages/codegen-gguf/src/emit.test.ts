import { execFile } from 'node:child_process';
import { mkdtemp, rm, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL, fetchDefaultModel, sha256File } from '@chess/assets';
import { ensurePythonEnv } from '@chess/core';
import { openGGUF, dequantize, GGMLType } from '@chess/gguf';
import { importGGUF } from '@chess/import-gguf';
import { memoryWeight } from '@chess/ir';
import { loadStockLlama } from '@chess/backend-llamacpp';
import { emitGGUF } from './emit.ts';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));

let work: string;
let model: string;
let python: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-emit-'));
  model = await fetchDefaultModel();
  python = await ensurePythonEnv();
}, 300_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function compareWithGGUFPy(a: string, b: string): Promise<{ metadata: number; tensors: number; differences: string[] }> {
  const { stdout } = await run(python, [join(here, '__reference__', 'compare_gguf.py'), a, b], { maxBuffer: 64 << 20 });
  return JSON.parse(stdout);
}

describe('emitGGUF of an imported module with no pass applied', () => {
  let emitted: string;

  beforeAll(async () => {
    emitted = join(work, 'smollm2-reemitted.gguf');
    const { module, file } = await importGGUF(model);
    try {
      await emitGGUF(module, emitted);
    } finally {
      await file.close();
    }
  }, 120_000);

  it('reproduces the source file byte for byte (pinned upstream sha256)', async () => {
    expect(await sha256File(emitted)).toBe(DEFAULT_MODEL.sha256);
  });

  it('holds the same metadata and tensor bytes as the source according to gguf-py', async () => {
    const result = await compareWithGGUFPy(model, emitted);
    expect(result.differences).toEqual([]);
    expect(result.tensors).toBe(272);
    expect(result.metadata).toBe(33);
  }, 120_000);

  it('gives the same next-token probabilities as the source under stock llama.cpp', async () => {
    const llama = await loadStockLlama();
    try {
      const distributions = async (path: string) => {
        const loaded = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
        const context = await loaded.createContext({ contextSize: 64, threads: 2 });
        const tokens = loaded.tokenize('Once upon a time, in a small village by the sea,');
        const outputs = await context.getSequence().controlledEvaluate(tokens.map((t) => [t, { generateNext: { probabilities: true } }] as never));
        const result = outputs.map((o) => [...((o as { next: { probabilities: Map<number, number> } }).next.probabilities.entries())]);
        await context.dispose();
        await loaded.dispose();
        return result;
      };
      const source = await distributions(model);
      const reemitted = await distributions(emitted);
      expect(source.length).toBeGreaterThan(8);
      expect(reemitted).toEqual(source);
    } finally {
      await llama.dispose();
    }
  }, 300_000);
});

describe('emitGGUF of a changed module', () => {
  it('writes weights added by a pass and metadata added to the module, readable by gguf-py', async () => {
    const { module, file } = await importGGUF(model);
    const out = join(work, 'with-extra.gguf');
    try {
      const tau = new Float32Array(1536).map((_, i) => i / 1536);
      module.addWeight(memoryWeight('blk.0.ffn_gate_tau', 'f32', [1536], tau, { keep: true }));
      module.meta.push({ key: 'chess.test_marker', type: 'string', value: 'added by a pass' });
      await emitGGUF(module, out);
    } finally {
      await file.close();
    }
    const reread = await openGGUF(out);
    try {
      const info = reread.tensor('blk.0.ffn_gate_tau');
      expect(info?.shape).toEqual([1536]);
      expect(info?.type).toBe(GGMLType.F32);
      const values = dequantize(GGMLType.F32, await reread.readTensorData(info!), 1536);
      expect(values[768]).toBe(Math.fround(0.5));
      expect(reread.metadata.getString('chess.test_marker')).toBe('added by a pass');
    } finally {
      await reread.close();
    }
    // gguf-py sees one extra key and one extra tensor, everything else unchanged.
    const result = await compareWithGGUFPy(model, out);
    expect(result.differences).toContain('metadata keys or their order differ');
    expect(result.differences).toContain('tensor names or their order differ');
  }, 120_000);

  it('leaves no output (and no temporary file) when a weight cannot be produced', async () => {
    const { module, file } = await importGGUF(model);
    const dir = await mkdtemp(join(work, 'atomic-'));
    try {
      module.addWeight(
        memoryWeight('broken', 'f32', [4], () => {
          throw new Error('pass failed while producing data');
        }, { keep: true }),
      );
      await expect(emitGGUF(module, join(dir, 'out.gguf'))).rejects.toThrow('pass failed while producing data');
    } finally {
      await file.close();
    }
    expect(await readdir(dir)).toEqual([]);
  }, 120_000);
});
