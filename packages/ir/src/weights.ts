/**
 * Weight bytes, wherever they live: a range of a source file or a buffer held
 * by a pass. The GGUF code generator streams every tensor through
 * `weightChunks`, so it never needs to know which kind it has.
 */
import { open } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { IrErrorCode, irError } from './errors.ts';
import type { Module, Weight, WeightData } from './module.ts';
import type { WeightResolver } from './interpreter.ts';
import { type DType, formatShape } from './types.ts';

export interface WeightChunkOptions {
  /** Directory that relative source paths are resolved against. Default: the working directory. */
  readonly baseDir?: string;
  /** Largest chunk yielded for file-backed weights. Default 4 MiB. */
  readonly chunkBytes?: number;
}

/** A weight whose bytes are held in memory (thresholds, transposed copies built by a pass). */
export function memoryWeight(name: string, dtype: DType, shape: readonly number[], data: WeightData, extra: { keep?: boolean } = {}): Weight {
  if (ArrayBuffer.isView(data) && (dtype === 'f32' || dtype === 'f64' || dtype === 'i32')) {
    const n = shape.reduce((a, b) => a * b, 1);
    const width = dtype === 'f64' ? 8 : 4;
    if (data.byteLength !== n * width) {
      throw irError(IrErrorCode.WEIGHT_BYTES, `memory weight @${name} ${dtype}${formatShape(shape)} needs ${n * width} bytes, got ${data.byteLength}`, { weight: name });
    }
  }
  return { name, dtype, shape: [...shape], source: { kind: 'memory', data }, ...extra };
}

/** Bytes of a weight as a stream of chunks, from its source file range or from memory. */
export async function* weightChunks(module: Module, weight: Weight | string, options: WeightChunkOptions = {}): AsyncGenerator<Uint8Array> {
  const w = typeof weight === 'string' ? module.weight(weight) : weight;
  if (!w) throw irError(IrErrorCode.WEIGHT_BYTES, `weight @${String(weight)} is not in the weight table`, { weight });
  const source = w.source;
  if (source.kind === 'memory') {
    if (source.data === undefined) {
      throw irError(IrErrorCode.WEIGHT_DETACHED, `weight @${w.name} is a memory weight without data (read back from text?); the pass that made it must attach its data`, {
        weight: w.name,
      });
    }
    const view = typeof source.data === 'function' ? await source.data() : source.data;
    yield new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    return;
  }
  const path = module.sources.get(source.file);
  if (path === undefined) throw irError(IrErrorCode.WEIGHT_SOURCE_UNKNOWN, `weight @${w.name} points into source '${source.file}', which the module does not declare`, { weight: w.name });
  if (source.offset === undefined || source.byteLength === undefined) {
    throw irError(IrErrorCode.WEIGHT_BYTES, `weight @${w.name} has no byte range in '${path}' (offset and bytes are set by the importer)`, { weight: w.name });
  }
  const file = isAbsolute(path) ? path : resolve(options.baseDir ?? process.cwd(), path);
  const chunk = options.chunkBytes ?? 4 << 20;
  const handle = await open(file, 'r');
  try {
    let done = 0;
    while (done < source.byteLength) {
      const buf = new Uint8Array(Math.min(chunk, source.byteLength - done));
      const { bytesRead } = await handle.read(buf, 0, buf.byteLength, source.offset + done);
      if (bytesRead === 0) {
        throw irError(IrErrorCode.WEIGHT_BYTES, `weight @${w.name}: '${file}' ends at ${source.offset + done}, expected ${source.byteLength} bytes from offset ${source.offset}`, {
          weight: w.name,
          file,
        });
      }
      done += bytesRead;
      yield bytesRead === buf.byteLength ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

/** All bytes of a weight in one buffer (small tensors, tests). */
export async function weightBytes(module: Module, weight: Weight | string, options: WeightChunkOptions = {}): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of weightChunks(module, weight, options)) parts.push(c);
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.byteLength);
  return out;
}

/**
 * A resolver for the interpreter that serves f32/f64 memory weights (held as
 * Float32Array / Float64Array, or produced synchronously) and asks `fallback`
 * for everything else.
 */
export function withMemoryWeights(module: Module, fallback: WeightResolver): WeightResolver {
  return (name) => {
    const w = module.weight(name);
    if (w?.source.kind === 'memory' && w.source.data !== undefined) {
      const data = typeof w.source.data === 'function' ? w.source.data() : w.source.data;
      if (data instanceof Float32Array || data instanceof Float64Array) return data;
    }
    return fallback(name);
  };
}
