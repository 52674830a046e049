export { buildOnnxModel, exportOnnx, ONNX_OPSET, EMBEDDED_LIMIT_BYTES, type ExportOnnxOptions, type ExportOnnxResult } from './export.ts';
export { dequantizedWeight, type DequantizeOptions } from './weights.ts';
export { GraphBuilder } from './graph-builder.ts';
export { onnx } from './onnx-proto.ts';
export { importDenseOrSparseGGUF, type GGUFModule } from './sparse-gguf.ts';
