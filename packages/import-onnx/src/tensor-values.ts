/** The values of an ONNX tensor (initializer or constant), read when needed. */
import { open } from 'node:fs/promises';
import { ChessError } from '@chess/core';
import { bf16ToFp32 as bf16ToF32, fp16ToFp32 as f16ToF32 } from '@chess/gguf';
import { elementTypeName, type OnnxFile, type TensorData } from './onnx-file.ts';
import { onnx } from './onnx-proto.ts';

const DT = onnx.TensorProto.DataType;

export async function tensorBytes(file: OnnxFile, t: TensorData): Promise<Uint8Array> {
  if (t.inline) return t.inline;
  if (t.file === file.path) return new Uint8Array(file.bytes.buffer, file.bytes.byteOffset + t.offset, t.byteLength);
  const handle = await open(t.file, 'r');
  try {
    const buf = new Uint8Array(t.byteLength);
    const { bytesRead } = await handle.read(buf, 0, t.byteLength, t.offset);
    if (bytesRead !== t.byteLength) {
      throw new ChessError('ONNX_EXTERNAL_DATA', `${file.path}: initializer '${t.name}': '${t.file}' ends before byte ${t.offset + t.byteLength}`, { path: file.path, initializer: t.name });
    }
    return buf;
  } finally {
    await handle.close();
  }
}

/** Float values (float, float16, bfloat16, double) as float32. */
export async function floatValues(file: OnnxFile, t: TensorData): Promise<Float32Array> {
  if (t.values) {
    if (t.dataType === DT.FLOAT16) return Float32Array.from(t.values, (b) => f16ToF32(b));
    if (t.dataType === DT.BFLOAT16) return Float32Array.from(t.values, (b) => bf16ToF32(b));
    return Float32Array.from(t.values);
  }
  const bytes = await tensorBytes(file, t);
  const n = t.dims.reduce((a, b) => a * b, 1);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  switch (t.dataType) {
    case DT.FLOAT:
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    case DT.DOUBLE:
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    case DT.FLOAT16:
      for (let i = 0; i < n; i++) out[i] = f16ToF32(view.getUint16(i * 2, true));
      return out;
    case DT.BFLOAT16:
      for (let i = 0; i < n; i++) out[i] = bf16ToF32(view.getUint16(i * 2, true));
      return out;
    default:
      throw new ChessError('ONNX_DTYPE', `${file.path}: '${t.name}' has element type ${elementTypeName(t.dataType)} where float weights were expected`, { path: file.path, initializer: t.name });
  }
}

/** Integer values (int64, int32) as numbers (shape constants, axes). */
export async function intValues(file: OnnxFile, t: TensorData): Promise<number[]> {
  if (t.values) return t.values.map(Number);
  const bytes = await tensorBytes(file, t);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (t.dataType === DT.INT64) return Array.from({ length: n }, (_, i) => Number(view.getBigInt64(i * 8, true)));
  if (t.dataType === DT.INT32) return Array.from({ length: n }, (_, i) => view.getInt32(i * 4, true));
  throw new ChessError('ONNX_DTYPE', `${file.path}: '${t.name}' has element type ${elementTypeName(t.dataType)} where integers were expected`, { path: file.path, initializer: t.name });
}
