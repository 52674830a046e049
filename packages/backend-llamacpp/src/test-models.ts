/**
 * Sparse test models: a dense GGUF (SmolLM2 by default) rewritten as a sparse
 * GGUF (docs/gguf-sparse.md) with SYNTHETIC thresholds and its input-sparse
 * projections in the column-block layout (§3.1) or transposed (§3.2); and the
 * dense twin of such a model (same tensors, row layout, plain `llama`).
 *
 * The thresholds are not calibrated on text: each is a quantile of a plausible
 * distribution of the thresholded activation, derived from the weights alone
 * (RMS-normalised inputs ~ N(0, 1) per element, scaled by the norm weights;
 * pre-activations ~ N(0, sigma_i^2) with sigma_i the norm of the scaled weight
 * row). That is enough to make a realistic fraction of elements die on real
 * text, which is what the backend tests need. The compiler replaces this module
 * with real calibration.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import {
  METHODS,
  METHOD_LAYOUTS,
  NO_STATISTIC,
  PROJECTIONS as CONTRACT_PROJECTIONS,
  SPARSE_GGUF,
  contractNames,
  type Method,
  type Projection as ContractProjection,
} from '@chess/contract';
import { cachePath, ChessError } from '@chess/core';
import {
  GGML_TYPE_TRAITS,
  GGMLType,
  columnBlocksFromRows,
  dequantize,
  ggmlRowBytes,
  ggmlTypeName,
  ggufValue,
  openGGUF,
  quantize,
  writeGGUF,
  type GGUFFile,
  type GGUFTensorInfo,
  type GGUFValue,
  type GGUFWriteTensor,
} from '@chess/gguf';

export type SparseMethod = Method;

export const PROJECTIONS = CONTRACT_PROJECTIONS;
export type Projection = ContractProjection;

/** Per method (from the contract's method table): projections whose input gets a scalar threshold, projections stored for the input-sparse kernel. */
export const METHOD_LAYOUT: Readonly<Record<SparseMethod, { gateTau: boolean; inputTau: readonly Projection[]; transposed: readonly Projection[] }>> =
  Object.fromEntries(
    METHODS.map((m) => [m, { gateTau: METHOD_LAYOUTS[m].gate !== null, inputTau: METHOD_LAYOUTS[m].inputs, transposed: METHOD_LAYOUTS[m].inputSparse }]),
  ) as Record<SparseMethod, { gateTau: boolean; inputTau: readonly Projection[]; transposed: readonly Projection[] }>;

/** Storage of the input-sparse projections: `blk.N.<proj>_t.weight` or `blk.N.<proj>_cb.weight`. */
export type WeightLayout = 'transposed' | 'column-blocks';

export interface SparseTestModelOptions {
  method: SparseMethod;
  /** Target fraction of dropped elements per thresholded tensor (default 0.5); 0 writes every threshold as 0 (the dense function). */
  sparsity?: number;
  /** Layout of the input-sparse projections (default `transposed`). */
  layout?: WeightLayout;
  /** Type of the transposed projections (default F32); re-quantized along the output axis. Column blocks keep their row type (the source's, or denseType). */
  transposedType?: GGMLType;
  /**
   * Re-encode the projections that keep the normal layout, and the token embedding / output
   * matrix, in this type (default: keep the source's). ggml quantizes the activations of a quantized product to 8 bits, so with
   * quantized weights a float-rounding difference anywhere (e.g. a sparse kernel against a
   * dense product) can move an activation across a rounding boundary and grow, layer after
   * layer, to ~1e-3 in the next-token probabilities. With F32 weights the sparse route and
   * the masked dense route agree to float rounding, which is what the kernel tests need.
   */
  denseType?: GGMLType;
  /**
   * Keep only the first `layers` blocks (default: all). Thresholds make a network sensitive to
   * rounding: a float-level difference flips the elements that sit at a threshold, and over
   * 30 layers the flips compound (two ISA variants of the same kernels then disagree visibly).
   * A few layers keep exact-equality tests meaningful.
   */
  layers?: number;
  /** Seed of the synthetic activation samples (default 1). */
  seed?: number;
  /** Dense source GGUF (base architecture llama). */
  source: string;
  /** Output path; default: a file in the cache keyed by every option and the source. */
  out?: string;
  log?: (line: string) => void;
}

