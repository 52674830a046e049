// Every tensor of the real default model (Q4_1, F32, Q8_0) decodes to exactly
// the float32 bits gguf-py produces. Tensor locations come from gguf-py's
// reader, so this test does not depend on our container reader.
import { createHash } from 'node:crypto';
import { fetchDefaultModel } from '@chess/assets';
import { beforeAll, describe, expect, it } from 'vitest';
import { ggmlTypeName } from '../types.ts';
import { type ReferenceTensor, ggufPyDumpTensor, ggufPyModelManifest, readTensorBytes } from './__reference__/references.ts';
import { dequantize } from './registry.ts';

let modelPath: string;
let manifest: ReferenceTensor[];

beforeAll(async () => {
  modelPath = await fetchDefaultModel();
  manifest = await ggufPyModelManifest(modelPath);
}, 120_000);

async function firstMismatch(name: string, ours: Float32Array): Promise<string> {
  const reference = new Uint32Array((await ggufPyDumpTensor(modelPath, name)).buffer);
  const bits = new Uint32Array(ours.buffer, ours.byteOffset, ours.length);
  const i = bits.findIndex((b, k) => b !== reference[k]);
  return `${name}: element ${i}: ours 0x${bits[i]?.toString(16)}, gguf-py 0x${reference[i]?.toString(16)}`;
}

describe('SmolLM2 tensors dequantize bit-identically to gguf-py', () => {
  it('covers the model: 272 tensors of Q4_1, F32 and Q8_0', () => {
    const counts = new Map<string, number>();
    for (const t of manifest) counts.set(ggmlTypeName(t.type), (counts.get(ggmlTypeName(t.type)) ?? 0) + 1);
    expect(manifest).toHaveLength(272);
    expect(Object.fromEntries(counts)).toEqual({ q4_1: 210, f32: 61, q8_0: 1 });
  });

  it('matches every tensor', async () => {
    const mismatched: string[] = [];
    const diagnoses: string[] = [];
    for (const t of manifest) {
      const ours = dequantize(t.type, readTensorBytes(modelPath, t), t.elements);
      const digest = createHash('sha256').update(new Uint8Array(ours.buffer, ours.byteOffset, ours.byteLength)).digest('hex');
      if (digest === t.sha256) continue;
      mismatched.push(t.name);
      // Each diagnosis re-reads the model in Python: explain the first few only.
      if (diagnoses.length < 2) diagnoses.push(await firstMismatch(t.name, ours));
    }
    expect(`${mismatched.length} mismatched: ${mismatched.join(', ')}\n${diagnoses.join('\n')}`).toBe('0 mismatched: \n');
  }, 60_000);
});
