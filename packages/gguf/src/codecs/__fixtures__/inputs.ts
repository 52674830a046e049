/**
 * Seeded inputs for the codec tests: float distributions for the quantizers and
 * random block bytes (with finite fp16 scales and edge-case blocks) for the
 * dequantizers. Deterministic, so a failure reproduces.
 */
import { GGMLType, ggmlTypeTraits } from '../../types.ts';
import { fp16ToFp32 } from '../half.ts';

/** splitmix32: small, fast, good enough to spread test inputs. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

function gaussian(random: () => number): number {
  const u = 1 - random(); // (0, 1]: log stays finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

function fill(n: number, f: (i: number) => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = f(i);
  return out;
}

/** A finite fp16 bit pattern (exponent field below 31). */
function finiteFp16Bits(random: () => number): number {
  const bits = Math.floor(random() * 65536);
  return (bits & 0x7c00) === 0x7c00 ? bits & 0xbfff : bits;
}

export interface NamedValues {
  readonly name: string;
  readonly values: Float32Array;
}

/**
 * Float32 inputs for the quantizers: each a multiple of 32 long and NaN-free.
 * `x86Only` marks inputs that reach float->int casts C leaves undefined (the
 * harness then follows x86-64's cvttss2si, as our codecs do).
 */
export function quantizerInputs(seed: number, blocks = 512): (NamedValues & { x86Only?: boolean })[] {
  const random = seededRandom(seed);
  const n = blocks * 32;
  const blockOf = (i: number) => Math.floor(i / 32);
  const perBlock = fill(blocks, () => gaussian(random));
  return [
    { name: 'normal', values: fill(n, () => gaussian(random)) },
    { name: 'normal weights (sigma 0.02)', values: fill(n, () => 0.02 * gaussian(random)) },
    { name: 'uniform [-1, 1)', values: fill(n, () => 2 * random() - 1) },
    { name: 'heavy-tailed (Cauchy)', values: fill(n, () => Math.tan(Math.PI * (random() - 0.5))) },
    { name: 'all zeros', values: new Float32Array(n) },
    { name: 'constant blocks', values: fill(n, (i) => perBlock[blockOf(i)]!) },
    {
      name: 'one huge value per block',
      values: fill(n, (i) => (i % 32 === blockOf(i) % 32 ? (random() < 0.5 ? -1 : 1) * 10 ** (2 + 28 * random()) : gaussian(random))),
    },
    { name: 'near fp16 overflow', values: fill(n, () => (random() < 0.5 ? -1 : 1) * (60000 + 10000 * random())) },
    { name: 'fp16 subnormal range', values: fill(n, () => gaussian(random) * 2 ** (-14 - 10 * random())) },
    {
      // Exactly between two adjacent fp16 values: exercises ties-to-even.
      name: 'fp16 rounding ties',
      values: fill(n, () => {
        const h = finiteFp16Bits(random) & 0x7bfe;
        return (random() < 0.5 ? -1 : 1) * ((fp16ToFp32(h) + fp16ToFp32(h + 1)) / 2);
      }),
    },
    {
      // With a block maximum of 127 the Q8_0 scale is 1: quants land on x.5 ties of roundf.
      name: 'roundf ties',
      values: fill(n, (i) => (i % 32 === 0 ? 127 : Math.floor(254 * random()) - 127 + 0.5)),
    },
    { name: 'mixed magnitudes', values: fill(n, () => gaussian(random) * 2 ** (40 * random() - 20)) },
    { name: 'float32 denormals and tiny values', values: fill(n, () => gaussian(random) * 2 ** (-126 - 25 * random())), x86Only: true },
  ];
}

/** Byte offsets of the fp16 scale fields inside one block of each block type. */
const SCALE_FIELDS: ReadonlyMap<GGMLType, readonly number[]> = new Map([
  [GGMLType.Q8_0, [0]],
  [GGMLType.Q4_0, [0]],
  [GGMLType.Q4_1, [0, 2]],
  [GGMLType.Q5_0, [0]],
  [GGMLType.Q5_1, [0, 2]],
  [GGMLType.Q4_K, [0, 2]],
  [GGMLType.Q5_K, [0, 2]],
  [GGMLType.Q6_K, [208]],
]);

export const RANDOM_BLOCK_TYPES = [...SCALE_FIELDS.keys()];

/**
 * `blocks` random blocks of `type` whose fp16 scales are finite, followed by
 * edge-case blocks: zero and negative-zero scales, subnormal scales, every
 * quant byte 0xff / 0x00 with the largest finite scales (±65504).
 */
export function randomBlocks(type: GGMLType, blocks: number, seed: number): { bytes: Uint8Array; elements: number } {
  const fields = SCALE_FIELDS.get(type);
  if (!fields) throw new Error(`no scale layout for ggml type ${type}`);
  const { blockSize, typeSize } = ggmlTypeTraits(type);
  const random = seededRandom(seed);
  const edge: ((field: number) => number)[] = [
    () => 0x0000,
    () => 0x8000,
    () => 1 + Math.floor(random() * 0x3ff), // subnormal
    (field) => (field === 0 ? 0x0001 : 0x8001), // smallest subnormals
    () => 0x7bff, // 65504
    (field) => (field === 0 ? 0xfbff : 0x7bff),
  ];
  const total = blocks + 2 * edge.length;
  const bytes = new Uint8Array(total * typeSize);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
  const setScale = (block: number, field: number, h: number) => {
    const at = block * typeSize + field;
    bytes[at] = h & 0xff;
    bytes[at + 1] = h >>> 8;
  };
  for (let b = 0; b < blocks; b++) for (const f of fields) setScale(b, f, finiteFp16Bits(random));
  edge.forEach((scale, e) => {
    for (const [k, fill] of [0xff, 0x00].entries()) {
      const b = blocks + 2 * e + k;
      bytes.fill(fill, b * typeSize, (b + 1) * typeSize);
      fields.forEach((f, index) => setScale(b, f, scale(index)));
    }
  });
  return { bytes, elements: total * blockSize };
}
