export { ensureLlamaSource, llamaCppBundlePath, nodeLlamaCppDir, LLAMA_CPP_COMMIT } from './source.ts';
