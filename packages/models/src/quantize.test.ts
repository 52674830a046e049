import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchDefaultModel } from '@chess/assets';
import { ensureStockTool } from '@chess/backend-llamacpp';
import { ensurePythonEnv, isChessError } from '@chess/core';
import { GGMLType, ggufValue, openGGUF, writeGGUF } from '@chess/gguf';
import { quantizeModel } from './quantize.ts';
import { parseShape, type ModelShape } from './shapes.ts';
import { synthesizeModel } from './synth.ts';
import { parseSynthTarget, synthesize } from './synth-target.ts';

const run = promisify(execFile);
let work: string;
let llamaQuantize: string;
let tokenizer: string;

/**
 * llama.cpp's Q4_K_M recipe for a llama model without experts or imatrix, restated from
 * llama_tensor_get_type / llama_tensor_get_type_impl / tensor_type_fallback in the bundled
 * tree's src/llama-quant.cpp (the golden; the code under test only runs llama-quantize):
 * - 1-D tensors (norms) are not quantized;
 * - output.weight, and token_embd.weight when tied to it: Q6_K, or Q8_0 when a row is not a
 *   multiple of 256;
 * - attn_v and ffn_down: Q6_K on the "more bits" layers (the first and last eighth, and every
 *   third layer between), Q4_K elsewhere;
 * - everything else Q4_K;
 * - a K-quant whose row (ne0) is not a multiple of 256 falls back: Q4_K to Q5_0, Q6_K to Q8_0.
 */
function q4kmType(name: string, ne0: number, nLayer: number, tied: boolean): GGMLType {
  if (name.endsWith('_norm.weight')) return GGMLType.F32;
  if (name === 'output.weight' || (tied && name === 'token_embd.weight')) return ne0 % 256 === 0 ? GGMLType.Q6_K : GGMLType.Q8_0;
  const fallback = (type: GGMLType): GGMLType => (ne0 % 256 === 0 ? type : type === GGMLType.Q6_K ? GGMLType.Q8_0 : GGMLType.Q5_0);
  const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(name);
  if (m && (m[2] === 'attn_v' || m[2] === 'ffn_down')) return fallback(moreBits(Number(m[1]), nLayer) ? GGMLType.Q6_K : GGMLType.Q4_K);
  return fallback(GGMLType.Q4_K);
}

function moreBits(layer: number, nLayer: number): boolean {
  const eighth = Math.floor(nLayer / 8);
  return layer < eighth || layer >= Math.floor((7 * nLayer) / 8) || (layer - eighth) % 3 === 2;
}

/** Tensor name -> ggml type number, read by our reader and by gguf-py (independent). */
async function tensorTypes(path: string): Promise<{ ours: Record<string, number>; ggufPy: Record<string, number>; ne0: Record<string, number> }> {
  const file = await openGGUF(path);
  const ours: Record<string, number> = {};
  const ne0: Record<string, number> = {};
  try {
    for (const t of file.tensors) {
      ours[t.name] = t.type;
      ne0[t.name] = t.shape[0]!;
    }
  } finally {
    await file.close();
  }
  const python = await ensurePythonEnv();
  const script = 'import sys, json, gguf; r = gguf.GGUFReader(sys.argv[1]); print(json.dumps({t.name: int(t.tensor_type) for t in r.tensors}))';
  const { stdout } = await run(python, ['-c', script, path], { maxBuffer: 16 << 20 });
  return { ours, ggufPy: JSON.parse(stdout) as Record<string, number>, ne0 };
}

async function expectQ4KM(path: string, shape: ModelShape): Promise<void> {
  const { ours, ggufPy, ne0 } = await tensorTypes(path);
  const expected = Object.fromEntries(Object.keys(ours).map((name) => [name, q4kmType(name, ne0[name]!, shape.nLayer, shape.tiedEmbeddings)]));
  expect(ours).toEqual(expected);
  expect(ggufPy).toEqual(expected);
}

