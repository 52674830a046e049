import { GGMLType, ggmlRowBytes, ggmlTypeName, ggufValue, openGGUF, writeGGUF, type GGUFValue, type GGUFWriteTensor } from '@chess/gguf';
import { fetchDefaultModel } from '@chess/assets';
import { Xoshiro128 } from './prng.ts';
import { fillRandomRows, type SynthType } from './random-blocks.ts';
import { canonicalShape, type ModelShape } from './shapes.ts';

export interface SynthOptions {
  shape: ModelShape;
  type: SynthType;
  out: string;
  seed?: number;
  /** GGUF whose `tokenizer.*` metadata is copied (default: the embedded SmolLM2). */
  tokenizerFrom?: string;
  /** Type named in `general.name` (default: the ggml type; an F16 synth that llama-quantize turns into Q4_K_M says q4_k_m). */
  typeLabel?: string;
  /** Called after each tensor with bytes written so far and the total. */
  progress?: (written: number, total: number, tensor: string) => void;
}

/** llama.cpp's `general.file_type` (enum llama_ftype) for an all-one-type file. */
export const FILE_TYPE: Record<SynthType, number> = {
  [GGMLType.F32]: 0,
  [GGMLType.F16]: 1,
  [GGMLType.Q4_0]: 2,
  [GGMLType.Q4_1]: 3,
  [GGMLType.Q8_0]: 7,
  [GGMLType.BF16]: 32,
};

/** Chunk size of generated tensor data: memory stays bounded by one chunk, whatever the model size. */
const CHUNK_BYTES = 16 << 20;
const WEIGHT_STD = 0.02;
/** Bumped whenever the same seed gives other weights (2: zero-mean quantized blocks); caches key on it. */
export const SYNTH_VERSION = 2;

interface PlannedTensor {
  name: string;
  shape: number[];
  type: GGMLType;
  kind: 'norm' | 'weight';
}

/** Tensor table of a llama-architecture decoder, in ggml `ne` order (innermost first). */
export function planTensors(shape: ModelShape, nVocab: number, type: SynthType): PlannedTensor[] {
  const headDim = shape.nEmbd / shape.nHead;
  const nEmbdKV = headDim * shape.nHeadKV;
  const tensors: PlannedTensor[] = [
    { name: 'token_embd.weight', shape: [shape.nEmbd, nVocab], type, kind: 'weight' },
    { name: 'output_norm.weight', shape: [shape.nEmbd], type: GGMLType.F32, kind: 'norm' },
  ];
  if (!shape.tiedEmbeddings) tensors.push({ name: 'output.weight', shape: [shape.nEmbd, nVocab], type, kind: 'weight' });
  for (let layer = 0; layer < shape.nLayer; layer++) {
    const p = `blk.${layer}.`;
    tensors.push(
      { name: `${p}attn_norm.weight`, shape: [shape.nEmbd], type: GGMLType.F32, kind: 'norm' },
      { name: `${p}attn_q.weight`, shape: [shape.nEmbd, shape.nEmbd], type, kind: 'weight' },
      { name: `${p}attn_k.weight`, shape: [shape.nEmbd, nEmbdKV], type, kind: 'weight' },
      { name: `${p}attn_v.weight`, shape: [shape.nEmbd, nEmbdKV], type, kind: 'weight' },
      { name: `${p}attn_output.weight`, shape: [shape.nEmbd, shape.nEmbd], type, kind: 'weight' },
      { name: `${p}ffn_norm.weight`, shape: [shape.nEmbd], type: GGMLType.F32, kind: 'norm' },
      { name: `${p}ffn_gate.weight`, shape: [shape.nEmbd, shape.nFF], type, kind: 'weight' },
      { name: `${p}ffn_up.weight`, shape: [shape.nEmbd, shape.nFF], type, kind: 'weight' },
      { name: `${p}ffn_down.weight`, shape: [shape.nFF, shape.nEmbd], type, kind: 'weight' },
    );
  }
  return tensors;
}

/**
 * Write a random-weight GGUF of a real shape with a real tokenizer, loadable by
 * stock llama.cpp. Streams: memory is bounded by one 16 MB chunk, so a 7B file
 * never sits in memory. Same options and seed give the same bytes.
 */
