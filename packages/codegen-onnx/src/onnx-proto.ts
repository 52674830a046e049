/**
 * The ONNX protobuf messages (npm `onnx-proto`: protobufjs static code of
 * onnx.proto). A CommonJS module: loaded through createRequire; the types of
 * its declaration file are re-exported under the same name.
 */
import { createRequire } from 'node:module';
import type { onnx as O } from 'onnx-proto';

const require = createRequire(import.meta.url);

export const onnx: typeof O = (require('onnx-proto') as { onnx: typeof O }).onnx;

// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace onnx {
  type ModelProto = O.ModelProto;
  type GraphProto = O.GraphProto;
  type IModelProto = O.IModelProto;
  type INodeProto = O.INodeProto;
  type ITensorProto = O.ITensorProto;
  type IValueInfoProto = O.IValueInfoProto;
  type IAttributeProto = O.IAttributeProto;
}
