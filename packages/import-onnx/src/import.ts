/**
 * ONNX -> IR: the decoder recognised by llama-pattern.ts becomes the IR's
 * Llama module (`buildLlamaModule`), weights named as GGUF names them.
 * Weights that the IR reads as stored (float32/float16/bfloat16 embedding and
 * norm scales, [n_out, n_in] projections) stay references into the ONNX file
 * or its external data; projections stored [n_in, n_out] (MatMul's B) are
 * transposed when read, and q/k rows of rotate_half exports are permuted to
 * llama.cpp's adjacent-pair RoPE (as llama.cpp's own HF converter does).
 * The GGUF metadata a llama.cpp loader needs is written as module metadata;
 * the tokenizer comes from a GGUF given by the caller (ONNX files carry none),
 * else `tokenizer.ggml.model = none`.
 */
import { ChessError } from '@chess/core';
import { GGUFValueType, openGGUF } from '@chess/gguf';
import { metaEntryFromGGUF } from '@chess/import-gguf';
import { buildLlamaModule, memoryWeight, verify, type DType, type MetaEntry, type Module, type Weight } from '@chess/ir';
import { GraphIndex } from './graph-index.ts';
import { matchDecoder, type DecoderMatch, type LinearMatch } from './llama-pattern.ts';
import { elementTypeName, readOnnxFile, type OnnxFile, type TensorData } from './onnx-file.ts';
import { onnx } from './onnx-proto.ts';
import { floatValues } from './tensor-values.ts';

const DT = onnx.TensorProto.DataType;

export interface ImportOnnxOptions {
  /** A GGUF whose `tokenizer.*` entries are copied (its vocabulary must have the model's size). */
  readonly tokenizerFrom?: string;
  /** `llama.context_length` of the result. Default 2048. */
  readonly contextLength?: number;
  /** `general.name`. Default: the ONNX graph's name. */
  readonly name?: string;
}

export interface ImportOnnxResult {
  readonly module: Module;
  readonly match: DecoderMatch;
  readonly file: OnnxFile;
}

export async function importOnnx(path: string, options: ImportOnnxOptions = {}): Promise<ImportOnnxResult> {
  const file = await readOnnxFile(path);
  const match = await matchDecoder(new GraphIndex(file));
  const m = match;
  const sources = new Map<string, string>();
  const sourceId = (p: string) => {
    if (!sources.has(p)) sources.set(p, sources.size === 0 ? 'onnx' : `onnx_data${sources.size}`);
    return sources.get(p)!;
  };

  const weights: Weight[] = [];
  const asIs = (name: string, t: TensorData, what: string): Weight => {
    const dtype = floatDType(file, t, what);
    if (t.offset >= 0 && !t.inline && !t.values) return { name, dtype, shape: [...t.dims], source: { kind: 'file', file: sourceId(t.file), offset: t.offset, byteLength: t.byteLength } };
    return memoryWeight(name, 'f32', t.dims, () => floatValues(file, t) as never);
  };
  const vector = (name: string, t: TensorData, what: string): Weight => {
    const w = asIs(name, t, what);
    // norm scales stay f32 in GGUF (llama.cpp multiplies by them in f32)
    return w.dtype === 'f32' ? w : memoryWeight(name, 'f32', [t.dims.reduce((a, b) => a * b, 1)], () => floatValues(file, t) as never);
  };
  const projection = (name: string, lin: LinearMatch, permuteHeads?: number): Weight => {
    floatDType(file, lin.weight, `projection ${name}`);
    if (lin.layout === 'out_in' && permuteHeads === undefined) return asIs(name, lin.weight, `projection ${name}`);
    return memoryWeight(name, 'f32', [lin.nOut, lin.nIn], async () => {
      let rows = await floatValues(file, lin.weight);
      if (lin.layout === 'in_out') rows = transpose(rows, lin.nIn, lin.nOut);
      return permuteHeads === undefined ? rows : permuteRotary(rows, lin.nOut, lin.nIn, permuteHeads);
    });
  };

  weights.push(asIs('token_embd.weight', m.embedding, 'the embedding'));
  const neox = m.ropeMode === 'neox';
  m.layers.forEach((l, il) => {
    const b = `blk.${il}`;
    weights.push(vector(`${b}.attn_norm.weight`, l.attnNorm.weight, `layer ${il} attention norm`));
    weights.push(projection(`${b}.attn_q.weight`, l.q, neox ? m.nHead : undefined));
    weights.push(projection(`${b}.attn_k.weight`, l.k, neox ? m.nHeadKv : undefined));
    weights.push(projection(`${b}.attn_v.weight`, l.v));
    weights.push(projection(`${b}.attn_output.weight`, l.o));
    weights.push(vector(`${b}.ffn_norm.weight`, l.ffnNorm.weight, `layer ${il} FFN norm`));
    weights.push(projection(`${b}.ffn_gate.weight`, l.gate));
    weights.push(projection(`${b}.ffn_up.weight`, l.up));
    weights.push(projection(`${b}.ffn_down.weight`, l.down));
  });
  weights.push(vector('output_norm.weight', m.outputNorm.weight, 'the final norm'));
  if (m.head) weights.push(projection('output.weight', m.head));

  const hparams = {
    arch: 'llama',
    n_layer: m.layers.length,
    n_embd: m.nEmbd,
    n_ff: m.nFf,
    n_head: m.nHead,
    n_head_kv: m.nHeadKv,
    head_dim: m.headDim,
    n_vocab: m.nVocab,
    // the exporter's float32 epsilon, as the shortest decimal of that float32
    rms_eps: Number(Math.fround(m.rmsEps).toPrecision(7)),
    tied_embeddings: m.head === undefined,
    rope: { freq_base: m.ropeFreqBase, freq_scale: m.ropeFreqScale, mode: 'normal' as const, n_ctx_orig: options.contextLength ?? 2048 },
  };
  const module = buildLlamaModule(hparams, { tensors: weights });
  for (const [p, id] of sources) module.addSource(id, p);
  module.meta = [...llamaMeta(m, options, file), ...(await tokenizerMeta(m, options))];
  verify(module);
  return { module, match, file };
}

