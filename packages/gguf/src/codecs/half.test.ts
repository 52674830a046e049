// fp16 / bf16 scalar conversions: the decode table against ggml's own
// GGML_FP16_TO_FP32 (all 65536 patterns), and IEEE round-to-nearest-even
// properties of the encoders. Byte-exact encoder goldens live in quantize.test.ts.
import { describe, expect, it } from 'vitest';
import { cFp16Table } from './__reference__/references.ts';
import { bf16ToFp32, fp16ToFp32, fp16ToFp32BitsTable, fp32Bits, fp32FromBits, fp32ToBf16, fp32ToFp16 } from './half.ts';

const isNaNHalf = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

describe('fp16 -> fp32', () => {
  it("equals ggml's conversion for all 65536 patterns (NaNs: ggml additionally sets the quiet bit)", async () => {
    const ggml = await cFp16Table();
    const ours = fp16ToFp32BitsTable();
    const differences: string[] = [];
    for (let h = 0; h < 65536; h++) {
      // gguf-py/numpy widen NaN payloads as we do (checked in dequantize.test.ts);
      // ggml's float multiply quiets signalling NaNs on the way.
      const expected = isNaNHalf(h) ? (ours[h]! | 0x00400000) >>> 0 : ours[h]!;
      if (ggml[h] !== expected) differences.push(`0x${h.toString(16)}: ours 0x${ours[h]!.toString(16)} ggml 0x${ggml[h]!.toString(16)}`);
    }
    expect(differences.slice(0, 10).join('\n')).toBe('');
  }, 60_000);

  it('round-trips through fp32ToFp16 for every non-NaN pattern', () => {
    for (let h = 0; h < 65536; h++) if (!isNaNHalf(h) && fp32ToFp16(fp16ToFp32(h)) !== h) expect.fail(`0x${h.toString(16)}`);
  });
});

describe('fp32 -> fp16', () => {
  it('rounds to nearest, ties to even, including across the subnormal boundary', () => {
    expect(fp32ToFp16(1 + 2 ** -11)).toBe(0x3c00); // tie -> even (1.0)
    expect(fp32ToFp16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (1 + 2^-9)
    expect(fp32ToFp16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    expect(fp32ToFp16(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal
    expect(fp32ToFp16(fp32FromBits(fp32Bits(2 ** -25) + 1))).toBe(0x0001);
    expect(fp32ToFp16(3 * 2 ** -25)).toBe(0x0002);
    expect(fp32ToFp16(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the normals
    expect(fp32ToFp16(-(2 ** -30))).toBe(0x8000);
  });

  it('overflows to infinity from 65520 and encodes NaN as the quiet NaN 0x7e00', () => {
    expect(fp32ToFp16(65504)).toBe(0x7bff);
    expect(fp32ToFp16(fp32FromBits(fp32Bits(65520) - 1))).toBe(0x7bff);
    expect(fp32ToFp16(65520)).toBe(0x7c00);
    expect(fp32ToFp16(-1e30)).toBe(0xfc00);
    expect(fp32ToFp16(Number.POSITIVE_INFINITY)).toBe(0x7c00);
    expect(fp32ToFp16(Number.NaN)).toBe(0x7e00);
    expect(fp32ToFp16(fp32FromBits(0xffc00001))).toBe(0xfe00);
  });
});

describe('bf16', () => {
  it('round-trips every non-NaN pattern and widens exactly', () => {
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
      if (isNaN) continue;
      if (fp32Bits(bf16ToFp32(h)) !== h << 16 >>> 0 || fp32ToBf16(bf16ToFp32(h)) !== h) expect.fail(`0x${h.toString(16)}`);
    }
  });

  it('rounds to nearest even and quiets NaN keeping its top payload bits', () => {
    expect(fp32ToBf16(fp32FromBits(0x3f808000))).toBe(0x3f80); // tie -> even
    expect(fp32ToBf16(fp32FromBits(0x3f818000))).toBe(0x3f82); // tie -> even
    expect(fp32ToBf16(fp32FromBits(0x3f808001))).toBe(0x3f81);
    expect(fp32ToBf16(fp32FromBits(0x7f7fffff))).toBe(0x7f80); // FLT_MAX rounds to infinity
    expect(fp32ToBf16(fp32FromBits(0x7f800001))).toBe(0x7fc0);
    expect(fp32ToBf16(fp32FromBits(0x00000001))).toBe(0x0000); // subnormals round, not flush
    expect(fp32ToBf16(fp32FromBits(0x00008001))).toBe(0x0001);
  });
});
