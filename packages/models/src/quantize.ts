import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, rename, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { ChessError, UsageError, temporarySiblingPath } from '@chess/core';
import { openGGUF } from '@chess/gguf';

/**
 * Weight mixes made by llama.cpp's own quantizer (`llama-quantize` of the bundled tree):
 * the mixes users download (Q4_K_M: Q6_K on half of attn_v / ffn_down, Q4_K elsewhere,
 * fallbacks where rows are not a multiple of 256) can only be made faithfully by its recipe
 * (`llama_tensor_get_type` in src/llama-quant.cpp). `fileType` is the `general.file_type`
 * (enum llama_ftype) it writes.
 */
export const QUANTIZE_PRESETS = {
  q4_0: { ftype: 'Q4_0', fileType: 2 },
  q4_1: { ftype: 'Q4_1', fileType: 3 },
  q5_0: { ftype: 'Q5_0', fileType: 8 },
  q5_1: { ftype: 'Q5_1', fileType: 9 },
  q8_0: { ftype: 'Q8_0', fileType: 7 },
  q4_k_m: { ftype: 'Q4_K_M', fileType: 15 },
  q5_k_m: { ftype: 'Q5_K_M', fileType: 17 },
  q6_k: { ftype: 'Q6_K', fileType: 18 },
} as const;
export type QuantizePreset = keyof typeof QUANTIZE_PRESETS;

export function parseQuantizePreset(name: string, option = '--type'): QuantizePreset {
  const key = name.toLowerCase();
  if (Object.hasOwn(QUANTIZE_PRESETS, key)) return key as QuantizePreset;
  throw new UsageError('QUANTIZE_BAD_TYPE', `${option}: '${name}' is not a llama-quantize mix we drive; expected one of ${Object.keys(QUANTIZE_PRESETS).join(', ')}`, {
    type: name,
  });
}

export interface QuantizeOptions {
  input: string;
  out: string;
  preset: QuantizePreset;
  /**
   * A stock `llama-quantize` (ensureStockTool('llama-quantize') in @chess/backend-llamacpp), or a
   * function giving it, called only once the inputs are checked (a first build takes minutes).
   */
  llamaQuantize: string | (() => Promise<string>);
  /** Re-quantize tensors that are already quantized (llama-quantize --allow-requantize): a real Q4_1 model to Q8_0 or Q4_K_M. */
  allowRequantize?: boolean;
  /** Threads of llama-quantize (default: all CPUs). */
  threads?: number;
  /** After each tensor: tensors done, tensor count, the tensor's name. */
  progress?: (done: number, total: number, tensor: string) => void;
}

/** `[  12/ 201]  blk.0.attn_q.weight - ...`: llama-quantize's line per tensor. */
const TENSOR_LINE = /^\[\s*(\d+)\s*\/\s*(\d+)\s*\]\s+(\S+)/;

/**
 * Quantize (or re-quantize) a GGUF with llama.cpp's own recipe. The output is written to a
 * temporary sibling and renamed into place on success, so a reader never sees a partial file;
 * on failure the temporary file is removed and QUANTIZE_FAILED names the input, the mix and
 * the tool's last lines.
 */
export async function quantizeModel(options: QuantizeOptions): Promise<{ path: string; bytes: number }> {
  const input = resolve(options.input);
  const out = resolve(options.out);
  const { ftype } = QUANTIZE_PRESETS[options.preset];
  if (!existsSync(input)) throw new UsageError('QUANTIZE_BAD_INPUT', `--model: ${input} does not exist`, { input });
  if (input === out) throw new UsageError('QUANTIZE_BAD_OUT', `--out: ${out} is the input file; write the quantized model elsewhere`, { out });
  const file = await openGGUF(input); // refuses a malformed file with the offset and what was expected
  try {
    if (file.metadata.has('general.architecture') && file.metadata.getString('general.architecture') === 'chess') {
      throw new UsageError(
        'QUANTIZE_BAD_INPUT',
        `${input} is a sparse GGUF (general.architecture 'chess'): quantize the dense source, then compile it with 'chess transform'`,
        { input },
      );
    }
  } finally {
    await file.close();
  }
  const binary = typeof options.llamaQuantize === 'string' ? options.llamaQuantize : await options.llamaQuantize();
  const tmp = temporarySiblingPath(out);
  const args = [...(options.allowRequantize ? ['--allow-requantize'] : []), input, tmp, ftype, String(options.threads ?? availableParallelism())];
  try {
    const { code, tail } = await runQuantize(binary, args, options.progress);
    if (code !== 0 || !existsSync(tmp)) {
      throw new ChessError(
        'QUANTIZE_FAILED',
        `llama-quantize ${input} to ${ftype} failed (exit ${code}): ${tail.slice(-6).join(' | ')}`,
        { input, out, type: options.preset, code },
      );
    }
    await rename(tmp, out);
  } finally {
    await rm(tmp, { force: true });
  }
  return { path: out, bytes: (await stat(out)).size };
}

function runQuantize(
  binary: string,
  args: readonly string[],
  progress: QuantizeOptions['progress'],
): Promise<{ code: number; tail: string[] }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    // both streams: the tensor lines go through llama.cpp's log (stderr), the summary to stdout
    const onData = (() => {
      let pending = '';
      return (chunk: Buffer): void => {
        pending += chunk.toString();
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          if (line.trim() === '') continue;
          tail.push(line);
          if (tail.length > 40) tail.shift();
          const m = TENSOR_LINE.exec(line);
          if (m) progress?.(Number(m[1]), Number(m[2]), m[3]!);
        }
      };
    })();
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (error) =>
      reject(new ChessError('QUANTIZE_FAILED', `could not run ${binary}: ${error.message}`, { binary }, { cause: error })),
    );
    child.on('close', (code, signal) => resolvePromise({ code: code ?? (signal ? 128 : -1), tail }));
  });
}
