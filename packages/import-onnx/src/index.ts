export { importOnnx, type ImportOnnxOptions, type ImportOnnxResult } from './import.ts';
export { matchDecoder, KNOWN_OPS, type DecoderMatch, type LayerMatch, type LinearMatch, type NormMatch } from './llama-pattern.ts';
export { readOnnxFile, type OnnxFile, type TensorData } from './onnx-file.ts';
export { GraphIndex } from './graph-index.ts';