// rows of 576 (not a multiple of 256): every projection but ffn_down falls back, as in SmolLM2's Q4_K_M
const TIED_576 = parseShape('{"base": "smollm2", "nLayer": 8, "name": "tiny-576"}');
// rows of 512 and 1024: the K-quants themselves, an untied output
const UNTIED_512 = parseShape(
  '{"base": "smollm2", "name": "tiny-512", "nLayer": 8, "nEmbd": 512, "nFF": 1024, "nHead": 8, "nHeadKV": 2, "tiedEmbeddings": false}',
);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-quantize-'));
  tokenizer = await fetchDefaultModel();
  llamaQuantize = await ensureStockTool('llama-quantize', (line) => process.stderr.write(`${line}\n`));
}, 60 * 60_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('synth q4_k_m (llama-quantize of an F16 synth)', () => {
  it.each([
    ['tied, rows of 576', TIED_576],
    ['untied, rows of 512', UNTIED_512],
  ])('has the tensor types of llama.cpp\'s Q4_K_M recipe (%s), by our reader and gguf-py', async (_label, shape) => {
    const out = join(work, `${shape.name}.q4_k_m.gguf`);
    const phases = new Set<string>();
    await synthesize({ shape, target: parseSynthTarget('q4_k_m'), out, seed: 1, tokenizerFrom: tokenizer, llamaQuantize: async () => llamaQuantize, progress: (phase) => phases.add(phase) });
    expect([...phases]).toEqual(['synth', 'quantize']);
    await expectQ4KM(out, shape);
    const file = await openGGUF(out);
    try {
      expect(file.metadata.getNumber('general.file_type')).toBe(15); // LLAMA_FTYPE_MOSTLY_Q4_K_M
      expect(file.metadata.getString('general.name')).toBe(`synthetic ${shape.name} q4_k_m`);
    } finally {
      await file.close();
    }
    // the F16 intermediate and llama-quantize's temporary output are gone
    expect((await readdir(work)).filter((f) => f.includes(shape.name))).toEqual([`${shape.name}.q4_k_m.gguf`]);
  }, 20 * 60_000);
});

describe('quantizeModel', () => {
  it('re-quantizes a quantized model only with allowRequantize, leaving nothing behind on failure', async () => {
    const q41 = join(work, 'untied.q4_1.gguf');
    await synthesizeModel({ shape: UNTIED_512, type: GGMLType.Q4_1, out: q41, seed: 2, tokenizerFrom: tokenizer });
    const out = join(work, 'requantized.q4_k_m.gguf');
    let error: unknown;
    try {
      await quantizeModel({ input: q41, out, preset: 'q4_k_m', llamaQuantize });
    } catch (e) {
      error = e;
    }
    expect(isChessError(error) && error.code).toBe('QUANTIZE_FAILED');
    expect((error as Error).message).toMatch(/untied\.q4_1\.gguf to Q4_K_M failed/);
    expect((await readdir(work)).filter((f) => f.includes('requantized'))).toEqual([]);

    const result = await quantizeModel({ input: q41, out, preset: 'q4_k_m', llamaQuantize, allowRequantize: true });
    expect(result.path).toBe(out);
    await expectQ4KM(out, UNTIED_512);
  }, 20 * 60_000);

  it('refuses a sparse GGUF and a missing input before running llama-quantize', async () => {
    const sparse = join(work, 'sparse.gguf');
    await writeGGUF(sparse, { metadata: [['general.architecture', ggufValue.string('chess')]], tensors: [] });
    const codeOf = async (input: string): Promise<string | false> => {
      try {
        await quantizeModel({ input, out: join(work, 'never.gguf'), preset: 'q8_0', llamaQuantize: '/nonexistent/llama-quantize' });
      } catch (e) {
        return isChessError(e) && e.code;
      }
      return false;
    };
    expect(await codeOf(sparse)).toBe('QUANTIZE_BAD_INPUT');
    expect(await codeOf(join(work, 'missing.gguf'))).toBe('QUANTIZE_BAD_INPUT');
  });
});
