export * from './types.ts';
export { GGUFError, isGGUFError, type GGUFErrorCode, type GGUFErrorDetails } from './errors.ts';
export { DEFAULT_GGUF_LIMITS, resolveLimits, type GGUFLimits } from './limits.ts';
export {
  GGUFMetadata,
  ggufValue,
  valueTypeName,
  TYPED_ARRAY_OF,
  isTypedArrayItemType,
  type GGUFValue,
  type GGUFScalar,
  type GGUFScalarOf,
  type GGUFScalarType,
  type GGUFArray,
  type GGUFArrayOf,
  type GGUFArrayItemType,
} from './metadata.ts';
export { GGUF_ALIGNMENT_KEY, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, SUPPORTED_GGUF_VERSIONS } from './format.ts';
export { alignUp, type GGUFTensorInfo } from './tensor.ts';
export { parseGGUFHeader, type GGUFHeader } from './header.ts';
export { openGGUF, type GGUFFile, type OpenGGUFOptions } from './reader.ts';
export { writeGGUF, type GGUFWriteSpec, type GGUFWriteTensor, type GGUFTensorSource } from './writer.ts';
export { GGUFByteWriter } from './byte-writer.ts';
export * from './codecs/index.ts';
export {
  checkColumnBlocks,
  columnBlockSupported,
  columnBlocksFromRows,
  rowsFromColumnBlocks,
  type ColumnBlockOptions,
  type LayoutErrorCode,
} from './layouts/column-blocks.ts';
export { assertSparseContract, checkSparseFile, isSparseGGUF } from './sparse-contract.ts';