function floatDType(file: OnnxFile, t: TensorData, what: string): DType {
  if (t.dataType === DT.FLOAT) return 'f32';
  if (t.dataType === DT.FLOAT16) return 'f16';
  if (t.dataType === DT.BFLOAT16) return 'bf16';
  throw new ChessError('ONNX_DTYPE', `${file.path}: initializer '${t.name}' (${what}) has element type ${elementTypeName(t.dataType)}; expected float, float16 or bfloat16`, {
    path: file.path,
    initializer: t.name,
  });
}

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}

/** rotate_half rows (i, i + hd/2 pairs) to adjacent pairs (2i, 2i+1), head by head. */
function permuteRotary(w: Float32Array, nOut: number, nIn: number, nHeads: number): Float32Array {
  const hd = nOut / nHeads;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      for (let j = 0; j < 2; j++) {
        const src = h * hd + j * (hd / 2) + i;
        const dst = h * hd + 2 * i + j;
        out.set(w.subarray(src * nIn, (src + 1) * nIn), dst * nIn);
      }
    }
  }
  return out;
}

function llamaMeta(m: DecoderMatch, options: ImportOnnxOptions, file: OnnxFile): MetaEntry[] {
  const u32 = (key: string, value: number): MetaEntry => ({ key, type: 'u32', value });
  const f32 = (key: string, value: number): MetaEntry => ({ key, type: 'f32', value });
  const out: MetaEntry[] = [
    { key: 'general.architecture', type: 'string', value: 'llama' },
    { key: 'general.name', type: 'string', value: options.name ?? (file.graph.name || 'onnx-import') },
    { key: 'general.source.onnx.producer', type: 'string', value: `${file.model.producerName ?? ''} ${file.model.producerVersion ?? ''}`.trim() },
    u32('llama.context_length', options.contextLength ?? 2048),
    u32('llama.embedding_length', m.nEmbd),
    u32('llama.block_count', m.layers.length),
    u32('llama.feed_forward_length', m.nFf),
    u32('llama.rope.dimension_count', m.headDim),
    u32('llama.attention.head_count', m.nHead),
    u32('llama.attention.head_count_kv', m.nHeadKv),
    f32('llama.rope.freq_base', m.ropeFreqBase),
    f32('llama.attention.layer_norm_rms_epsilon', Number(Math.fround(m.rmsEps).toPrecision(7))),
    u32('llama.vocab_size', m.nVocab),
  ];
  if (m.headDim * m.nHead !== m.nEmbd) out.push(u32('llama.attention.key_length', m.headDim), u32('llama.attention.value_length', m.headDim));
  if (m.ropeFreqScale !== 1) out.push({ key: 'llama.rope.scaling.type', type: 'string', value: 'linear' }, f32('llama.rope.scaling.factor', 1 / m.ropeFreqScale));
  return out;
}

async function tokenizerMeta(m: DecoderMatch, options: ImportOnnxOptions): Promise<MetaEntry[]> {
  if (!options.tokenizerFrom) return [{ key: 'tokenizer.ggml.model', type: 'string', value: 'none' }];
  const gguf = await openGGUF(options.tokenizerFrom);
  try {
    const tokens = gguf.metadata.get('tokenizer.ggml.tokens');
    const n = tokens && tokens.type === GGUFValueType.ARRAY ? tokens.items.length : 0;
    if (n !== m.nVocab) {
      throw new ChessError('ONNX_TOKENIZER', `${options.tokenizerFrom}: its tokenizer has ${n} tokens, the ONNX model's vocabulary ${m.nVocab}`, { path: options.tokenizerFrom, tokens: n, vocab: m.nVocab });
    }
    return [...gguf.metadata].filter(([key]) => key.startsWith('tokenizer.')).map(([key, value]) => metaEntryFromGGUF(key, value));
  } finally {
    await gguf.close();
  }
}
