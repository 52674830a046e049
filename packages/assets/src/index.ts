export { DEFAULT_MODEL } from './default-model.ts';
export { defaultModelPath, fetchDefaultModel, verifyDefaultModel, modelCacheDir, sha256File, type FetchOptions } from './fetch.ts';
export { ensureLlamaSource, llamaCppBundlePath, nodeLlamaCppDir, LLAMA_CPP_COMMIT } from './llama-source.ts';
