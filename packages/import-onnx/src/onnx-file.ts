/**
 * An ONNX file read for import: the decoded ModelProto, its initializers as
 * byte ranges (inside the file, or in an external data file: ONNX's
 * `location`/`offset`/`length` entries, resolved next to the model), and
 * Constant nodes' values. Every node input is checked to be defined.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, relative } from 'node:path';
import { ChessError } from '@chess/core';
import { onnx } from './onnx-proto.ts';

const DT = onnx.TensorProto.DataType;

/** ONNX tensor element types the importer reads, with their byte widths. */
export const ELEMENT_TYPES: Readonly<Record<number, { name: string; bytes: number }>> = {
  [DT.FLOAT]: { name: 'float', bytes: 4 },
  [DT.FLOAT16]: { name: 'float16', bytes: 2 },
  [DT.BFLOAT16]: { name: 'bfloat16', bytes: 2 },
  [DT.DOUBLE]: { name: 'double', bytes: 8 },
  [DT.INT64]: { name: 'int64', bytes: 8 },
  [DT.INT32]: { name: 'int32', bytes: 4 },
  [DT.BOOL]: { name: 'bool', bytes: 1 },
  [DT.INT8]: { name: 'int8', bytes: 1 },
  [DT.UINT8]: { name: 'uint8', bytes: 1 },
};

export function elementTypeName(t: number): string {
  return ELEMENT_TYPES[t]?.name ?? (DT[t] as string | undefined)?.toLowerCase() ?? `type ${t}`;
}

/** Where an initializer's bytes are. */
export interface TensorData {
  readonly name: string;
  readonly dims: readonly number[];
  readonly dataType: number;
  /** Absolute path of the file holding the bytes (the model, or its external data file). */
  readonly file: string;
  readonly offset: number;
  readonly byteLength: number;
  /** Values given in typed fields (floatData, int64Data ...; 16-bit floats as their bits), not as bytes. */
  readonly values?: readonly number[];
  /** Bytes held in memory (a decoder that copied them). */
  readonly inline?: Uint8Array;
}

export interface OnnxFile {
  readonly path: string;
  readonly model: onnx.ModelProto;
  readonly graph: onnx.GraphProto;
  readonly opset: number;
  readonly initializers: ReadonlyMap<string, TensorData>;
  /** Outputs of Constant nodes, by value name. */
  readonly constants: ReadonlyMap<string, TensorData>;
  readonly inputs: ReadonlySet<string>;
  /** The file's bytes (initializer ranges inside the model point into it). */
  readonly bytes: Buffer;
}

export function nodeLabel(node: onnx.INodeProto): string {
  return `node '${node.name || node.output?.[0] || '?'}' (${node.opType})`;
}

export async function readOnnxFile(path: string): Promise<OnnxFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new ChessError('ONNX_READ', `${path}: cannot read the ONNX file: ${(error as Error).message}`, { path }, { cause: error });
  }
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes) as unknown as onnx.ModelProto;
  } catch (error) {
    throw new ChessError('ONNX_PARSE', `${path}: not a valid ONNX protobuf (ModelProto): ${(error as Error).message}`, { path }, { cause: error });
  }
  const graph = model.graph;
  if (!graph || graph.node.length === 0) throw new ChessError('ONNX_PARSE', `${path}: the ModelProto has no graph nodes (not an ONNX model, or empty)`, { path });
  const opsetEntry = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  const opset = opsetEntry ? Number(opsetEntry.version) : 0;
  if (opset < 13) throw new ChessError('ONNX_OPSET', `${path}: opset ${opset} of the standard domain; the importer reads opsets 13 and later`, { path, opset });

  const dir = dirname(path);
  const initializers = new Map<string, TensorData>();
  for (const t of graph.initializer) initializers.set(t.name, await tensorData(t, path, dir, bytes, `initializer '${t.name}'`));
  const constants = new Map<string, TensorData>();
  for (const node of graph.node) {
    if (node.opType !== 'Constant') continue;
    const value = node.attribute.find((a) => a.name === 'value');
    if (value?.t) constants.set(node.output[0]!, await tensorData(value.t as onnx.ITensorProto, path, dir, bytes, `${nodeLabel(node)} value`));
    const vf = node.attribute.find((a) => a.name === 'value_float' || a.name === 'value_int' || a.name === 'value_ints' || a.name === 'value_floats');
    if (vf) {
      const vals = vf.name === 'value_float' ? [vf.f] : vf.name === 'value_int' ? [Number(vf.i)] : vf.name === 'value_ints' ? vf.ints.map(Number) : [...vf.floats];
      constants.set(node.output[0]!, { name: node.output[0]!, dims: vf.name.endsWith('s') ? [vals.length] : [], dataType: vf.name.includes('float') ? DT.FLOAT : DT.INT64, file: path, offset: 0, byteLength: 0, values: vals });
    }
  }
  const inputs = new Set(graph.input.map((i) => i.name));
  // every node input must be defined: a graph input, an initializer, or an earlier node's output
  const defined = new Set<string>([...inputs, ...initializers.keys()]);
  for (const node of graph.node) {
    node.input.forEach((name, i) => {
      if (name === '' || defined.has(name)) return;
      throw new ChessError(
        'ONNX_DANGLING_INPUT',
        `${path}: ${nodeLabel(node)} input ${i} '${name}' is neither a graph input, an initializer, nor the output of an earlier node (a missing initializer or a dangling edge)`,
        { path, node: node.name, input: name },
      );
    });
    for (const o of node.output) defined.add(o);
  }
  for (const o of graph.output) {
    if (!defined.has(o.name)) throw new ChessError('ONNX_DANGLING_INPUT', `${path}: graph output '${o.name}' is produced by no node`, { path, output: o.name });
  }
  return { path, model, graph, opset, initializers, constants, inputs, bytes };
}

