/**
 * A small random-weight dense Llama GGUF for the backend tests of weight types that
 * SmolLM2's shapes cannot hold: the K-quants need n_in % 256 == 0 (SmolLM2's hidden
 * size is 576), and our codecs quantize neither them nor, here, anything in their
 * place. So the blocks are generated directly: random bytes for the quantized
 * values, chosen fp16 scale fields, every block a valid ggml block of its type.
 * The tokenizer is SmolLM2's (the source's `tokenizer.*` keys), so real text runs.
 * Not a language model; the tests compare two runtimes on the same weights.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { ChessError, cachePath, mulberry32 } from '@chess/core';
import { GGMLType, fp32ToFp16, ggmlRowBytes, ggmlTypeName, ggufValue, openGGUF, writeGGUF, type GGUFValue, type GGUFWriteTensor } from '@chess/gguf';

export interface SyntheticLlamaOptions {
  /** Type of the seven projections of every layer. */
  type: GGMLType;
  nEmbd: number;
  nFF: number;
  nHead: number;
  nHeadKV: number;
  nLayer: number;
  /** GGUF whose `tokenizer.*` keys are copied (the default model). */
  tokenizerFrom: string;
  seed?: number;
  /** Output path; default: a cache file keyed by every option. */
  out?: string;
  log?: (line: string) => void;
}

/** Bump when the construction below changes (cached files are keyed by it). */
const RECIPE_VERSION = 1;

/**
 * Per type: block bytes, the byte offsets of its fp16 scale fields, and each field's value
 * as a multiple of the target deviation `std` of the decoded weights. The multiples make
 * uniform random quants decode to roughly zero-mean values of deviation `std`:
 * Q5_0 (q - 16) d: 9.23 d; Q5_1 q d + m with m = -15.5 d; Q4_K d sc q - dmin m with sc, m
 * uniform 6-bit and dmin = 7.5 d: ~260 d; Q5_K the same with 5-bit q, dmin = 15.5 d: ~529 d;
 * Q6_K d sc (q - 32) with int8 sc: ~1365 d; Q8_0 q d: 73.9 d; Q4_0 (q - 8) d: 4.61 d.
 */
const BLOCKS: ReadonlyMap<GGMLType, { bytes: number; fields: ReadonlyArray<readonly [offset: number, perStd: number]> }> = new Map([
  [GGMLType.Q4_0, { bytes: 18, fields: [[0, 1 / 4.61]] }],
  [GGMLType.Q4_1, { bytes: 20, fields: [[0, 1 / 4.61], [2, -7.5 / 4.61]] }],
  [GGMLType.Q5_0, { bytes: 22, fields: [[0, 1 / 9.23]] }],
  [GGMLType.Q5_1, { bytes: 24, fields: [[0, 1 / 9.23], [2, -15.5 / 9.23]] }],
  [GGMLType.Q8_0, { bytes: 34, fields: [[0, 1 / 73.9]] }],
  [GGMLType.Q4_K, { bytes: 144, fields: [[0, 1 / 260], [2, 7.5 / 260]] }],
  [GGMLType.Q5_K, { bytes: 176, fields: [[0, 1 / 529], [2, 15.5 / 529]] }],
  [GGMLType.Q6_K, { bytes: 210, fields: [[208, 1 / 1365]] }],
]);

