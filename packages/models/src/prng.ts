/**
 * xoshiro128** — a small, fast, seedable PRNG (public-domain algorithm by
 * Blackman and Vigna). Synthetic models must be reproducible from a seed, and
 * Math.random is neither seedable nor fast enough for billions of weights.
 */
export class Xoshiro128 {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    // splitmix32 expands one 32-bit seed into the 128-bit state (never all zero).
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next() | 1;
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Fill a buffer with random bytes (4 at a time). */
  fillBytes(out: Uint8Array): void {
    const words = Math.floor(out.byteLength / 4);
    const view = new Uint32Array(out.buffer, out.byteOffset, words);
    if (out.byteOffset % 4 === 0) {
      for (let i = 0; i < words; i++) view[i] = this.nextUint32();
    } else {
      for (let i = 0; i < words * 4; i += 4) {
        const v = this.nextUint32();
        out[i] = v & 0xff;
        out[i + 1] = (v >>> 8) & 0xff;
        out[i + 2] = (v >>> 16) & 0xff;
        out[i + 3] = v >>> 24;
      }
    }
    for (let i = words * 4; i < out.byteLength; i++) out[i] = this.nextUint32() & 0xff;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
