/**
 * The sparse ops, registered into the IR from this package, each with its
 * exact reference semantics for the interpreter. Keep rule everywhere:
 * an element `v` with threshold `tau` survives iff `|v| > tau` (strict);
 * dropped elements are exactly zero (docs/gguf-sparse.md).
 *
 *     %a = threshold %x @blk.N.attn_q_in_tau                 y = |x| > tau ? x : 0
 *     %h = sparse_linear_out %x @blk.N.ffn_up.weight %g @blk.N.ffn_gate_tau
 *                                                            h_i = |g_i| > tau_i ? g_i * (W[i] . x) : 0
 *     %y = sparse_linear_in %h @blk.N.ffn_down_cb.weight {layout="column-blocks"}
 *                                                            y = sum_j h_j * W[:, j]
 *     %y = sparse_linear_in %h @blk.N.ffn_down_t.weight {layout=transposed}
 *                                                            y = sum_j h_j * W_t[j, :]
 *
 * Registration is explicit (`registerSparseOps()`), never an import side effect.
 */
import { LAYOUTS, keeps } from '@chess/contract';
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
 * `%y = sparse_linear_in %x @W : f32[T,n_out] {layout=...}` — input-sparse
 * product: zero inputs skip what they feed. The storage layout of the weight
 * (docs/gguf-sparse.md §3) decides its shape: `column-blocks` keeps the source's
 * [n_out, n_in] (its bytes re-arranged per input channel), `transposed` is
 * [n_in, n_out] (row j holds what input j feeds).
 */
export const sparseLinearIn: OpSchema = {
  name: 'sparse_linear_in',
  summary: 'Input-sparse projection: y = sum_{j: x_j != 0} x_j * W[:, j] (+ b); W stored per input channel (column-blocks, [n_out, n_in]) or transposed ([n_in, n_out]).',
  operands: [
    { name: 'x', role: 'value', doc: 'Input f32[T,n_in], usually a threshold or sparse_linear_out result.' },
    { name: 'weight', role: 'weight', doc: 'column-blocks: W [n_out, n_in] in the source type; transposed: W_t [n_in, n_out], quantized along n_out.' },
    { name: 'bias', role: 'weight', optional: true, dtypes: ['float'], doc: 'Bias [n_out].' },
  ],
  attrs: {
    layout: { type: { enum: LAYOUTS }, doc: 'Storage layout of the weight (docs/gguf-sparse.md §3): column-blocks or transposed.' },
  },
  infer(ctx) {
    const [t, nIn] = ctx.rank(0, 2);
    ctx.dtype(0, 'f32');
    const w = ctx.rank(1, 2);
    const nOut = ctx.string('layout') === 'transposed' ? w[1]! : w[0]!;
    ctx.shape(1, ctx.string('layout') === 'transposed' ? [nIn!, nOut] : [nOut, nIn!]);
    if (ctx.has(2)) ctx.shape(2, [nOut]);
    return { dtype: 'f32', shape: [t!, nOut] };
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
      out[r * n + j] = keeps(v, tau!.data[perChannel ? j : 0]!) ? v : 0;
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
      if (!keeps(g, tau!.data[i]!)) continue; // dead channel: row i is never read
      let acc = 0;
      for (let k = 0; k < nIn; k++) acc += x!.data[r * nIn + k]! * w!.data[i * nIn + k]!;
      out[r * nOut + i] = g * acc;
    }
  }
  return { shape: [t, nOut], data: out };
};

export const sparseLinearInKernel: Kernel = ({ inputs: [x, w, bias], attrs }) => {
  const [t, nIn] = x!.shape as [number, number];
  // W[o, j] at o * nIn + j (column-blocks: the logical values of the source shape) or j * nOut + o (transposed)
  const transposed = attrs.layout === 'transposed';
  const nOut = transposed ? w!.shape[1]! : w!.shape[0]!;
  const [oStride, jStride] = transposed ? [1, nOut] : [nIn, 1];
  const out = new Float64Array(t * nOut);
  for (let r = 0; r < t; r++) {
    const acc = new Float64Array(nOut);
    for (let j = 0; j < nIn; j++) {
      const v = x!.data[r * nIn + j]!;
      if (v === 0) continue; // zero input: what it feeds is never read
      for (let o = 0; o < nOut; o++) acc[o] = acc[o]! + v * w!.data[o * oStride + j * jStride]!;
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
