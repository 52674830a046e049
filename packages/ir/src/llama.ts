/**
 * Builder of a standard Llama-family decoder (llama, qwen2, mistral, SmolLM2
 * ...), unrolled, one op per llama.cpp graph step, each with its `layer`.
 * Tensor names follow llama.cpp / GGUF (`blk.N.ffn_up.weight`); value names
 * follow llama.cpp's graph callbacks (`%ffn_up.N`).
 */
import { IrErrorCode, irError } from './errors.ts';
import { type HParamValue, Module, type Weight } from './module.ts';
import type { Node } from './node.ts';
import { type DType, formatShape, shapesEqual } from './types.ts';

export interface LlamaRopeParams {
  /** Rotated dims per head (default head_dim). */
  readonly n_rot?: number;
  readonly freq_base: number;
  readonly freq_scale?: number;
  /** `normal` for llama/mistral, `neox` for qwen2/gemma. */
  readonly mode?: 'normal' | 'neox';
  readonly ext_factor?: number;
  readonly attn_factor?: number;
  readonly beta_fast?: number;
  readonly beta_slow?: number;
  readonly n_ctx_orig?: number;
  /** Divide theta by `rope_freqs.weight` (Llama 3.1 scaling). Default: whether the tensor is present. */
  readonly freq_factors?: boolean;
}

export interface LlamaHParams {
  /** Architecture name recorded in the module (default `llama`). */
  readonly arch?: string;
  readonly n_layer: number;
  readonly n_embd: number;
  readonly n_ff: number;
  readonly n_head: number;
  readonly n_head_kv: number;
  /** Default n_embd / n_head. */
  readonly head_dim?: number;
  readonly n_vocab: number;
  readonly rms_eps: number;
  readonly rope: LlamaRopeParams;
  /** Output head reuses token_embd.weight. Default: whether output.weight is absent from `tensors`, else false. */
  readonly tied_embeddings?: boolean;
  /** q/k/v biases (qwen2). Default: whether blk.0.attn_q.bias is present in `tensors`, else false. */
  readonly qkv_bias?: boolean;
  readonly activation?: 'silu' | 'gelu_tanh';
  /** Attention scale; default 1/sqrt(head_dim). */
  readonly attn_scale?: number;
}

export interface LlamaBuildOptions {
  /**
   * The tensors of the source file. When given, each weight the decoder uses
   * takes its dtype and source from here (its shape must match), and every
   * other tensor is carried along marked `keep`, so import -> emit loses nothing.
   */
  readonly tensors?: ReadonlyMap<string, Weight> | Iterable<Weight>;
  /** Without `tensors`: dtype of the matrices (norms and biases stay f32). Default f32. */
  readonly dtype?: DType;
  /** Without `tensors`: the source file the weights point into. Default `{ id: 'model', path: 'model.gguf' }`. */
  readonly source?: { readonly id: string; readonly path: string };
}

export interface LlamaTensor {
  readonly name: string;
  readonly shape: readonly number[];
  /** Norm scales, biases and frequency factors: kept f32 by quantizers. */
  readonly vector: boolean;
}

/** Resolved hyperparameters (defaults applied). */
export type ResolvedLlamaHParams = Required<Omit<LlamaHParams, 'rope'>> & { readonly rope: Required<LlamaRopeParams> };

export function resolveLlamaHParams(hp: LlamaHParams, has: (name: string) => boolean | undefined = () => undefined): ResolvedLlamaHParams {
  const head_dim = hp.head_dim ?? hp.n_embd / hp.n_head;
  const bad = (what: string) => {
    throw irError(IrErrorCode.LLAMA_HPARAMS, `llama hyperparameters: expected ${what}`, { hparams: hp });
  };
  for (const key of ['n_layer', 'n_embd', 'n_ff', 'n_head', 'n_head_kv', 'n_vocab'] as const) {
    if (!Number.isInteger(hp[key]) || hp[key] <= 0) bad(`${key} to be a positive integer (got ${hp[key]})`);
  }
  if (!Number.isInteger(head_dim) || head_dim <= 0) bad(`head_dim (or n_embd / n_head) to be a positive integer (got ${head_dim})`);
  if (hp.n_head % hp.n_head_kv !== 0) bad(`n_head_kv to divide n_head (got ${hp.n_head} / ${hp.n_head_kv})`);
  const n_rot = hp.rope.n_rot ?? head_dim;
  if (n_rot % 2 !== 0 || n_rot > head_dim || n_rot <= 0) bad(`rope.n_rot even and <= head_dim (got ${n_rot})`);
  return {
    arch: hp.arch ?? 'llama',
    n_layer: hp.n_layer,
    n_embd: hp.n_embd,
    n_ff: hp.n_ff,
    n_head: hp.n_head,
    n_head_kv: hp.n_head_kv,
    head_dim,
    n_vocab: hp.n_vocab,
    rms_eps: hp.rms_eps,
    tied_embeddings: hp.tied_embeddings ?? (has('output.weight') === undefined ? false : !has('output.weight')),
    qkv_bias: hp.qkv_bias ?? has('blk.0.attn_q.bias') ?? false,
    activation: hp.activation ?? 'silu',
    attn_scale: hp.attn_scale ?? 1 / Math.sqrt(head_dim),
    rope: {
      n_rot,
      freq_base: hp.rope.freq_base,
      freq_scale: hp.rope.freq_scale ?? 1,
      mode: hp.rope.mode ?? 'normal',
      ext_factor: hp.rope.ext_factor ?? 0,
      attn_factor: hp.rope.attn_factor ?? 1,
      beta_fast: hp.rope.beta_fast ?? 32,
      beta_slow: hp.rope.beta_slow ?? 1,
      n_ctx_orig: hp.rope.n_ctx_orig ?? 0,
      freq_factors: hp.rope.freq_factors ?? has('rope_freqs.weight') ?? false,
    },
  };
}

