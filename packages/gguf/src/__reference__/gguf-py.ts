/**
 * Test-only bridge to gguf-py (the independent reference): runs
 * gguf_py_dump.py and converts our parsed values to the same JSON shape.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensurePythonEnv } from '@chess/core';
import type { GGUFArray, GGUFValue } from '../metadata.ts';
import type { GGUFTensorInfo } from '../tensor.ts';
import { GGUFValueType } from '../types.ts';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('./gguf_py_dump.py', import.meta.url));

export type RefScalar = number | string | boolean;
export interface RefArray {
  itemType: number;
  items: (RefScalar | RefArray)[];
}
export type RefValue = ({ type: number } & RefArray) | { type: number; value: RefScalar };

export interface RefTensor {
  name: string;
  shape: number[];
  type: number;
  offset: number;
  fileOffset: number;
  byteLength: number;
  elementCount: number;
  sha256?: string;
}

export interface RefDump {
  version: number;
  alignment: number;
  dataOffset: number;
  metadata: [string, RefValue][];
  tensors: RefTensor[];
}

/** The header of `path` as gguf-py reads it (with each tensor's data sha256 if `hashData`). */
export async function ggufPyDump(path: string, options: { hashData?: boolean } = {}): Promise<RefDump> {
  const python = await ensurePythonEnv();
  const args = [SCRIPT, path, ...(options.hashData ? ['--hash-data'] : [])];
  const { stdout } = await run(python, args, { maxBuffer: 256 << 20 });
  return JSON.parse(stdout) as RefDump;
}

/** Our metadata in the reference's JSON encoding (64-bit ints and non-finite floats as strings). */
export function toRefMetadata(entries: Iterable<readonly [string, GGUFValue]>): [string, RefValue][] {
  return [...entries].map(([key, value]) => [key, toRefValue(value)]);
}

/** Our tensor infos in the reference's shape. */
export function toRefTensors(tensors: readonly GGUFTensorInfo[]): RefTensor[] {
  return tensors.map(({ name, shape, type, offset, fileOffset, byteLength, elementCount }) => ({
    name,
    shape: [...shape],
    type,
    offset,
    fileOffset,
    byteLength,
    elementCount,
  }));
}

function toRefValue(value: GGUFValue): RefValue {
  if (value.type === GGUFValueType.ARRAY) return { type: value.type, ...toRefArray(value) };
  return { type: value.type, value: toRefScalar(value.type, value.value) };
}

function toRefArray(array: GGUFArray): RefArray {
  const items: (RefScalar | RefArray)[] = [];
  for (const item of array.items as Iterable<number | bigint | string | boolean | GGUFArray>) {
    items.push(typeof item === 'object' ? toRefArray(item) : toRefScalar(array.itemType, item));
  }
  return { itemType: array.itemType, items };
}

function toRefScalar(type: GGUFValueType, value: number | bigint | string | boolean): RefScalar {
  if (typeof value === 'bigint') return value.toString();
  if ((type === GGUFValueType.FLOAT32 || type === GGUFValueType.FLOAT64) && typeof value === 'number' && !Number.isFinite(value)) {
    return Number.isNaN(value) ? 'nan' : value > 0 ? 'inf' : '-inf';
  }
  return value;
}
