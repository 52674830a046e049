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
  // decoded messages: protobufjs fills every repeated and scalar field (the class types)
  type ModelProto = Omit<O.ModelProto, 'graph'> & { graph: GraphProto | null };
  type GraphProto = Omit<O.GraphProto, 'node' | 'initializer' | 'input' | 'output'> & {
    node: INodeProto[];
    initializer: ITensorProto[];
    input: O.ValueInfoProto[];
    output: O.ValueInfoProto[];
  };
  type INodeProto = Omit<O.NodeProto, 'attribute'> & { attribute: O.AttributeProto[] };
  type ITensorProto = O.TensorProto;
}
