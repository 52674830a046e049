// The quantizers produce exactly the bytes of llama.cpp's reference quantizers
// (quantize_row_*_ref and the fp32->fp16/bf16 conversions, compiled from the
// pristine tree by __reference__/quantize_ref.c), on seeded synthetic
// distributions and on real SmolLM2 tensors; and agree with gguf-py's
// gguf.quants.quantize (a numpy port of the same code) on the same inputs.
import { fetchDefaultModel } from '@chess/assets';
import { beforeAll, describe, expect, it } from 'vitest';
import { GGMLType, ggmlTypeFromName, ggmlTypeTraits } from '../types.ts';
import { type NamedValues, quantizerInputs } from './__fixtures__/inputs.ts';
import {
  HARNESS_OUTPUTS,
  type HarnessOutput,
  cQuantize,
  ggufPyJobs,
  ggufPyTensorLocations,
  readTensorBytes,
} from './__reference__/references.ts';
import { dequantize, quantize } from './registry.ts';

const synthetic = quantizerInputs(20240607).filter((input) => !input.x86Only || process.arch === 'x64');

/** Real float32 data: every norm weight, and Q4_1 / Q8_0 weights decoded back to float32. */
async function smolLM2Inputs(): Promise<NamedValues[]> {
  const path = await fetchDefaultModel();
  const tensors = await ggufPyTensorLocations(path);
  const decode = (name: string, maxElements = Infinity) => {
    const t = tensors.find((x) => x.name === name);
    if (!t) throw new Error(`${path}: no tensor ${name}`);
    const elements = Math.min(t.elements, maxElements);
    const bytes = readTensorBytes(path, t).subarray(0, (elements / ggmlTypeTraits(t.type).blockSize) * ggmlTypeTraits(t.type).typeSize);
    return dequantize(t.type, bytes, elements);
  };
  const norms = tensors.filter((t) => t.type === GGMLType.F32).map((t) => decode(t.name));
  const concat = new Float32Array(norms.reduce((n, a) => n + a.length, 0));
  norms.reduce((at, a) => (concat.set(a, at), at + a.length), 0);
  return [
    { name: 'SmolLM2 norm weights (all F32 tensors)', values: concat },
    { name: 'SmolLM2 blk.0.ffn_down (Q4_1 decoded)', values: decode('blk.0.ffn_down.weight') },
    { name: 'SmolLM2 token_embd rows 0..2047 (Q8_0 decoded)', values: decode('token_embd.weight', 2048 * 576) },
  ];
}

let inputs: NamedValues[];
let references: Record<HarnessOutput, Uint8Array>[];

beforeAll(async () => {
  inputs = [...synthetic, ...(await smolLM2Inputs())];
  references = await Promise.all(inputs.map((input) => cQuantize(input.values)));
}, 120_000);

/** First differing byte, located by block, or undefined when identical. */
function firstDifference(type: GGMLType, ours: Uint8Array, reference: Uint8Array): string | undefined {
  if (ours.length !== reference.length) return `length ${ours.length} vs ${reference.length}`;
  const i = ours.findIndex((byte, k) => byte !== reference[k]);
  if (i < 0) return undefined;
  const { typeSize } = ggmlTypeTraits(type);
  const block = Math.floor(i / typeSize);
  const hex = (bytes: Uint8Array) => Buffer.from(bytes.subarray(block * typeSize, (block + 1) * typeSize)).toString('hex');
  return `block ${block} byte ${i % typeSize}:\n ours ${hex(ours)}\n ref  ${hex(reference)}`;
}

const typeOf = (name: HarnessOutput) => ggmlTypeFromName(name)!;
const inputCount = synthetic.length + 3;

describe('quantize matches llama.cpp reference quantizers byte for byte', () => {
  it.each(HARNESS_OUTPUTS)('%s', (name) => {
    const failures: string[] = [];
    inputs.forEach((input, i) => {
      const diff = firstDifference(typeOf(name), quantize(typeOf(name), input.values), references[i]![name]);
      if (diff) failures.push(`${input.name}: ${diff}`);
    });
    expect(inputs).toHaveLength(inputCount);
    expect(failures.join('\n\n')).toBe(''); // joined: vitest truncates long arrays
  });
});

describe('quantize agrees with gguf-py gguf.quants.quantize', () => {
  it('on every input', async () => {
    const types = HARNESS_OUTPUTS.map(typeOf);
    const jobs = inputs.flatMap((input) => types.map((type) => ({ op: 'quantize' as const, type, input: input.values })));
    const outputs = await ggufPyJobs(jobs);
    const failures: string[] = [];
    jobs.forEach((job, k) => {
      const input = inputs[Math.floor(k / types.length)]!;
      const diff = firstDifference(job.type, quantize(job.type, job.input), outputs[k]!);
      if (diff) failures.push(`${HARNESS_OUTPUTS[k % types.length]} / ${input.name}: ${diff}`);
    });
    expect(failures.join('\n\n')).toBe(''); // joined: vitest truncates long arrays
  }, 60_000);
});