/** Bump when the construction below changes (cached files are keyed by it). */
const RECIPE_VERSION = 2;
/** Synthetic draws per channel or tensor when estimating a quantile. */
const SAMPLES = 256;

/** Build (or reuse from the cache) a sparse test model; returns its path. */
export async function makeSparseTestModel(options: SparseTestModelOptions): Promise<string> {
  const sparsity = options.sparsity ?? 0.5;
  const layout = options.layout ?? 'transposed';
  const type = options.transposedType ?? GGMLType.F32;
  const seed = options.seed ?? 1;
  const denseType = options.denseType;
  const layers = options.layers;
  if (!(sparsity >= 0 && sparsity < 1)) throw new ChessError('TEST_MODEL_BAD_OPTION', `sparsity ${sparsity} is not in [0, 1)`, { sparsity });
  const key = createHash('sha256')
    .update(JSON.stringify({ RECIPE_VERSION, method: options.method, sparsity, layout, type, seed, denseType, layers, source: basename(options.source) }))
    .digest('hex')
    .slice(0, 12);
  const upTag = (denseType === undefined ? '' : `.dense-${ggmlTypeName(denseType)}`) + (layers === undefined ? '' : `.l${layers}`);
  const layoutTag = layout === 'column-blocks' ? 'cb' : ggmlTypeName(type);
  const out =
    options.out ?? cachePath('test-models', `${basename(options.source, '.gguf')}.${options.method}.${layoutTag}${upTag}.s${sparsity}.${key}.gguf`);
  if (options.out === undefined && existsSync(out)) return out;

  const file = await openGGUF(options.source);
  try {
    const arch = file.metadata.getString('general.architecture');
    if (arch !== 'llama') {
      throw new ChessError('TEST_MODEL_BAD_SOURCE', `${options.source}: base architecture '${arch}', expected 'llama'`, { arch });
    }
    options.log?.(`writing ${options.method} test model (${layout === 'column-blocks' ? 'column blocks' : `${ggmlTypeName(type)} transposed`}, sparsity ${sparsity}) to ${out}`);
    const methodLayout = METHOD_LAYOUT[options.method];
    // sparsity 0: every threshold 0, so exactly the zeros are dropped (the dense function);
    // a quantile of samples would be their smallest, a small positive value
    const threshold = (samples: number[]): number => (sparsity === 0 ? 0 : quantile(samples, sparsity));
    const sourceLayers = file.metadata.getNumber('llama.block_count');
    const nLayer = Math.min(layers ?? sourceLayers, sourceLayers);
    const rng = normalSampler(seed);
    const z = Float64Array.from({ length: SAMPLES }, () => rng());
    const z2 = Float64Array.from({ length: SAMPLES }, () => rng());

    const extra: GGUFWriteTensor[] = [];
    for (let il = 0; il < nLayer; il++) {
      const attnNorm = await readF32(file, `blk.${il}.attn_norm.weight`);
      const ffnNorm = await readF32(file, `blk.${il}.ffn_norm.weight`);
      const gateSigma = await rowNorms(file, `blk.${il}.ffn_gate.weight`, ffnNorm);
      if (methodLayout.gateTau) {
        const tau = new Float32Array(gateSigma.length);
        if (options.method === 'cats') {
          // one threshold per layer: the quantile over every channel's samples
          const pooled: number[] = [];
          for (const sigma of gateSigma) for (const v of z) pooled.push(Math.abs(silu(sigma * v)));
          tau.fill(threshold(pooled));
        } else {
          for (let i = 0; i < gateSigma.length; i++) tau[i] = threshold(Array.from(z, (v) => Math.abs(silu(gateSigma[i]! * v))));
        }
        extra.push(f32Tensor(contractNames.gateTau(il), tau));
      }
      for (const proj of methodLayout.inputTau) {
        const samples = await inputSamples(file, il, proj, { attnNorm, ffnNorm, gateSigma, z, z2 });
        extra.push(f32Tensor(contractNames.inputTau(il, proj), Float32Array.of(threshold(samples))));
      }
    }

    const inputSparse = new Set(methodLayout.transposed);
    const tensors: GGUFWriteTensor[] = rowTensors(file, nLayer, denseType).map((t) => {
      const match = /^blk\.(\d+)\.([a-z_]+)\.weight$/.exec(t.name);
      const proj = match?.[2] as Projection | undefined;
      if (proj === undefined || !inputSparse.has(proj)) return t;
      if (layout === 'column-blocks') return columnBlockTensor(t, contractNames.columnBlocks(Number(match![1]), proj));
      return transposedTensor(file, file.tensor(t.name)!, contractNames.transposed(Number(match![1]), proj), type);
    });

    const metadata: Array<[string, GGUFValue]> = [];
    for (const [k, v] of file.metadata) {
      if (k === 'general.architecture') metadata.push([k, ggufValue.string(SPARSE_GGUF.architecture)]);
      else if (k === 'llama.block_count') metadata.push([k, ggufValue.u32(nLayer)]);
      else metadata.push([k, v]);
    }
    const keys = SPARSE_GGUF.keys;
    metadata.push(
      [keys.baseArchitecture, ggufValue.string(arch)],
      // docs/gguf-sparse.md §2: 2 when any column-block tensor is present
      [keys.formatVersion, ggufValue.u32(SPARSE_GGUF.layouts[layout].formatVersion)],
      [keys.method, ggufValue.string(options.method)],
      [keys.statistic, ggufValue.string(NO_STATISTIC)],
      [keys.targetSparsity, ggufValue.f32(sparsity)],
      [keys.calibrationSource, ggufValue.string('synthetic')],
      [keys.calibrationTokens, ggufValue.u64(0)],
      [keys.calibrationSeed, ggufValue.u64(seed)],
      [keys.tool, ggufValue.string(`chess-toolchain test-models ${RECIPE_VERSION}`)],
    );
    await writeGGUF(out, { metadata, tensors: [...tensors, ...extra] });
    return out;
  } finally {
    await file.close();
  }
}

