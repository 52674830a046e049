/**
 * The sparse ops, registered into the IR from this package, each with its
 * exact reference semantics for the interpreter. Keep rule everywhere:
 * an element `v` with threshold `tau` survives iff `|v| > tau` (strict);
 * dropped elements are exactly zero (docs/gguf-sparse.md).
 *
 *     %a = threshold %x @blk.N.attn_q_in_tau                 y = |x| > tau ? x : 0
 *     %h = sparse_linear_out %x @blk.N.ffn_up.weight %g @blk.N.ffn_gate_tau
 *                                                            h_i = |g_i| > tau_i ? g_i * (W[i] . x) : 0
 *     %y = sparse_linear_in %h @blk.N.ffn_down_t.weight       y = sum_j h_j * W_t[j, :]
 *
 * Registration is explicit (`registerSparseOps()`), never an import side effect.
 */
import { type Kernel, type OpSchema, type Tensor, registerKernel, registerOp } from '@chess/ir';

/** `%y = threshold %x @tau : f32[T,N]` — element-wise keep |x| > tau. */
export const threshold: OpSchema = {
  name: 'threshold',
  summary: 'Activation sparsity: y = |x| > tau ? x : 0 (strict), tau per channel ([N]) or per tensor ([1]).',
  operands: [
    { name: 'x', role: 'value', doc: 'Input f32[T,N].' },
    { name: 'tau', role: 'weight', dtypes: ['float'], doc: 'Thresholds: [N] (one per channel of the last dimension) or [1] (tensor-wise).' },
  ],
  attrs: {},
  infer(ctx) {
    const [t, n] = ctx.rank(0, 2);
    ctx.dtype(0, 'f32');
    const [len] = ctx.rank(1, 1);
    ctx.check(len === 1 || len === n, `tau of shape [1] or [${String(n)}] (got [${String(len)}])`);
    return { dtype: 'f32', shape: [t!, n!] };
  },
};

/**
 * `%h = sparse_linear_out %x @W_up %g @tau : f32[T,F]` — the output-sparse up
 * product fused with the gate multiply: only rows of surviving channels are read.
 */
export const sparseLinearOut: OpSchema = {
  name: 'sparse_linear_out',
  summary: 'Output-sparse projection fused with the gate: h_i = |g_i| > tau_i ? g_i * (W[i] . x) : 0 (W in its normal row layout).',
  operands: [
    { name: 'x', role: 'value', doc: 'Input f32[T,n_in] (the FFN input).' },
    { name: 'weight', role: 'weight', doc: 'W_up [n_out, n_in], any storage type; row i is read only if channel i survives.' },
    { name: 'gate', role: 'value', doc: 'Gate after its activation, f32[T,n_out].' },
    { name: 'tau', role: 'weight', dtypes: ['float'], doc: 'Per-channel thresholds on |gate|, [n_out] (CATS: n_out copies of one value).' },
  ],
  attrs: {},
  infer(ctx) {
    const [t, nIn] = ctx.rank(0, 2);
    ctx.dtype(0, 'f32');
    const [nOut] = ctx.rank(1, 2);
    ctx.shape(1, [nOut!, nIn!]);
    ctx.dtype(2, 'f32');
    ctx.shape(2, [t!, nOut!]);
    ctx.shape(3, [nOut!]);
    return { dtype: 'f32', shape: [t!, nOut!] };
  },
};

/**
 * `%y = sparse_linear_in %x @W_t : f32[T,n_out]` — input-sparse product over a
 * weight stored transposed: zero inputs skip their (contiguous) row of W_t.
 */
export const sparseLinearIn: OpSchema = {
  name: 'sparse_linear_in',
  summary: 'Input-sparse projection over a transposed weight: y = sum_{j: x_j != 0} x_j * W_t[j, :] (+ b); W_t is [n_in, n_out].',
  operands: [
    { name: 'x', role: 'value', doc: 'Input f32[T,n_in], usually a threshold or sparse_linear_out result.' },
    { name: 'weight_t', role: 'weight', doc: 'W transposed, [n_in, n_out]: row j holds what input element j feeds (quantized along n_out).' },
    { name: 'bias', role: 'weight', optional: true, dtypes: ['float'], doc: 'Bias [n_out].' },
  ],
  attrs: {},
  infer(ctx) {
    const [t, nIn] = ctx.rank(0, 2);
    ctx.dtype(0, 'f32');
    const [, nOut] = ctx.rank(1, 2);
    ctx.shape(1, [nIn!, nOut!]);
    if (ctx.has(2)) ctx.shape(2, [nOut!]);
    return { dtype: 'f32', shape: [t!, nOut!] };
  },
};

export const SPARSE_OPS: readonly OpSchema[] = [threshold, sparseLinearOut, sparseLinearIn];

// --- reference kernels (float64; exact keep rule) ---

export const thresholdKernel: Kernel = ({ inputs: [x, tau] }) => {
  const [t, n] = x!.shape as [number, number];
  const perChannel = tau!.data.length !== 1;
  const out = new Float64Array(t * n);
  for (let r = 0; r < t; r++) {
    for (let j = 0; j < n; j++) {
      const v = x!.data[r * n + j]!;
      out[r * n + j] = Math.abs(v) > tau!.data[perChannel ? j : 0]! ? v : 0;
    }
  }
  return { shape: [t, n], data: out };
};

export const sparseLinearOutKernel: Kernel = ({ inputs: [x, w, gate, tau] }) => {
  const [t, nIn] = x!.shape as [number, number];
  const nOut = w!.shape[0]!;
  const out = new Float64Array(t * nOut);
  for (let r = 0; r < t; r++) {
    for (let i = 0; i < nOut; i++) {
      const g = gate!.data[r * nOut + i]!;
      if (!(Math.abs(g) > tau!.data[i]!)) continue; // dead channel: row i is never read
      let acc = 0;
      for (let k = 0; k < nIn; k++) acc += x!.data[r * nIn + k]! * w!.data[i * nIn + k]!;
      out[r * nOut + i] = g * acc;
    }
  }
  return { shape: [t, nOut], data: out };
};

export const sparseLinearInKernel: Kernel = ({ inputs: [x, wt, bias] }) => {
  const [t, nIn] = x!.shape as [number, number];
  const nOut = wt!.shape[1]!;
  const out = new Float64Array(t * nOut);
  for (let r = 0; r < t; r++) {
    const acc = new Float64Array(nOut);
    for (let j = 0; j < nIn; j++) {
      const v = x!.data[r * nIn + j]!;
      if (v === 0) continue; // zero input: row j of W_t is skipped
      for (let o = 0; o < nOut; o++) acc[o] = acc[o]! + v * wt!.data[j * nOut + o]!;
    }
    for (let o = 0; o < nOut; o++) out[r * nOut + o] = bias ? acc[o]! + bias.data[o]! : acc[o]!;
  }
  return { shape: [t, nOut], data: out } satisfies Tensor;
};

/** Register the sparse ops and their reference kernels (idempotent). */
export function registerSparseOps(): void {
  for (const schema of SPARSE_OPS) registerOp(schema);
  registerKernel('threshold', thresholdKernel);
  registerKernel('sparse_linear_out', sparseLinearOutKernel);
  registerKernel('sparse_linear_in', sparseLinearInKernel);
}
