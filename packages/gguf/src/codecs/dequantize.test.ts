// Block types absent from the default model, decoded from seeded random blocks
// (finite fp16 scales plus edge-case blocks) and compared bit for bit with
// gguf-py's gguf.quants.dequantize. F16 and BF16 are checked exhaustively.
import { beforeAll, describe, expect, it } from 'vitest';
import { GGMLType, ggmlTypeName } from '../types.ts';
import { RANDOM_BLOCK_TYPES, randomBlocks } from './__fixtures__/inputs.ts';
import { ggufPyJobs } from './__reference__/references.ts';
import { dequantize } from './registry.ts';

interface Case {
  readonly type: GGMLType;
  readonly bytes: Uint8Array;
  readonly elements: number;
}

/** Every 16-bit pattern once, little-endian: NaNs, infinities, subnormals, -0. */
function allHalfPatterns(): Uint8Array {
  const bytes = new Uint8Array(65536 * 2);
  for (let h = 0; h < 65536; h++) {
    bytes[2 * h] = h & 0xff;
    bytes[2 * h + 1] = h >>> 8;
  }
  return bytes;
}

const cases: Case[] = [
  { type: GGMLType.F16, bytes: allHalfPatterns(), elements: 65536 },
  { type: GGMLType.BF16, bytes: allHalfPatterns(), elements: 65536 },
  ...RANDOM_BLOCK_TYPES.map((type, i) => ({ type, ...randomBlocks(type, 2048, 1000 + i) })),
];
let references: Uint32Array[];

beforeAll(async () => {
  const outputs = await ggufPyJobs(cases.map((c) => ({ op: 'dequantize', type: c.type, input: c.bytes })));
  references = outputs.map((bytes) => new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
}, 60_000);

function describeMismatch(ours: Uint32Array, reference: Uint32Array): string | undefined {
  if (ours.length !== reference.length) return `length ${ours.length} vs ${reference.length}`;
  const i = ours.findIndex((bits, k) => bits !== reference[k]);
  return i < 0 ? undefined : `element ${i}: ours 0x${ours[i]!.toString(16)}, gguf-py 0x${reference[i]!.toString(16)}`;
}

describe('dequantize matches gguf-py bit for bit', () => {
  it.each(cases.map((c, index) => ({ name: ggmlTypeName(c.type), index })))('$name', ({ index }) => {
    const { type, bytes, elements } = cases[index]!;
    const ours = dequantize(type, bytes, elements);
    expect(describeMismatch(new Uint32Array(ours.buffer), references[index]!)).toBeUndefined();
  });

  it('decodes at any source alignment and into a larger output buffer', () => {
    const { type, bytes, elements } = cases.find((c) => c.type === GGMLType.Q4_K)!;
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    const out = new Float32Array(elements + 7);
    const ours = dequantize(type, shifted.subarray(3), elements, out);
    expect(ours.buffer).toBe(out.buffer);
    expect(describeMismatch(new Uint32Array(ours.buffer, 0, elements), references[cases.findIndex((c) => c.type === type)]!)).toBeUndefined();
  });

  it('decodes F32 from an unaligned source', () => {
    const values = new Float32Array([1.5, -0, Number.NaN, 3e38, 1e-45]);
    const bytes = new Uint8Array(values.byteLength + 1);
    bytes.set(new Uint8Array(values.buffer), 1);
    expect(new Uint32Array(dequantize(GGMLType.F32, bytes.subarray(1), values.length).buffer)).toEqual(new Uint32Array(values.buffer));
  });
});