/**
 * The dense twin of a sparse test model: the same tensors (first `layers` blocks, the
 * projections, token embedding and output matrix re-encoded in `denseType` when given)
 * in the row layout, no thresholds, architecture `llama`: what stock llama.cpp (and the
 * patched build's dense path) run. A column-block test model computes this model's
 * function at sparsity 0.
 */
export async function makeDenseTwin(options: { source: string; denseType?: GGMLType; layers?: number; out?: string; log?: (line: string) => void }): Promise<string> {
  const { denseType, layers } = options;
  const key = createHash('sha256').update(JSON.stringify({ RECIPE_VERSION, twin: true, denseType, layers, source: basename(options.source) })).digest('hex').slice(0, 12);
  const tag = (denseType === undefined ? '' : `.dense-${ggmlTypeName(denseType)}`) + (layers === undefined ? '' : `.l${layers}`);
  const out = options.out ?? cachePath('test-models', `${basename(options.source, '.gguf')}.twin${tag}.${key}.gguf`);
  if (options.out === undefined && existsSync(out)) return out;
  const file = await openGGUF(options.source);
  try {
    options.log?.(`writing the dense twin of ${options.source} to ${out}`);
    const sourceLayers = file.metadata.getNumber('llama.block_count');
    const nLayer = Math.min(layers ?? sourceLayers, sourceLayers);
    const metadata: Array<[string, GGUFValue]> = [...file.metadata].map(([k, v]) => (k === 'llama.block_count' ? [k, ggufValue.u32(nLayer)] : [k, v]));
    await writeGGUF(out, { metadata, tensors: rowTensors(file, nLayer, denseType) });
    return out;
  } finally {
    await file.close();
  }
}

