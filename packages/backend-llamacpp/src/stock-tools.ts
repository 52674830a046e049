import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ChessError, cachePath, withCacheLock } from '@chess/core';
import { LLAMA_CPP_COMMIT, ensureLlamaSource } from '@chess/assets';
import { hostX86Level, isHostLevel, llamaToolBuildFlags, nativeToolBuildFlags, type X86Level } from './x86-level.ts';

const run = promisify(execFile);

/**
 * Stock llama.cpp tools built by us from the pristine tree (never patched): the independent
 * references (llama-perplexity, llama-bench) and llama.cpp's own quantizer (llama-quantize:
 * K-quant mixes made by llama.cpp's recipe, `chess model synth --type q4_k_m`, `chess model quantize`).
 */
export type StockTool = 'llama-perplexity' | 'llama-bench' | 'llama-quantize';

/**
 * The host's level is built like the patched build (nativeToolBuildFlags: GGML_NATIVE, shared
 * libraries, the same release flags), so that stock and patched differ only in the patch; other levels
 * (`--x86 avx2` on an AVX-512 machine: what an older CPU gets) at their fixed flags, as the
 * patched tools for that level are (ensurePatchedToolAt).
 */
function buildVariant(level: X86Level): string {
  if (!isHostLevel(level)) return level;
  // keyed by the flags: a change of them (nativeReleaseFlags) must not reuse a stale build
  return `native-${createHash('sha256').update(nativeToolBuildFlags().join('\n')).digest('hex').slice(0, 8)}`;
}

/** Build directory of the stock tools (pristine tree, CPU only). */
export function stockToolsDir(level: X86Level = 'avx512'): string {
  return cachePath('llama.cpp', `stock-tools-${LLAMA_CPP_COMMIT.slice(0, 12)}-${buildVariant(level)}`);
}

/**
 * Path of a stock llama.cpp tool, built once with cmake from the pristine source
 * tree (`ensureLlamaSource`) into the cache; later calls do no work.
 * `CHESS_LLAMA_PERPLEXITY` points at an existing binary instead (e.g. another build).
 * The level defaults to this machine's (never instructions the CPU lacks).
 */
export async function ensureStockTool(
  tool: StockTool,
  log: (line: string) => void = () => undefined,
  level: X86Level = hostX86Level() ?? 'avx512',
): Promise<string> {
  const override = process.env.CHESS_LLAMA_PERPLEXITY;
  if (tool === 'llama-perplexity' && override) {
    if (!existsSync(override)) {
      throw new ChessError('STOCK_TOOL_MISSING', `CHESS_LLAMA_PERPLEXITY=${override}: no such file`, { path: override });
    }
    return override;
  }
  const dir = stockToolsDir(level);
  const binary = join(dir, 'build', 'bin', tool);
  const marker = join(dir, `.${tool}.complete`);
  const built = (): boolean => existsSync(binary) && existsSync(marker) && readFileSync(marker, 'utf8').trim() === LLAMA_CPP_COMMIT;
  if (built()) return binary;
  const source = await ensureLlamaSource(log);
  await mkdir(dir, { recursive: true });
  // one cmake build at a time in this directory (the tools share its libraries; a demo and a test may race)
  return withCacheLock(dir, { what: `the stock llama.cpp tools (${level})`, waitMs: 60 * 60_000, log }, async () =>
    built() ? binary : buildStockTool(tool, source, dir, binary, marker, level, log),
  );
}

async function buildStockTool(tool: StockTool, source: string, dir: string, binary: string, marker: string, level: X86Level, log: (line: string) => void): Promise<string> {
  const buildDir = join(dir, 'build');
  log(`building stock ${tool} (${level}) from ${source} into ${buildDir} (cmake, a few minutes on 2 cores)`);
  const flags = isHostLevel(level) ? nativeToolBuildFlags() : llamaToolBuildFlags(level);
  try {
    await run('cmake', ['-S', source, '-B', buildDir, ...flags], { maxBuffer: 64 << 20 });
    await run('cmake', ['--build', buildDir, '--target', tool, '-j', String(Math.max(1, (await import('node:os')).availableParallelism()))], {
      maxBuffer: 256 << 20,
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new ChessError(
      'STOCK_TOOL_BUILD_FAILED',
      `could not build stock ${tool} in ${buildDir}: ${stderr.split('\n').filter(Boolean).slice(-5).join(' | ') || (error as Error).message}. It needs cmake and a C++ compiler.`,
      { tool, buildDir },
      { cause: error },
    );
  }
  if (!existsSync(binary)) {
    await rm(marker, { force: true });
    throw new ChessError('STOCK_TOOL_BUILD_FAILED', `cmake finished but ${binary} does not exist`, { tool, binary });
  }
  await writeFile(marker, `${LLAMA_CPP_COMMIT}\n`);
  return binary;
}
