/** The keep rule of the contract (`SPARSE_GGUF.keepRule`), for TypeScript callers. */

/** Whether an activation `v` survives its threshold `tau`: |v| > tau, strict (NaN is dropped, as fabsf(NaN) > tau is false). */
export function keeps(v: number, tau: number): boolean {
  return Math.abs(v) > tau;
}
