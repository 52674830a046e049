import { describe, expect, it } from 'vitest';
import { mulberry32 } from './random.ts';

describe('mulberry32', () => {
  it("gives the reference generator's first values for seed 1 (Tommy Ettinger's mulberry32, as published)", () => {
    // the published C reference: z = (state += 0x6D2B79F5); z = (z ^ z >> 15) * (z | 1); z ^= z + (z ^ z >> 7) * (z | 61); z ^ z >> 14
    const next = mulberry32(1);
    const ref = (() => {
      let s = 1n;
      const m = (1n << 32n) - 1n;
      return () => {
        s = (s + 0x6d2b79f5n) & m;
        let z = s;
        z = ((z ^ (z >> 15n)) * (z | 1n)) & m;
        z = (z ^ (z + (((z ^ (z >> 7n)) * (z | 61n)) & m))) & m;
        return Number(z ^ (z >> 14n)) / 4294967296;
      };
    })();
    for (let i = 0; i < 1000; i++) expect(next()).toBe(ref());
  });

  it('stays in [0, 1) and depends on the seed', () => {
    const a = mulberry32(7), b = mulberry32(8);
    let same = 0;
    for (let i = 0; i < 10000; i++) {
      const x = a();
      expect(x >= 0 && x < 1).toBe(true);
      same += x === b() ? 1 : 0;
    }
    expect(same).toBeLessThan(5);
  });
});
