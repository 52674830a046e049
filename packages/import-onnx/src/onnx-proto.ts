/**
 * The ONNX protobuf messages (npm `onnx-proto`: protobufjs static code of
 * onnx.proto). A CommonJS module: loaded through createRequire so the types of
 * its declaration file apply.
 */
import { createRequire } from 'node:module';
import type { onnx as OnnxNamespace } from 'onnx-proto';

const require = createRequire(import.meta.url);

export const onnx: typeof OnnxNamespace = (require('onnx-proto') as { onnx: typeof OnnxNamespace }).onnx;
export type { OnnxNamespace };