/** Build (or reuse from the cache) the model; returns its path. */
export async function makeSyntheticLlama(options: SyntheticLlamaOptions): Promise<string> {
  const { type, nEmbd, nFF, nHead, nHeadKV, nLayer } = options;
  const seed = options.seed ?? 1;
  const block = BLOCKS.get(type);
  if (!block) {
    throw new ChessError('TEST_MODEL_BAD_OPTION', `synthetic model: no random block generator for ${ggmlTypeName(type)} (have ${[...BLOCKS.keys()].map(ggmlTypeName).join(', ')})`, { type });
  }
  const key = createHash('sha256')
    .update(JSON.stringify({ RECIPE_VERSION, type, nEmbd, nFF, nHead, nHeadKV, nLayer, seed, tokenizer: basename(options.tokenizerFrom) }))
    .digest('hex')
    .slice(0, 12);
  const out = options.out ?? cachePath('test-models', `synthetic-${ggmlTypeName(type)}-e${nEmbd}-f${nFF}-l${nLayer}.${key}.gguf`);
  if (options.out === undefined && existsSync(out)) return out;
  options.log?.(`writing synthetic ${ggmlTypeName(type)} llama (n_embd ${nEmbd}, n_ff ${nFF}, ${nLayer} layers) to ${out}`);

  const tokenizer = await openGGUF(options.tokenizerFrom);
  let tokenizerEntries: Array<[string, GGUFValue]>;
  try {
    tokenizerEntries = [...tokenizer.metadata].filter(([k]) => k.startsWith('tokenizer.'));
  } finally {
    await tokenizer.close();
  }
  const tokens = tokenizerEntries.find(([k]) => k === 'tokenizer.ggml.tokens')?.[1];
  const nVocab = tokens && 'items' in tokens ? tokens.items.length : 0;
  if (nVocab === 0) throw new ChessError('TEST_MODEL_BAD_SOURCE', `${options.tokenizerFrom}: no tokenizer.ggml.tokens`, {});

  const headDim = nEmbd / nHead;
  const tensors: GGUFWriteTensor[] = [];
  // one generator per tensor, seeded from (seed, index): the bytes do not depend on write order
  const seedOf = (): number => (Math.imul(seed, 0x9e3779b1) + Math.imul(tensors.length + 1, 0x85ebca6b)) >>> 0;
  const quantized = (name: string, t: GGMLType, nIn: number, nOut: number, std: number): void => {
    const byteLength = ggmlRowBytes(t, nIn) * nOut;
    const tensorSeed = seedOf();
    tensors.push({ name, shape: [nIn, nOut], type: t, byteLength, data: async () => randomBlocks(t, byteLength, std, uniformSampler(tensorSeed)) });
  };
  const norm = (name: string, n: number): void => {
    // RMSNorm weights near 1, as in trained models
    const rng = uniformSampler(seedOf());
    const values = Float32Array.from({ length: n }, () => 1 + 0.1 * (rng() * 2 - 1));
    tensors.push({ name, shape: [n], type: GGMLType.F32, byteLength: 4 * n, data: async () => new Uint8Array(values.buffer) });
  };
  // Embedding (tied to the output): deviation 0.25 makes logits of deviation ~0.25 sqrt(n_embd),
  // a peaked next-token distribution, so that a difference between runtimes shows.
  quantized('token_embd.weight', GGMLType.Q8_0, nEmbd, nVocab, 0.25);
  norm('output_norm.weight', nEmbd);
  for (let il = 0; il < nLayer; il++) {
    const p = `blk.${il}.`;
    // deviation 1 / sqrt(n_in): every product keeps its input's scale
    norm(`${p}attn_norm.weight`, nEmbd);
    quantized(`${p}attn_q.weight`, type, nEmbd, nEmbd, 1 / Math.sqrt(nEmbd));
    quantized(`${p}attn_k.weight`, type, nEmbd, headDim * nHeadKV, 1 / Math.sqrt(nEmbd));
    quantized(`${p}attn_v.weight`, type, nEmbd, headDim * nHeadKV, 1 / Math.sqrt(nEmbd));
    quantized(`${p}attn_output.weight`, type, nEmbd, nEmbd, 1 / Math.sqrt(nEmbd));
    norm(`${p}ffn_norm.weight`, nEmbd);
    quantized(`${p}ffn_gate.weight`, type, nEmbd, nFF, 1 / Math.sqrt(nEmbd));
    quantized(`${p}ffn_up.weight`, type, nEmbd, nFF, 1 / Math.sqrt(nEmbd));
    quantized(`${p}ffn_down.weight`, type, nFF, nEmbd, 1 / Math.sqrt(nFF));
  }
  const metadata: Array<[string, GGUFValue]> = [
    ['general.architecture', ggufValue.string('llama')],
    ['general.name', ggufValue.string(`synthetic ${ggmlTypeName(type)} test model`)],
    ['general.description', ggufValue.string(`Random weights (seed ${seed}) for runtime tests; not a language model.`)],
    ['llama.vocab_size', ggufValue.u32(nVocab)],
    ['llama.context_length', ggufValue.u32(2048)],
    ['llama.embedding_length', ggufValue.u32(nEmbd)],
    ['llama.feed_forward_length', ggufValue.u32(nFF)],
    ['llama.block_count', ggufValue.u32(nLayer)],
    ['llama.attention.head_count', ggufValue.u32(nHead)],
    ['llama.attention.head_count_kv', ggufValue.u32(nHeadKV)],
    ['llama.rope.dimension_count', ggufValue.u32(headDim)],
    ['llama.rope.freq_base', ggufValue.f32(10000)],
    ['llama.attention.layer_norm_rms_epsilon', ggufValue.f32(1e-5)],
    ...tokenizerEntries,
  ];
  await writeGGUF(out, { metadata, tensors });
  return out;
}

/** Random valid blocks of `type`: random quant bytes, scale fields set from `std` with a random sign and jitter per block. */
function randomBlocks(type: GGMLType, byteLength: number, std: number, rng: () => number): Uint8Array {
  const { bytes, fields } = BLOCKS.get(type)!;
  const out = new Uint8Array(byteLength);
  for (let i = 0; i < byteLength; i++) out[i] = Math.floor(rng() * 256);
  const view = new DataView(out.buffer);
  for (let b = 0; b < byteLength; b += bytes) {
    // random signs keep the weights zero-mean (one sign would shift every output alike);
    // the K-quants' minimum field must keep the sign of their scale
    const jitter = (rng() < 0.5 ? -1 : 1) * (0.75 + 0.5 * rng());
    for (const [offset, perStd] of fields) view.setUint16(b + offset, fp32ToFp16(perStd * std * jitter), true);
  }
  return out;
}

/** Seeded uniform draws in [0, 1) (@chess/core's mulberry32). */
const uniformSampler = mulberry32;