/** The tensors of the first `nLayer` blocks (and the rest), projections / embedding / output re-encoded in `denseType` when given. */
function rowTensors(file: GGUFFile, nLayer: number, denseType: GGMLType | undefined): GGUFWriteTensor[] {
  return file.tensors
    .filter((t) => {
      const block = /^blk\.(\d+)\./.exec(t.name);
      return !block || Number(block[1]) < nLayer;
    })
    .map((t) => {
      const proj = /^blk\.\d+\.([a-z_]+)\.weight$/.exec(t.name)?.[1];
      const retyped = (proj !== undefined && (PROJECTIONS as readonly string[]).includes(proj)) || t.name === 'token_embd.weight' || t.name === 'output.weight';
      if (retyped && denseType !== undefined) return retypedTensor(file, t, denseType);
      return { name: t.name, shape: t.shape, type: t.type, byteLength: t.byteLength, data: () => file.tensorChunks(t) };
    });
}

/** A row-layout weight re-arranged into the column-block layout (§3.1): same type, shape and bytes. */
function columnBlockTensor(rows: GGUFWriteTensor, name: string): GGUFWriteTensor {
  const [nIn, nOut] = rows.shape as [number, number];
  const byteLength = ggmlRowBytes(rows.type, nIn) * nOut;
  return {
    name,
    shape: rows.shape,
    type: rows.type,
    byteLength,
    data: async () => columnBlocksFromRows(rows.type, await collect(rows.data(), byteLength), nIn, nOut, { name }),
  };
}