/** The tensors a decoder with these hyperparameters reads, in llama.cpp's load order. */
export function llamaTensors(hparams: LlamaHParams): LlamaTensor[] {
  return tensorsOf(resolveLlamaHParams(hparams));
}

function tensorsOf(hp: ResolvedLlamaHParams): LlamaTensor[] {
  const { n_embd: d, n_ff: ff, n_vocab: v, head_dim: hd } = hp;
  const qDim = hp.n_head * hd;
  const kvDim = hp.n_head_kv * hd;
  const out: LlamaTensor[] = [{ name: 'token_embd.weight', shape: [v, d], vector: false }];
  if (hp.rope.freq_factors) out.push({ name: 'rope_freqs.weight', shape: [hp.rope.n_rot / 2], vector: true });
  for (let il = 0; il < hp.n_layer; il++) {
    const b = `blk.${il}`;
    out.push({ name: `${b}.attn_norm.weight`, shape: [d], vector: true });
    out.push({ name: `${b}.attn_q.weight`, shape: [qDim, d], vector: false });
    if (hp.qkv_bias) out.push({ name: `${b}.attn_q.bias`, shape: [qDim], vector: true });
    out.push({ name: `${b}.attn_k.weight`, shape: [kvDim, d], vector: false });
    if (hp.qkv_bias) out.push({ name: `${b}.attn_k.bias`, shape: [kvDim], vector: true });
    out.push({ name: `${b}.attn_v.weight`, shape: [kvDim, d], vector: false });
    if (hp.qkv_bias) out.push({ name: `${b}.attn_v.bias`, shape: [kvDim], vector: true });
    out.push({ name: `${b}.attn_output.weight`, shape: [d, qDim], vector: false });
    out.push({ name: `${b}.ffn_norm.weight`, shape: [d], vector: true });
    out.push({ name: `${b}.ffn_gate.weight`, shape: [ff, d], vector: false });
    out.push({ name: `${b}.ffn_up.weight`, shape: [ff, d], vector: false });
    out.push({ name: `${b}.ffn_down.weight`, shape: [d, ff], vector: false });
  }
  out.push({ name: 'output_norm.weight', shape: [d], vector: true });
  if (!hp.tied_embeddings) out.push({ name: 'output.weight', shape: [v, d], vector: false });
  return out;
}

