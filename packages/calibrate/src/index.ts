export * from './profile.ts';
export { sha256OfFile } from './hash.ts';
export {
  calibrate,
  calibrationWindows,
  measureSparse,
  sparseRefiner,
  DEFAULT_REFINE_TOKENS,
  type SparseRefinerOptions,
  windowStarts,
  type CalibrationWindows,
  type MeasureSparseOptions,
  validateCalibrateOptions,
  defaultThreads,
  DEFAULT_CALIBRATION_TOKENS,
  DEFAULT_WINDOW_TOKENS,
  DEFAULT_SEED,
  type CalibrateOptions,
  type CalibrationProgress,
} from './calibrate.ts';
export { loadBrownCorpus, loadTextFile, brownFileToText, splitDocuments, seededShuffle, detokenize, stripTag, type CalibrationText } from './text.ts';
export { ensureProfileTool, type ProfileTool } from './native.ts';