async function tensorData(t: onnx.ITensorProto, path: string, dir: string, bytes: Buffer, what: string): Promise<TensorData> {
  const name = t.name ?? '';
  const dims = (t.dims ?? []).map(Number);
  const dataType = t.dataType ?? 0;
  const count = dims.reduce((a, b) => a * b, 1);
  const width = ELEMENT_TYPES[dataType]?.bytes;
  if (width === undefined) {
    throw new ChessError('ONNX_DTYPE', `${path}: ${what} has element type ${elementTypeName(dataType)}; the importer reads ${Object.values(ELEMENT_TYPES).map((e) => e.name).join(', ')}`, { path, initializer: name, dataType });
  }
  const expected = count * width;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const entry = (key: string) => t.externalData?.find((e) => e.key === key)?.value ?? undefined;
    const location = entry('location');
    if (!location) throw new ChessError('ONNX_EXTERNAL_DATA', `${path}: ${what} is stored externally but names no location`, { path, initializer: name });
    const file = normalize(join(dir, location));
    if (isAbsolute(location) || relative(dir, file).startsWith('..')) {
      throw new ChessError('ONNX_EXTERNAL_DATA', `${path}: ${what}: external data location '${location}' is outside the model's directory`, { path, initializer: name, location });
    }
    const offset = Number(entry('offset') ?? 0);
    const length = Number(entry('length') ?? expected);
    if (length !== expected) {
      throw new ChessError('ONNX_EXTERNAL_DATA', `${path}: ${what} ${elementTypeName(dataType)}[${dims.join(', ')}] needs ${expected} bytes, its external data entry says ${length}`, { path, initializer: name });
    }
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch {
      throw new ChessError('ONNX_EXTERNAL_DATA', `${path}: ${what}: external data file '${file}' is missing`, { path, initializer: name, file });
    }
    if (offset + length > size) {
      throw new ChessError('ONNX_EXTERNAL_DATA', `${path}: ${what}: external data file '${file}' has ${size} bytes, the tensor needs bytes ${offset}..${offset + length}`, { path, initializer: name, file, size });
    }
    return { name, dims, dataType, file, offset, byteLength: length };
  }
  const raw = t.rawData;
  if (raw && raw.byteLength > 0) {
    if (raw.byteLength !== expected) {
      throw new ChessError('ONNX_INITIALIZER_SIZE', `${path}: ${what} ${elementTypeName(dataType)}[${dims.join(', ')}] needs ${expected} bytes, holds ${raw.byteLength}`, { path, initializer: name });
    }
    // protobufjs decodes bytes of a Buffer as views into it: the offset in the file
    if (raw.buffer === bytes.buffer) return { name, dims, dataType, file: path, offset: raw.byteOffset - bytes.byteOffset, byteLength: raw.byteLength };
    return { name, dims, dataType, file: path, offset: -1, byteLength: raw.byteLength, inline: Uint8Array.from(raw) };
  }
  const typed = t.floatData?.length ? t.floatData : t.int64Data?.length ? t.int64Data.map(Number) : t.int32Data?.length ? t.int32Data : t.doubleData?.length ? t.doubleData : [];
  if (typed.length !== count && !(count === 0)) {
    if (typed.length === 0 && count > 0) {
      throw new ChessError('ONNX_INITIALIZER_SIZE', `${path}: ${what} ${elementTypeName(dataType)}[${dims.join(', ')}] has no data (needs ${count} values)`, { path, initializer: name });
    }
    throw new ChessError('ONNX_INITIALIZER_SIZE', `${path}: ${what} holds ${typed.length} values, its shape [${dims.join(', ')}] needs ${count}`, { path, initializer: name });
  }
  return { name, dims, dataType, file: path, offset: -1, byteLength: 0, values: typed.map(Number) };
}