export async function synthesizeModel(options: SynthOptions): Promise<{ path: string; bytes: number; tensors: number }> {
  const { shape, type, out } = options;
  const seed = options.seed ?? 0;
  const tokenizerPath = options.tokenizerFrom ?? (await fetchDefaultModel());
  const tokenizer = await openGGUF(tokenizerPath);
  let tokenizerEntries: [string, GGUFValue][];
  try {
    tokenizerEntries = [...tokenizer.metadata].filter(([key]) => key.startsWith('tokenizer.'));
  } finally {
    await tokenizer.close();
  }
  const tokens = tokenizerEntries.find(([key]) => key === 'tokenizer.ggml.tokens')?.[1];
  const nVocab = tokens && 'items' in tokens ? tokens.items.length : 0;
  if (nVocab === 0) throw new Error(`${tokenizerPath}: no tokenizer.ggml.tokens array to take the vocabulary from`);

  const headDim = shape.nEmbd / shape.nHead;
  const metadata: [string, GGUFValue][] = [
    ['general.architecture', ggufValue.string('llama')],
    ['general.type', ggufValue.string('model')],
    ['general.name', ggufValue.string(`synthetic ${shape.name} ${options.typeLabel ?? ggmlTypeName(type)}`)],
    ['general.description', ggufValue.string(`Random weights (seed ${seed}) for speed measurements; not a language model.`)],
    ['general.file_type', ggufValue.u32(FILE_TYPE[type])],
    ['general.quantization_version', ggufValue.u32(2)],
    ['llama.vocab_size', ggufValue.u32(nVocab)],
    ['llama.context_length', ggufValue.u32(shape.nCtx)],
    ['llama.embedding_length', ggufValue.u32(shape.nEmbd)],
    ['llama.feed_forward_length', ggufValue.u32(shape.nFF)],
    ['llama.block_count', ggufValue.u32(shape.nLayer)],
    ['llama.attention.head_count', ggufValue.u32(shape.nHead)],
    ['llama.attention.head_count_kv', ggufValue.u32(shape.nHeadKV)],
    ['llama.rope.dimension_count', ggufValue.u32(headDim)],
    ['llama.rope.freq_base', ggufValue.f32(shape.ropeFreqBase)],
    ['llama.attention.layer_norm_rms_epsilon', ggufValue.f32(shape.rmsEps)],
    ['chess.synthetic.seed', ggufValue.u32(seed)],
    ['chess.synthetic.version', ggufValue.u32(SYNTH_VERSION)],
    // what made the weights, so that a file can be recognised as up to date (synth-cache.ts)
    ['chess.synthetic.shape', ggufValue.string(canonicalShape(shape))],
    ...tokenizerEntries,
  ];

  const planned = planTensors(shape, nVocab, type);
  const sizes = planned.map((t) => ggmlRowBytes(t.type, t.shape[0]!) * (t.shape[1] ?? 1));
  const total = sizes.reduce((a, b) => a + b, 0);
  let written = 0;
  const tensors: GGUFWriteTensor[] = planned.map((tensor, index) => ({
    name: tensor.name,
    shape: tensor.shape,
    type: tensor.type,
    byteLength: sizes[index]!,
    // One generator per tensor, seeded from (seed, index): tensors are independent of write order.
    data: () => generateTensor(tensor, new Xoshiro128((seed * 0x9e3779b1 + index * 0x85ebca6b) >>> 0), () => {
      written += sizes[index]!;
      options.progress?.(written, total, tensor.name);
    }),
  }));
  await writeGGUF(out, { metadata, tensors });
  return { path: out, bytes: total, tensors: tensors.length };
}

async function* generateTensor(tensor: PlannedTensor, rng: Xoshiro128, done: () => void): AsyncIterable<Uint8Array> {
  const rowLength = tensor.shape[0]!;
  const rows = tensor.shape[1] ?? 1;
  if (tensor.kind === 'norm') {
    // RMSNorm weights near 1, as in trained models (random ones would shrink activations).
    const data = new Float32Array(rowLength * rows);
    for (let i = 0; i < data.length; i++) data[i] = 1 + 0.05 * (rng.nextFloat() * 2 - 1);
    yield new Uint8Array(data.buffer);
    done();
    return;
  }
  const rowBytes = ggmlRowBytes(tensor.type, rowLength);
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / rowBytes));
  for (let row = 0; row < rows; row += rowsPerChunk) {
    const count = Math.min(rowsPerChunk, rows - row);
    const chunk = new Uint8Array(count * rowBytes);
    fillRandomRows(tensor.type as SynthType, chunk, rowLength, rng, WEIGHT_STD);
    yield chunk;
  }
  done();
}
