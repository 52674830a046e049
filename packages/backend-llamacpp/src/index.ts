export { ensureLlamaSource, llamaCppBundlePath, nodeLlamaCppDir, LLAMA_CPP_COMMIT } from '@chess/assets';
export { buildBackend, backendPath, backendStatus, backendHash, BACKEND_TOOLS } from './build.ts';
export type { BackendBuildOptions, BackendInfo, BackendStatus } from './build.ts';
export { ensurePatchedToolAt } from './patched-tools-x86.ts';
export { ensureStockTool, stockToolsDir, type StockTool } from './stock-tools.ts';
export { X86_LEVELS, chessKernelIsa, ggmlIsaFlags, hostX86Level, llamaToolBuildFlags, parseX86Level, x86LevelOfCpuFlags } from './x86-level.ts';
export type { X86Level } from './x86-level.ts';
export { loadStockLlama, loadPatchedLlama, llamaBinaryInfo, formatLlamaBinary, mappedLlamaFiles } from './llama-loaders.ts';
export type { LlamaBinaryInfo, LlamaFlavour, LoadOptions } from './llama-loaders.ts';
