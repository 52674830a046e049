import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchDefaultModel } from '@chess/assets';
import { ensurePythonEnv, isChessError } from '@chess/core';
import { GGMLType, ggufValue, writeGGUF } from '@chess/gguf';
import { print } from '@chess/ir';
import { importGGUF } from './import.ts';

const run = promisify(execFile);
let work: string;
let model: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-import-'));
  model = await fetchDefaultModel();
}, 300_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Hyperparameters and tensor table as gguf-py reads them: the independent reference. */
const GGUF_PY_DUMP = `
import json, sys, gguf
r = gguf.GGUFReader(sys.argv[1])
def v(key):
    f = r.fields.get(key)
    return None if f is None else f.contents()
keys = ["general.architecture", "llama.block_count", "llama.embedding_length", "llama.feed_forward_length",
        "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.freq_base",
        "llama.attention.layer_norm_rms_epsilon", "llama.rope.dimension_count", "llama.vocab_size"]
print(json.dumps({"kv": {k: v(k) for k in keys},
                  "tensors": [{"name": t.name, "ne": [int(x) for x in t.shape], "type": t.tensor_type.name.lower(),
                               "offset": int(t.data_offset), "bytes": int(t.n_bytes)} for t in r.tensors]}))
`;

describe('importGGUF on SmolLM2-135M-Instruct', () => {
  it('reads the hyperparameters and tensor table exactly as gguf-py does', async () => {
    const python = await ensurePythonEnv();
    const { stdout } = await run(python, ['-c', GGUF_PY_DUMP, model], { maxBuffer: 64 << 20 });
    const ref = JSON.parse(stdout) as { kv: Record<string, number | string>; tensors: { name: string; ne: number[]; type: string; offset: number; bytes: number }[] };
    const { module, file } = await importGGUF(model);
    try {
      expect(module.arch).toBe(ref.kv['general.architecture']);
      expect(module.hparams.get('n_layer')).toBe(ref.kv['llama.block_count']);
      expect(module.hparams.get('n_embd')).toBe(ref.kv['llama.embedding_length']);
      expect(module.hparams.get('n_ff')).toBe(ref.kv['llama.feed_forward_length']);
      expect(module.hparams.get('n_head')).toBe(ref.kv['llama.attention.head_count']);
      expect(module.hparams.get('n_head_kv')).toBe(ref.kv['llama.attention.head_count_kv']);
      expect(module.hparams.get('rope_freq_base')).toBe(ref.kv['llama.rope.freq_base']);
      expect(module.hparams.get('rope_n_rot')).toBe(ref.kv['llama.rope.dimension_count']);
      expect(module.hparams.get('rms_eps')).toBe(ref.kv['llama.attention.layer_norm_rms_epsilon']);
      expect(module.hparams.get('n_vocab')).toBe(ref.kv['llama.vocab_size']);
      expect(module.hparams.get('tied_embeddings')).toBe(true);
      expect([...module.weights.keys()]).toEqual(ref.tensors.map((t) => t.name));
      for (const t of ref.tensors) {
        const w = module.weight(t.name)!;
        expect(w.dtype.toLowerCase()).toBe(t.type);
        // IR shapes are outermost first: the ggml ne order reversed.
        expect(w.shape).toEqual([...t.ne].reverse());
        expect(w.source).toMatchObject({ kind: 'file', offset: t.offset, byteLength: t.bytes });
      }
    } finally {
      await file.close();
    }
  }, 120_000);

  it('builds the expected decoder graph: 30 blocks, tied output head on token_embd', async () => {
    const { module, file } = await importGGUF(model);
    await file.close();
    const text = print(module, { elideMetaArrays: 4 });
    expect(text).toContain('%result_output = linear %result_norm @token_embd.weight : f32[T,49152]');
    expect(text).toContain('%ffn_up.29 = linear %ffn_norm.29 @blk.29.ffn_up.weight : f32[T,1536] {layer=29}');
    expect(text).toMatch(/%kqv_out\.0 = attention %Qcur_rope\.0 %Kcur_rope\.0 %Vcur\.0 : f32\[T,576\] \{layer=0, n_head=9, n_head_kv=3, head_dim=64/);
    expect(module.nodes.filter((n) => n.op === 'attention')).toHaveLength(30);
  }, 60_000);
});

describe('importGGUF errors and other architectures', () => {
  async function tinyModel(path: string, arch: string, extra: { bias?: boolean } = {}): Promise<void> {
    const n = 32;
    const f32 = (count: number) => () => Promise.resolve(new Uint8Array(new Float32Array(count).fill(0.01).buffer));
    const tensors = [
      { name: 'token_embd.weight', shape: [n, 8], type: GGMLType.F32, data: f32(n * 8) },
      { name: 'output_norm.weight', shape: [n], type: GGMLType.F32, data: f32(n) },
      ...['attn_norm', 'ffn_norm'].map((t) => ({ name: `blk.0.${t}.weight`, shape: [n], type: GGMLType.F32, data: f32(n) })),
      // 4 heads of 8, 2 KV heads: k and v project to 16.
      ...['attn_q', 'attn_output'].map((t) => ({ name: `blk.0.${t}.weight`, shape: [n, n], type: GGMLType.F32, data: f32(n * n) })),
      ...['attn_k', 'attn_v'].map((t) => ({ name: `blk.0.${t}.weight`, shape: [n, 16], type: GGMLType.F32, data: f32(n * 16) })),
      ...(extra.bias
        ? [['attn_q', n], ['attn_k', 16], ['attn_v', 16]].map(([t, size]) => ({ name: `blk.0.${t}.bias`, shape: [size as number], type: GGMLType.F32, data: f32(size as number) }))
        : []),
      { name: 'blk.0.ffn_gate.weight', shape: [n, 64], type: GGMLType.F32, data: f32(n * 64) },
      { name: 'blk.0.ffn_up.weight', shape: [n, 64], type: GGMLType.F32, data: f32(n * 64) },
      { name: 'blk.0.ffn_down.weight', shape: [64, n], type: GGMLType.F32, data: f32(n * 64) },
    ];
    await writeGGUF(path, {
      metadata: [
        ['general.architecture', ggufValue.string(arch)],
        [`${arch}.block_count`, ggufValue.u32(1)],
        [`${arch}.embedding_length`, ggufValue.u32(n)],
        [`${arch}.feed_forward_length`, ggufValue.u32(64)],
        [`${arch}.attention.head_count`, ggufValue.u32(4)],
        [`${arch}.attention.head_count_kv`, ggufValue.u32(2)],
        [`${arch}.attention.layer_norm_rms_epsilon`, ggufValue.f32(1e-6)],
        [`${arch}.rope.freq_base`, ggufValue.f32(1e6)],
        ['tokenizer.ggml.tokens', ggufValue.strings(Array.from({ length: 8 }, (_, i) => `t${i}`))],
      ],
      tensors,
    });
  }

  it('rejects an unknown architecture with an error listing the supported ones', async () => {
    const path = join(work, 'unknown-arch.gguf');
    await tinyModel(path, 'gptx');
    const error = await importGGUF(path).catch((e: unknown) => e);
    expect(isChessError(error) && error.code).toBe('IMPORT_UNSUPPORTED_ARCH');
    expect((error as Error).message).toContain(path);
    expect((error as Error).message).toContain("'gptx'");
    expect((error as Error).message).toMatch(/llama .*qwen2/);
  });

  it('imports a qwen2 layout: q/k/v biases on the linears, neox RoPE', async () => {
    const path = join(work, 'qwen2.gguf');
    await tinyModel(path, 'qwen2', { bias: true });
    const { module, file } = await importGGUF(path);
    await file.close();
    const text = print(module);
    expect(text).toContain('%Qcur.0 = linear %attn_norm.0 @blk.0.attn_q.weight @blk.0.attn_q.bias : f32[T,32] {layer=0}');
    expect(text).toMatch(/%Qcur_rope\.0 = rope %Qcur\.0 : f32\[T,32\] \{layer=0, .*mode=neox/);
    expect(module.hparams.get('n_vocab')).toBe(8);
  });

  it('names the file and key when a required hyperparameter is missing', async () => {
    const path = join(work, 'missing-key.gguf');
    await writeGGUF(path, { metadata: [['general.architecture', ggufValue.string('llama')]], tensors: [] });
    const error = await importGGUF(path).catch((e: unknown) => e);
    expect(isChessError(error)).toBe(true);
    expect((error as Error).message).toContain(path);
    expect((error as Error).message).toMatch(/metadata key 'llama\.[a-z_.]+' is missing/);
  });
});
