/**
 * The column-block movers on random bytes: every type of the §3.1 table and
 * several shapes round-trip bit for bit; the anatomy accounts for every bit of
 * a block exactly once; a Q4_0 weight built by hand lands where the spec says.
 * The byte-for-byte golden against an independent construction from the spec
 * (numpy) is column-blocks.golden.test.ts.
 */
import { COLUMN_BLOCK_TYPES, COLUMN_PLANES } from '@chess/contract';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../codecs/__fixtures__/inputs.ts';
import { GGML_TYPE_TRAITS, GGMLType, ggmlTypeName } from '../types.ts';
import { blockAnatomy } from './block-anatomy.ts';
import { checkColumnBlocks, columnBlockSupported, columnBlocksFromRows, rowsFromColumnBlocks } from './column-blocks.ts';

function randomBytes(n: number, seed: number): Uint8Array {
  const random = seededRandom(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
}

const TYPES = COLUMN_BLOCK_TYPES.map((t) => t.ggmlType as GGMLType);

describe('the contract table and ggml agree', () => {
  it.each(TYPES.map((type) => [ggmlTypeName(type), type] as const))('%s: name, block size and bytes', (_, type) => {
    const t = COLUMN_BLOCK_TYPES.find((x) => x.ggmlType === type)!;
    const traits = GGML_TYPE_TRAITS.get(type)!;
    expect([t.type, t.groupSize, t.blockBytes]).toEqual([traits.name, traits.blockSize, traits.typeSize]);
    expect(columnBlockSupported(type)).toBe(true);
  });

  it.each(TYPES.map((type) => [ggmlTypeName(type), type] as const))('%s: the anatomy covers every bit of a block exactly once', (_, type) => {
    const t = COLUMN_BLOCK_TYPES.find((x) => x.ggmlType === type)!;
    const a = blockAnatomy(type);
    const covered = new Uint8Array(t.blockBytes * 8);
    const cover = (byte: number, shift: number, width: number) => {
      for (let k = 0; k < width; k++) covered[byte * 8 + shift + k]!++;
    };
    for (const f of t.scales) for (let k = 0; k < f.bytes; k++) cover(a.scaleOffsets[f.name]! + k, 0, 8);
    for (let c = 0; c < t.groupSize; c++) {
      for (const plane of t.column) {
        if (plane === 'nibble') cover(a.lowByte[c]!, a.lowShift[c]!, 4);
        else if (plane === 'bit' || plane === 'crumb') cover(a.highByte[c]!, a.highShift[c]!, COLUMN_PLANES[plane].bitsPerRow);
        else {
          expect(a.rawBytes * 8).toBe(COLUMN_PLANES[plane].bitsPerRow);
          for (let k = 0; k < a.rawBytes; k++) cover(a.rawOffset + c * a.rawBytes + k, 0, 8);
        }
      }
    }
    const wrong = [...covered.entries()].filter(([, n]) => n !== 1).map(([bit, n]) => `bit ${bit}: ${n}x`);
    expect(wrong).toEqual([]);
  });
});

describe('round trip on random bytes', () => {
  const shapes = (groupSize: number, rowMultiple: number): [number, number][] =>
    rowMultiple === 1
      ? [
          [1, 1],
          [3, 7],
          [64, 32],
          [5, 96],
        ]
      : [
          [groupSize, 32],
          [3 * groupSize, 32],
          [2 * groupSize, 96],
          [groupSize, 160],
        ];
  for (const t of COLUMN_BLOCK_TYPES) {
    it(`${t.type}: rows -> column blocks -> rows is the identity; the layout moves bytes`, () => {
      for (const [i, [nIn, nOut]] of shapes(t.groupSize, t.rowMultiple).entries()) {
        const bytes = (nIn / t.groupSize) * t.blockBytes * nOut;
        const rows = randomBytes(bytes, 1000 * t.ggmlType + i);
        const cb = columnBlocksFromRows(t.ggmlType, rows, nIn, nOut);
        expect(cb.length).toBe(bytes);
        expect(Buffer.from(rowsFromColumnBlocks(t.ggmlType, cb, nIn, nOut)).equals(Buffer.from(rows)), `${nIn}x${nOut}`).toBe(true);
        // the inverse applied to random bytes is also a bijection (no bit of the layout is dropped)
        const noise = randomBytes(bytes, 7 + i);
        expect(Buffer.from(columnBlocksFromRows(t.ggmlType, rowsFromColumnBlocks(t.ggmlType, noise, nIn, nOut), nIn, nOut)).equals(Buffer.from(noise))).toBe(true);
        if (nOut > 1) expect(Buffer.from(cb).equals(Buffer.from(rows))).toBe(false);
      }
    });
  }

  it('writes into a given buffer of the right size', () => {
    const rows = randomBytes(20 * 32, 3);
    const out = new Uint8Array(rows.length);
    expect(columnBlocksFromRows(GGMLType.Q4_1, rows, 32, 32, { out })).toBe(out);
    expect(Buffer.from(out).equals(Buffer.from(columnBlocksFromRows(GGMLType.Q4_1, rows, 32, 32)))).toBe(true);
  });
});

describe('the spec by hand: Q4_0, 2 groups, 64 rows', () => {
  it('scale section d[R], then channel c: R/2 bytes, byte b of unit u = v[32u+b] | v[32u+16+b] << 4', () => {
    const nIn = 64;
    const R = 64;
    const v = (r: number, c: number) => (r * 7 + c * 3 + ((r * c) >> 2)) & 15;
    const d = (r: number, g: number) => 0x3c00 + r + 256 * g;
    // ggml's Q4_0 block: d (fp16) | qs[16], qs[j] = v[j] | v[j + 16] << 4
    const rows = new Uint8Array(R * 2 * 18);
    for (let r = 0; r < R; r++) {
      for (let g = 0; g < 2; g++) {
        const b = (r * 2 + g) * 18;
        rows[b] = d(r, g) & 0xff;
        rows[b + 1] = d(r, g) >> 8;
        for (let j = 0; j < 16; j++) rows[b + 2 + j] = v(r, 32 * g + j) | (v(r, 32 * g + j + 16) << 4);
      }
    }
    const cb = columnBlocksFromRows(GGMLType.Q4_0, rows, nIn, R);
    for (let g = 0; g < 2; g++) {
      const rec = g * R * 18;
      for (let r = 0; r < R; r++) expect(cb[rec + 2 * r]! | (cb[rec + 2 * r + 1]! << 8)).toBe(d(r, g));
      for (let c = 0; c < 32; c++) {
        const col = rec + 2 * R + c * (R / 2);
        for (let u = 0; u < R / 32; u++) {
          for (let b = 0; b < 16; b++) expect(cb[col + 16 * u + b], `g ${g} c ${c} u ${u} b ${b}`).toBe(v(32 * u + b, 32 * g + c) | (v(32 * u + 16 + b, 32 * g + c) << 4));
        }
      }
    }
  });
});

describe('bad input', () => {
  it('a type outside the table, a shape the layout cannot hold, a wrong byte count: named errors', () => {
    expect(() => columnBlocksFromRows(GGMLType.Q2_K, new Uint8Array(84 * 32), 256, 32, { name: 'blk.0.ffn_down.weight' })).toThrow(
      expect.objectContaining({ code: 'GGUF_LAYOUT_UNSUPPORTED', message: expect.stringMatching(/^blk\.0\.ffn_down\.weight \(q2_K, n_in 256, n_out 32\): type q2_K has no column-block layout/) }),
    );
    expect(() => columnBlocksFromRows(GGMLType.Q4_1, new Uint8Array(20 * 48), 32, 48)).toThrow(expect.objectContaining({ code: 'GGUF_LAYOUT_BAD_SHAPE', message: expect.stringMatching(/n_out = 48 is not a positive multiple of 32/) }));
    expect(() => rowsFromColumnBlocks(GGMLType.Q4_K, new Uint8Array(144 * 32), 576, 32)).toThrow(expect.objectContaining({ code: 'GGUF_LAYOUT_BAD_SHAPE', message: expect.stringMatching(/n_in = 576 is not a positive multiple of the q4_K group size 256/) }));
    expect(() => columnBlocksFromRows(GGMLType.Q8_0, new Uint8Array(34 * 32 - 1), 32, 32, { name: 'w' })).toThrow(expect.objectContaining({ code: 'GGUF_LAYOUT_BAD_SHAPE', message: 'w (q8_0, n_in 32, n_out 32): 1087 bytes, expected 1088' }));
    expect(() => columnBlocksFromRows(GGMLType.F32, new Uint8Array(8), 2, 1, { out: new Uint8Array(4) })).toThrow(expect.objectContaining({ code: 'GGUF_LAYOUT_BAD_SHAPE', message: expect.stringMatching(/output buffer of 4 bytes, expected 8/) }));
    expect(checkColumnBlocks(GGMLType.F16, 3, 5, 30).type).toBe('f16');
    expect(columnBlockSupported(GGMLType.IQ4_NL)).toBe(false);
  });
});
