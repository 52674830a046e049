import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type LlamaHParams, buildLlamaModule, llamaTensors } from './llama.ts';
import type { Weight } from './module.ts';
import { print } from './printer.ts';
import { runFixtures } from './testing/fixtures.ts';
import type { DType } from './types.ts';
import { verify } from './verifier.ts';

runFixtures('buildLlamaModule', join(import.meta.dirname, '__fixtures__', 'llama'), {
  transform({ options }) {
    const hparams = options.hparams as LlamaHParams;
    const drop = options.dropTensor as string | undefined;
    const module = drop
      ? buildLlamaModule(hparams, { tensors: fileTensors(hparams).filter((t) => t.name !== drop) })
      : buildLlamaModule(hparams, { ...(options.dtype !== undefined && { dtype: options.dtype as DType }) });
    verify(module);
    return print(module);
  },
});

/** What an importer would pass: every tensor of the file with its byte range. */
function fileTensors(hparams: LlamaHParams, extra: Weight[] = []): Weight[] {
  let offset = 4096;
  const tensors = llamaTensors(hparams).map((t): Weight => {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * (t.vector ? 4 : 2);
    const w: Weight = { name: t.name, dtype: t.vector ? 'f32' : 'f16', shape: t.shape, source: { kind: 'file', file: 'gguf', offset, byteLength: bytes } };
    offset += bytes;
    return w;
  });
  return [...tensors, ...extra];
}

const tiny: LlamaHParams = { n_layer: 2, n_embd: 32, n_ff: 64, n_head: 4, n_head_kv: 2, n_vocab: 40, rms_eps: 1e-5, rope: { freq_base: 10000 } };

describe('buildLlamaModule from a file tensor table', () => {
  it('takes dtypes and byte ranges from the table and keeps unused tensors', () => {
    const extra: Weight = { name: 'rope_freqs.unrelated', dtype: 'f32', shape: [3], source: { kind: 'file', file: 'gguf', offset: 0, byteLength: 12 } };
    const m = buildLlamaModule(tiny, { tensors: fileTensors({ ...tiny, tied_embeddings: false }, [extra]) });
    m.addSource('gguf', 'tiny.gguf');
    verify(m);
    expect(m.weight('blk.1.ffn_up.weight')).toMatchObject({ dtype: 'f16', source: { kind: 'file', file: 'gguf' } });
    expect(m.weight('rope_freqs.unrelated')?.keep).toBe(true);
    expect(print(m)).toContain('@rope_freqs.unrelated : f32[3] = file(gguf, offset=0, bytes=12) keep');
  });

  it('detects tied embeddings, q/k/v biases and frequency factors from the tensors present', () => {
    const table = fileTensors({ ...tiny, tied_embeddings: true, qkv_bias: true, rope: { freq_base: 10000, freq_factors: true } });
    expect(table.some((t) => t.name === 'output.weight')).toBe(false);
    const m = buildLlamaModule(tiny, { tensors: table });
    expect(m.hparams.get('tied_embeddings')).toBe(true);
    expect(m.hparams.get('qkv_bias')).toBe(true);
    expect(m.hparams.get('rope_freq_factors')).toBe(true);
    const head = m.nodes.find((n) => n.name === 'result_output')!;
    expect(head.operands[1]).toMatchObject({ name: 'token_embd.weight' });
    expect(m.nodes.filter((n) => n.op === 'linear' && n.operands.length === 3)).toHaveLength(6);
  });

  it('rejects a tensor whose shape disagrees with the hyperparameters', () => {
    const table = fileTensors(tiny).map((t) => (t.name === 'blk.0.attn_k.weight' ? { ...t, shape: [32, 32] } : t));
    expect(() => buildLlamaModule(tiny, { tensors: table })).toThrow(/blk\.0\.attn_k\.weight has shape \[32,32\], expected \[16,32\]/);
  });

  it('names weights per layer and tags every block op with its layer', () => {
    const m = buildLlamaModule({ ...tiny, n_layer: 30 });
    const layers = new Set(m.nodes.map((n) => n.layer).filter((l) => l !== undefined));
    expect(layers.size).toBe(30);
    expect(m.weight('blk.29.ffn_down.weight')?.shape).toEqual([32, 64]);
    verify(m);
  });
});
