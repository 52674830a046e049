export { DEFAULT_MODEL } from './default-model.ts';
export { fetchDefaultModel, verifyDefaultModel, modelCacheDir, sha256File, type FetchOptions } from './fetch.ts';
export { SHAPES, parseShape, type ModelShape } from './shapes.ts';
export { SYNTH_TYPES, parseSynthType, type SynthType } from './random-blocks.ts';
export { synthesizeModel, planTensors, type SynthOptions } from './synth.ts';
export { Xoshiro128 } from './prng.ts';
