/**
 * Comparing next-token outputs of two runtimes: llama.cpp gives probabilities
 * (node-llama-cpp's controlledEvaluate), onnxruntime gives logits. Both are
 * logits up to a per-position constant: ln p is centred on its mean, and so
 * are the logits, before the cosine. Tokens whose float32 probability
 * underflowed (p <= 1e-30) are left out of both.
 */
export interface PositionAgreement {
  readonly cosine: number;
  readonly top1A: number;
  readonly top1B: number;
}

export function compareLogProbsToLogits(probs: ArrayLike<number> | ReadonlyMap<number, number>, logits: ArrayLike<number>, offset: number, nVocab: number): PositionAgreement {
  const p = new Float64Array(nVocab);
  if (probs instanceof Map) for (const [t, v] of probs as ReadonlyMap<number, number>) p[t] = v;
  else for (let i = 0; i < nVocab; i++) p[i] = (probs as ArrayLike<number>)[i]!;
  let ma = 0;
  let mb = 0;
  let n = 0;
  let top1A = 0;
  let top1B = 0;
  for (let i = 0; i < nVocab; i++) {
    if (p[i]! > p[top1A]!) top1A = i;
    if (logits[offset + i]! > logits[offset + top1B]!) top1B = i;
    if (p[i]! > 1e-30) {
      ma += Math.log(p[i]!);
      mb += logits[offset + i]!;
      n++;
    }
  }
  ma /= n;
  mb /= n;
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < nVocab; i++) {
    if (!(p[i]! > 1e-30)) continue;
    const x = Math.log(p[i]!) - ma;
    const y = logits[offset + i]! - mb;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return { cosine: dot / Math.sqrt(na * nb), top1A, top1B };
}

/** Cosine of two logit vectors, each centred on its mean. */
export function centredCosine(a: ArrayLike<number>, aOffset: number, b: ArrayLike<number>, bOffset: number, n: number): number {
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) (ma += a[aOffset + i]!), (mb += b[bOffset + i]!);
  ma /= n;
  mb /= n;
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < n; i++) {
    const x = a[aOffset + i]! - ma;
    const y = b[bOffset + i]! - mb;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return dot / Math.sqrt(na * nb);
}