/** The whole of a tensor's data (a buffer or chunks) in one array. */
async function collect(data: ReturnType<GGUFWriteTensor['data']>, byteLength: number): Promise<Uint8Array> {
  const resolved = await data;
  if (resolved instanceof Uint8Array) return resolved;
  const out = new Uint8Array(byteLength);
  let offset = 0;
  for await (const chunk of resolved) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/**
 * A dense (stock-format) copy of a model with the projections, token embedding and output
 * matrix re-encoded in `type` (e.g. F32: no product quantizes its activations, so two
 * builds that round float operations differently can be compared tightly).
 */
export async function makeDenseTestModel(options: { source: string; type: GGMLType; out?: string; log?: (line: string) => void }): Promise<string> {
  const key = createHash('sha256').update(JSON.stringify({ RECIPE_VERSION, dense: options.type, source: basename(options.source) })).digest('hex').slice(0, 12);
  const out = options.out ?? cachePath('test-models', `${basename(options.source, '.gguf')}.dense-${ggmlTypeName(options.type)}.${key}.gguf`);
  if (options.out === undefined && existsSync(out)) return out;
  const file = await openGGUF(options.source);
  try {
    options.log?.(`writing dense ${ggmlTypeName(options.type)} copy of ${options.source} to ${out}`);
    const tensors = file.tensors.map((t): GGUFWriteTensor => {
      const proj = /^blk\.\d+\.([a-z_]+)\.weight$/.exec(t.name)?.[1];
      const retyped = (proj !== undefined && (PROJECTIONS as readonly string[]).includes(proj)) || t.name === 'token_embd.weight' || t.name === 'output.weight';
      if (retyped) return retypedTensor(file, t, options.type);
      return { name: t.name, shape: t.shape, type: t.type, byteLength: t.byteLength, data: () => file.tensorChunks(t) };
    });
    await writeGGUF(out, { metadata: [...file.metadata], tensors });
    return out;
  } finally {
    await file.close();
  }
}

function f32Tensor(name: string, values: Float32Array): GGUFWriteTensor {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return { name, shape: [values.length], type: GGMLType.F32, byteLength: bytes.byteLength, data: async () => bytes };
}

/** The tensor transposed: shape [n_in, n_out] becomes [n_out, n_in], quantized along n_out. */
function transposedTensor(file: GGUFFile, t: GGUFTensorInfo, name: string, type: GGMLType): GGUFWriteTensor {
  const [nIn, nOut] = t.shape as [number, number];
  const traits = GGML_TYPE_TRAITS.get(type);
  if (!traits || nOut % traits.blockSize !== 0) {
    throw new ChessError('TEST_MODEL_BAD_OPTION', `${t.name}: ${ggmlTypeName(type)} needs n_out (${nOut}) to be a multiple of its block size`, {
      tensor: t.name,
    });
  }
  const byteLength = (nIn * nOut * traits.typeSize) / traits.blockSize;
  return {
    name,
    shape: [nOut, nIn],
    type,
    byteLength,
    data: async () => {
      const w = dequantize(t.type, await file.readTensorData(t), t.elementCount); // nOut rows of nIn
      const wt = new Float32Array(nIn * nOut); // nIn rows of nOut
      for (let o = 0; o < nOut; o++) for (let i = 0; i < nIn; i++) wt[i * nOut + o] = w[o * nIn + i]!;
      return type === GGMLType.F32 ? new Uint8Array(wt.buffer) : quantize(type, wt);
    },
  };
}

/** The tensor in the same layout, re-encoded in another type. */
function retypedTensor(file: GGUFFile, t: GGUFTensorInfo, type: GGMLType): GGUFWriteTensor {
  const traits = GGML_TYPE_TRAITS.get(type)!;
  return {
    name: t.name,
    shape: t.shape,
    type,
    byteLength: (t.elementCount * traits.typeSize) / traits.blockSize,
    data: async () => {
      const w = dequantize(t.type, await file.readTensorData(t), t.elementCount);
      return type === GGMLType.F32 ? new Uint8Array(w.buffer, w.byteOffset, w.byteLength) : quantize(type, w);
    },
  };
}

async function readF32(file: GGUFFile, name: string): Promise<Float32Array> {
  const t = file.tensor(name);
  if (!t) throw new ChessError('TEST_MODEL_BAD_SOURCE', `${file.path}: tensor ${name} missing`, { name });
  return dequantize(t.type, await file.readTensorData(t), t.elementCount);
}

/** Per output row i of a [n_in, n_out] weight: sqrt(sum_j (W_ij * scale_j)^2). */
async function rowNorms(file: GGUFFile, name: string, scale: Float32Array): Promise<Float64Array> {
  const t = file.tensor(name);
  if (!t) throw new ChessError('TEST_MODEL_BAD_SOURCE', `${file.path}: tensor ${name} missing`, { name });
  const [nIn, nOut] = t.shape as [number, number];
  const w = await readF32(file, name);
  const norms = new Float64Array(nOut);
  for (let o = 0; o < nOut; o++) {
    let sum = 0;
    for (let i = 0; i < nIn; i++) {
      const v = w[o * nIn + i]! * scale[i]!;
      sum += v * v;
    }
    norms[o] = Math.sqrt(sum);
  }
  return norms;
}

/** Synthetic samples of the input of a projection (absolute values). */
async function inputSamples(
  file: GGUFFile,
  il: number,
  proj: Projection,
  ctx: { attnNorm: Float32Array; ffnNorm: Float32Array; gateSigma: Float64Array; z: Float64Array; z2: Float64Array },
): Promise<number[]> {
  const { attnNorm, ffnNorm, gateSigma, z, z2 } = ctx;
  const out: number[] = [];
  const scaled = (scale: ArrayLike<number>, factor = 1): void => {
    for (let j = 0; j < scale.length; j++) out.push(Math.abs(scale[j]! * factor * z[j % z.length]!));
  };
  switch (proj) {
    case 'attn_q':
    case 'attn_k':
    case 'attn_v':
      scaled(attnNorm);
      break;
    case 'ffn_gate':
    case 'ffn_up':
      scaled(ffnNorm);
      break;
    case 'attn_output': {
      // the attention output mixes value rows: elements ~ N(0, sigma_v^2) shrunk by the averaging
      const sigmaV = await rowNorms(file, `blk.${il}.attn_v.weight`, attnNorm);
      scaled(sigmaV, 0.6);
      break;
    }
    case 'ffn_down': {
      const sigmaU = await rowNorms(file, `blk.${il}.ffn_up.weight`, ffnNorm);
      for (let i = 0; i < gateSigma.length; i++) {
        const k = i % z.length;
        out.push(Math.abs(silu(gateSigma[i]! * z[k]!) * sigmaU[i]! * z2[k]!));
      }
      break;
    }
  }
  return out;
}

function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** The q-quantile (linear interpolation) of the values. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Seeded standard normal draws (mulberry32 + Box-Muller). */
function normalSampler(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

