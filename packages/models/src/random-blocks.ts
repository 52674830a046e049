import { fp32ToBf16, fp32ToFp16, GGMLType, ggmlRowBytes, ggmlTypeName } from '@chess/gguf';
import { UsageError } from '@chess/core';
import type { Xoshiro128 } from './prng.ts';

/** Weight types `synth` can produce (speed work needs the types the kernels support). */
export const SYNTH_TYPES = [GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1] as const;
export type SynthType = (typeof SYNTH_TYPES)[number];

export function parseSynthType(name: string): SynthType {
  const match = SYNTH_TYPES.find((type) => ggmlTypeName(type) === name.toLowerCase());
  if (match === undefined) {
    throw new UsageError('SYNTH_BAD_TYPE', `--type: '${name}' is not supported; expected one of ${SYNTH_TYPES.map(ggmlTypeName).join(', ')}`, { type: name });
  }
  return match;
}

/**
 * Random weights of standard deviation `std`, generated directly in the target
 * encoding: random bytes for the quants with a per-block scale chosen so the
 * decoded values have that deviation. Speed depends on shapes and types, not on
 * values; this avoids quantizing billions of floats and stays reproducible.
 */
export function fillRandomRows(type: SynthType, out: Uint8Array, rowLength: number, rng: Xoshiro128, std: number): void {
  const rowBytes = ggmlRowBytes(type, rowLength);
  if (out.byteLength % rowBytes !== 0) throw new RangeError(`buffer of ${out.byteLength} bytes is not a whole number of ${rowBytes}-byte rows`);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  // Uniform in [-a, a] has deviation a / sqrt(3).
  const amplitude = std * Math.sqrt(3);
  switch (type) {
    case GGMLType.F32:
      for (let i = 0; i < out.byteLength; i += 4) view.setFloat32(i, (rng.nextFloat() * 2 - 1) * amplitude, true);
      return;
    case GGMLType.F16:
      for (let i = 0; i < out.byteLength; i += 2) view.setUint16(i, fp32ToFp16((rng.nextFloat() * 2 - 1) * amplitude), true);
      return;
    case GGMLType.BF16:
      for (let i = 0; i < out.byteLength; i += 2) view.setUint16(i, fp32ToBf16((rng.nextFloat() * 2 - 1) * amplitude), true);
      return;
    case GGMLType.Q8_0:
      // q uniform in [-128, 127]: deviation ~73.9 * d.
      return fillQuantBlocks(out, view, rng, 34, [std / 73.9]);
    case GGMLType.Q4_0:
      // (q - 8) * d with q uniform in [0, 15]: deviation ~4.61 * d.
      return fillQuantBlocks(out, view, rng, 18, [std / 4.61]);
    case GGMLType.Q4_1: {
      // q * d + m with m = -7.5 d centres the values on zero.
      const d = std / 4.61;
      return fillQuantBlocks(out, view, rng, 20, [d, -7.5 * d]);
    }
  }
}

function fillQuantBlocks(out: Uint8Array, view: DataView, rng: Xoshiro128, blockBytes: number, scales: number[]): void {
  rng.fillBytes(out);
  // A few jittered scale values, so blocks differ without a float conversion per block.
  const variants = 64;
  const encoded = new Uint16Array(variants * scales.length);
  for (let v = 0; v < variants; v++) {
    // Half of the variants negative: q4_0 decodes (q - 8) d and q8_0 q d with uniform q, whose
    // mean is -d/2; with one sign that bias gives every output channel the same shift
    // (proportional to the sum of the inputs), which compounds over layers into activations
    // that are on or off for every token: nothing like a trained model. Random signs make the
    // weights zero-mean.
    const jitter = (v & 1 ? -1 : 1) * (0.75 + 0.5 * rng.nextFloat());
    for (let s = 0; s < scales.length; s++) encoded[v * scales.length + s] = fp32ToFp16(scales[s]! * jitter);
  }
  for (let offset = 0; offset < out.byteLength; offset += blockBytes) {
    const v = (rng.nextUint32() & (variants - 1)) * scales.length;
    for (let s = 0; s < scales.length; s++) view.setUint16(offset + 2 * s, encoded[v + s]!, true);
  }
}
