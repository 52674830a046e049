export { DEFAULT_MODEL } from './default-model.ts';
export { fetchDefaultModel, verifyDefaultModel, modelCacheDir, sha256File, type FetchOptions } from './fetch.ts';
