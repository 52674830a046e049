import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { LLAMA_CPP_COMMIT } from '@chess/assets';
import { cachePath, withCacheLock } from '@chess/core';
import { openGGUF } from '@chess/gguf';
import { canonicalShape, type ModelShape } from './shapes.ts';
import { SYNTH_VERSION } from './synth.ts';
import { synthFileType, synthesize, type SynthesizeOptions, type SynthTarget } from './synth-target.ts';

/**
 * Synthetic models are cached by what determines their bytes: the shape's hyperparameters,
 * the target type, the seed, the generator's version and, for llama-quantize mixes, the
 * llama.cpp commit whose recipe made them. A 7B Q4_K_M takes minutes to make; a second
 * request is a file lookup.
 */
export function synthCacheName(shape: ModelShape, target: SynthTarget, seed: number): string {
  const hash = createHash('sha256').update(canonicalShape(shape)).digest('hex').slice(0, 10);
  const recipe = target.kind === 'quantized' ? `.llama-${LLAMA_CPP_COMMIT.slice(0, 7)}` : '';
  const label = shape.name.replace(/[^A-Za-z0-9_-]/g, '_');
  return `${label}-${hash}.${target.name}.seed${seed}.synth${SYNTH_VERSION}${recipe}.gguf`;
}

export function synthCachePath(shape: ModelShape, target: SynthTarget, seed: number): string {
  return cachePath('synth-models', synthCacheName(shape, target, seed));
}

export type EnsureSynthOptions = Omit<SynthesizeOptions, 'out'> & { log?: (line: string) => void };

/** The cached model for (shape, target, seed), synthesized first if absent; one process makes it, others wait. */
export async function ensureSynthModel(options: EnsureSynthOptions): Promise<{ path: string; cached: boolean }> {
  const seed = options.seed ?? 0;
  const path = synthCachePath(options.shape, options.target, seed);
  if (existsSync(path)) return { path, cached: true };
  return withCacheLock(path, { what: `the synthetic ${options.shape.name} ${options.target.name} model`, waitMs: 120 * 60_000, log: options.log }, async () => {
    if (existsSync(path)) return { path, cached: true }; // made by the process we waited for
    options.log?.(`synthesizing ${options.shape.name} ${options.target.name} (seed ${seed}) into ${path}`);
    await synthesize({ ...options, seed, out: path });
    return { path, cached: false };
  });
}

/**
 * Whether `path` already holds the model (shape, target, seed) of this generator version:
 * its `chess.synthetic.*` keys and `general.file_type` say so (a llama-quantize output keeps
 * the F16 synth's keys). False for any other or unreadable file.
 */
export async function synthUpToDate(path: string, shape: ModelShape, target: SynthTarget, seed: number): Promise<boolean> {
  if (!existsSync(path)) return false;
  let file;
  try {
    file = await openGGUF(path);
  } catch {
    return false;
  }
  try {
    const m = file.metadata;
    const has = (key: string) => m.has(key);
    return (
      has('chess.synthetic.shape') &&
      has('chess.synthetic.seed') &&
      has('chess.synthetic.version') &&
      has('general.file_type') &&
      m.getString('chess.synthetic.shape') === canonicalShape(shape) &&
      m.getNumber('chess.synthetic.seed') === seed &&
      m.getNumber('chess.synthetic.version') === SYNTH_VERSION &&
      m.getNumber('general.file_type') === synthFileType(target)
    );
  } catch {
    return false;
  } finally {
    await file.close();
  }
}
