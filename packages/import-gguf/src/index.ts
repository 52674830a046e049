export { importGGUF, moduleFromGGUF, MODEL_SOURCE_ID, type ImportResult } from './import.ts';
export { ARCHITECTURES, supportedArchitectures, architectureSpec, readLlamaHParams, type ArchitectureSpec } from './architectures.ts';
export { metaEntryFromGGUF, metaTypeOf, META_TYPE_NAME } from './gguf-meta.ts';
