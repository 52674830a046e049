/**
 * The default model's weights dequantized by llama.cpp itself: stock
 * `llama-quantize --allow-requantize <Q4_1 file> <out> F32`, cached next to
 * the model sources (keyed by the source's size and name) and built under the
 * cache lock. An independent dequantization (ggml's to_float), and a file that
 * llama.cpp multiplies in float32, without quantizing activations.
 */
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { ChessError, cachePath, ensureCacheDir } from '@chess/core';

const run = promisify(execFile);

export async function ensureF32Twin(source: string, llamaQuantize: () => Promise<string>): Promise<string> {
  const name = basename(source).replace(/\.gguf$/, '');
  const dir = cachePath('onnx-f32-twins', `${name}-${statSync(source).size}`);
  await ensureCacheDir(dir, {
    what: `the F32 twin of ${name} (llama-quantize)`,
    complete: (d) => existsSync(join(d, 'model.f32.gguf')),
    build: async (tmp) => {
      const tool = await llamaQuantize();
      await mkdir(tmp, { recursive: true });
      try {
        await run(tool, ['--allow-requantize', source, join(tmp, 'model.f32.gguf'), 'F32', '2'], { maxBuffer: 64 << 20 });
      } catch (error) {
        throw new ChessError('QUANTIZE_FAILED', `llama-quantize ${source} to F32 failed: ${(error as Error).message}`, { source }, { cause: error });
      }
    },
  });
  return join(dir, 'model.f32.gguf');
}
