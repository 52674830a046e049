/**
 * File to file: import a dense GGUF, run the CHESS pass with a calibration
 * profile, emit the sparse GGUF (atomically, streaming; transposed weights are
 * produced one at a time while they are written).
 */
import { type EmitResult, emitGGUF } from '@chess/codegen-gguf';
import { GGML_TYPE_TRAITS, ggmlTypeFromName } from '@chess/gguf';
import { importGGUF } from '@chess/import-gguf';
import type { DType, Module, StepReport } from '@chess/ir';
import { type ApplyChessOptions, applyChess, checkModule } from './passes.ts';
import { type ThresholdProfile, type Thresholds, checkThresholdOptions } from './thresholds.ts';

export interface TransformOptions extends ApplyChessOptions {
  /** Dense source GGUF. */
  readonly model: string;
  /** Output sparse GGUF (written atomically). */
  readonly out: string;
  /**
   * The calibration profile, or a function producing it (called only after
   * every check on the options and the model passed: calibration is the
   * expensive part, so it runs last).
   */
  readonly profile: ThresholdProfile | (() => Promise<ThresholdProfile>);
  /** Bytes written so far, total bytes expected, tensor being written. */
  readonly progress?: (written: number, total: number, tensor: string) => void;
}

export interface TransformResult {
  readonly path: string;
  readonly thresholds: Thresholds;
  readonly reports: readonly StepReport[];
  readonly emit: EmitResult;
}

/** Bytes of a weight's data once written (from its dtype and shape). */
export function weightByteSize(dtype: DType, shape: readonly number[]): number {
  const traits = GGML_TYPE_TRAITS.get(ggmlTypeFromName(dtype)!);
  const n = shape.reduce((a, b) => a * b, 1);
  return traits ? (n / traits.blockSize) * traits.typeSize : 0;
}

export function moduleTensorBytes(module: Module): number {
  let total = 0;
  for (const w of module.weights.values()) total += weightByteSize(w.dtype, w.shape);
  return total;
}

export async function transformModel(options: TransformOptions): Promise<TransformResult> {
  checkThresholdOptions(options);
  const { module, file } = await importGGUF(options.model);
  try {
    checkModule(module, options);
    const profile = typeof options.profile === 'function' ? await options.profile() : options.profile;
    const { thresholds, reports } = applyChess(module, profile, options);
    const total = moduleTensorBytes(module);
    const emit = await emitGGUF(module, options.out, {
      ...(options.progress && { progress: (written: number, _total: number, tensor: string) => options.progress!(written, Math.max(total, written), tensor) }),
    });
    return { path: options.out, thresholds, reports, emit };
  } finally {
    await file.close();
  }
}
