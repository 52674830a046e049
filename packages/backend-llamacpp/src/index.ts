export { ensureLlamaSource, llamaCppBundlePath, nodeLlamaCppDir, LLAMA_CPP_COMMIT } from '@chess/assets';
export { buildBackend, backendPath, backendStatus, backendHash, BACKEND_TOOLS } from './build.ts';
export type { BackendBuildOptions, BackendInfo, BackendStatus } from './build.ts';
export { loadStockLlama, loadPatchedLlama, llamaBinaryInfo, formatLlamaBinary, mappedLlamaFiles } from './llama-loaders.ts';
export type { LlamaBinaryInfo, LlamaFlavour, LoadOptions } from './llama-loaders.ts';
