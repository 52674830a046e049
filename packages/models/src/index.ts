// Re-exported for convenience: acquisition lives in @chess/assets (no dependency on @chess/gguf).
export { DEFAULT_MODEL, fetchDefaultModel, verifyDefaultModel, modelCacheDir, sha256File, type FetchOptions } from '@chess/assets';
export { SHAPES, parseShape, canonicalShape, type ModelShape } from './shapes.ts';
export { SYNTH_TYPES, parseSynthType, type SynthType } from './random-blocks.ts';
export { synthesizeModel, planTensors, SYNTH_VERSION, type SynthOptions } from './synth.ts';
export { QUANTIZED_SYNTH_TYPES, parseSynthTarget, synthFileType, synthTargetNames, synthesize, type SynthTarget, type SynthesizeOptions } from './synth-target.ts';
export { ensureSynthModel, synthCacheName, synthCachePath, synthUpToDate, type EnsureSynthOptions } from './synth-cache.ts';
export { QUANTIZE_PRESETS, parseQuantizePreset, quantizeModel, type QuantizeOptions, type QuantizePreset } from './quantize.ts';
export { requantizedDefaultModel, type RequantizedOptions } from './requantized.ts';
export { Xoshiro128 } from './prng.ts';
