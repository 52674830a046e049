/**
 * IEEE binary16 (fp16) and bfloat16 scalar conversions with ggml's semantics.
 *
 * fp32 -> fp16/bf16 round to nearest, ties to even; subnormals are kept (not
 * flushed); values at or above 65520 overflow to infinity. NaN becomes the quiet
 * NaN `sign | 0x7e00` for fp16 (as ggml_compute_fp32_to_fp16) and keeps its top
 * payload bits with the quiet bit forced for bf16 (as ggml_compute_fp32_to_bf16).
 *
 * fp16/bf16 -> fp32 is exact. The bit-level variants keep NaN payloads (plain
 * widening, as numpy / gguf-py do); a JS number cannot carry a NaN payload.
 */

// Scratch views for reinterpreting one float; module-level so no call allocates.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

export function fp32Bits(value: number): number {
  scratchF32[0] = value;
  return scratchU32[0]!;
}

export function fp32FromBits(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0]!;
}

/** fp16 bits -> fp32 bits, exact; NaN payloads are shifted, not quieted. */
export function fp16BitsToFp32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >>> 10) & 0x1f;
  let mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // Subnormal: normalise the mantissa; each shift lowers the fp32 exponent by one.
  let e = 113;
  while ((mantissa & 0x400) === 0) {
    mantissa <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mantissa & 0x3ff) << 13)) >>> 0;
}

/** fp32 bits -> fp16 bits, round to nearest even (see the module comment). */
export function fp32BitsToFp16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00;
  if (abs >= 0x477ff000) return sign | 0x7c00; // >= 65520 rounds past 65504: infinity
  const exponent = abs >>> 23;
  if (exponent >= 113) {
    // Normal fp16: drop 13 mantissa bits; a carry correctly bumps the exponent.
    const h = ((exponent - 112) << 10) | ((abs >>> 13) & 0x3ff);
    const rest = abs & 0x1fff;
    return sign | (rest > 0x1000 || (rest === 0x1000 && (h & 1) !== 0) ? h + 1 : h);
  }
  // Subnormal fp16 (units of 2^-24): shift the full 24-bit significand.
  const shift = 126 - exponent;
  if (exponent === 0 || shift > 24) return sign; // below 2^-25 (ties at 2^-25 go to even 0)
  const significand = (abs & 0x7fffff) | 0x800000;
  const h = significand >>> shift;
  const rest = significand & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (rest > half || (rest === half && (h & 1) !== 0) ? h + 1 : h);
}

/** fp32 bits -> bf16 bits: NaN quieted, otherwise round to nearest even. */
export function fp32BitsToBf16Bits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 64) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function fp16ToFp32(h: number): number {
  return fp32FromBits(fp16BitsToFp32Bits(h & 0xffff));
}

export function fp32ToFp16(value: number): number {
  return fp32BitsToFp16Bits(fp32Bits(value));
}

export function bf16ToFp32(h: number): number {
  return fp32FromBits(((h & 0xffff) << 16) >>> 0);
}

export function fp32ToBf16(value: number): number {
  return fp32BitsToBf16Bits(fp32Bits(value));
}

let fp16Table: Float32Array | undefined;
let fp16BitsTable: Uint32Array | undefined;

/**
 * fp16 bits -> fp32 bits for all 65536 patterns (256 KiB, built on first use).
 * Block scales and F16 tensors decode by lookup instead of bit fiddling.
 */
export function fp16ToFp32BitsTable(): Uint32Array {
  if (!fp16BitsTable) {
    const table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = fp16BitsToFp32Bits(h);
    fp16BitsTable = table;
  }
  return fp16BitsTable;
}

/** The same table viewed as floats (value lookups; NaN payloads are irrelevant there). */
export function fp16ToFp32Table(): Float32Array {
  fp16Table ??= new Float32Array(fp16ToFp32BitsTable().buffer);
  return fp16Table;
}