/** Build the decoder graph; see `LlamaBuildOptions` for where weights come from. */
export function buildLlamaModule(hparams: LlamaHParams, options: LlamaBuildOptions = {}): Module {
  const given = options.tensors && (options.tensors instanceof Map ? (options.tensors as ReadonlyMap<string, Weight>) : new Map([...(options.tensors as Iterable<Weight>)].map((w) => [w.name, w])));
  const hp = resolveLlamaHParams(hparams, given ? (name) => given.has(name) : undefined);
  const m = new Module(hp.arch);
  for (const [k, v] of Object.entries(flattenHParams(hp))) m.hparams.set(k, v);

  const needed = tensorsOf(hp);
  if (given) {
    for (const t of needed) {
      const w = given.get(t.name);
      if (!w) throw irError(IrErrorCode.LLAMA_WEIGHT_MISSING, `tensor ${t.name} ${formatShape(t.shape)} is required by this ${hp.arch} decoder but absent`, { tensor: t.name });
      if (!shapesEqual(w.shape, t.shape)) {
        throw irError(IrErrorCode.LLAMA_WEIGHT_SHAPE, `tensor ${t.name} has shape ${formatShape(w.shape)}, expected ${formatShape(t.shape)} from the hyperparameters`, {
          tensor: t.name,
        });
      }
    }
    const neededNames = new Set(needed.map((t) => t.name));
    for (const w of given.values()) m.addWeight(neededNames.has(w.name) ? w : { ...w, keep: true });
  } else {
    const source = options.source ?? { id: 'model', path: 'model.gguf' };
    m.addSource(source.id, source.path);
    for (const t of needed) {
      m.addWeight({ name: t.name, dtype: t.vector ? 'f32' : (options.dtype ?? 'f32'), shape: t.shape, source: { kind: 'file', file: source.id } });
    }
  }

  const { rope } = hp;
  const ropeAttrs = {
    head_dim: hp.head_dim,
    n_rot: rope.n_rot,
    freq_base: rope.freq_base,
    freq_scale: rope.freq_scale,
    mode: rope.mode,
    ext_factor: rope.ext_factor,
    attn_factor: rope.attn_factor,
    beta_fast: rope.beta_fast,
    beta_slow: rope.beta_slow,
    n_ctx_orig: rope.n_ctx_orig,
  };
  const ropeWeights = rope.freq_factors ? ['rope_freqs.weight'] : [];
  const tokens = m.add('input', [], {}, 'tokens');
  let cur: Node = m.add('embedding', [tokens, 'token_embd.weight'], {}, 'embd');
  for (let il = 0; il < hp.n_layer; il++) {
    const b = `blk.${il}`;
    const at = { layer: il };
    const n = (name: string) => `${name}.${il}`;
    const bias = (w: string) => (hp.qkv_bias ? [`${b}.${w}.bias`] : []);
    const inpSA = cur;
    const attnNorm = m.add('rms_norm', [cur, `${b}.attn_norm.weight`], { ...at, eps: hp.rms_eps }, n('attn_norm'));
    const q = m.add('linear', [attnNorm, `${b}.attn_q.weight`, ...bias('attn_q')], at, n('Qcur'));
    const k = m.add('linear', [attnNorm, `${b}.attn_k.weight`, ...bias('attn_k')], at, n('Kcur'));
    const v = m.add('linear', [attnNorm, `${b}.attn_v.weight`, ...bias('attn_v')], at, n('Vcur'));
    const qr = m.add('rope', [q, ...ropeWeights], { ...at, ...ropeAttrs }, n('Qcur_rope'));
    const kr = m.add('rope', [k, ...ropeWeights], { ...at, ...ropeAttrs }, n('Kcur_rope'));
    const attn = m.add('attention', [qr, kr, v], { ...at, n_head: hp.n_head, n_head_kv: hp.n_head_kv, head_dim: hp.head_dim, scale: hp.attn_scale }, n('kqv_out'));
    const attnOut = m.add('linear', [attn, `${b}.attn_output.weight`], at, n('attn_out'));
    const ffnInp = m.add('add', [attnOut, inpSA], at, n('ffn_inp'));
    const ffnNorm = m.add('rms_norm', [ffnInp, `${b}.ffn_norm.weight`], { ...at, eps: hp.rms_eps }, n('ffn_norm'));
    const gate = m.add('linear', [ffnNorm, `${b}.ffn_gate.weight`], at, n('ffn_gate'));
    const act = m.add('activation', [gate], { ...at, fn: hp.activation }, n(hp.activation === 'silu' ? 'ffn_silu' : 'ffn_gelu'));
    const up = m.add('linear', [ffnNorm, `${b}.ffn_up.weight`], at, n('ffn_up'));
    const par = m.add('mul', [act, up], at, n('ffn_gate_par'));
    const down = m.add('linear', [par, `${b}.ffn_down.weight`], at, n('ffn_out'));
    cur = m.add('add', [down, ffnInp], at, n('l_out'));
  }
  const norm = m.add('rms_norm', [cur, 'output_norm.weight'], { eps: hp.rms_eps }, 'result_norm');
  const logits = m.add('linear', [norm, hp.tied_embeddings ? 'token_embd.weight' : 'output.weight'], {}, 'result_output');
  m.add('output', [logits]);
  return m;
}

/** Hyperparameters as recorded in `Module.hparams` (rope ones prefixed `rope_`; defaults included). */
function flattenHParams(hp: ResolvedLlamaHParams): Record<string, HParamValue> {
  const { rope, arch: _arch, ...rest } = hp;
  const out: Record<string, HParamValue> = { ...rest };
  for (const [k, v] of Object.entries(rope)) out[`rope_${k}`] = v;
  return out;
}
