import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { ChessError, cachePath, writeFileAtomic } from '@chess/core';
import { backendHash, backendStatus, buildBackend, withBuildLock } from './build.ts';
import { buildProgress, requireTools, runCommand, type Log } from './process.ts';
import { isHostLevel, llamaToolBuildFlags, type X86Level } from './x86-level.ts';

/**
 * The patched tool to compare with ensureStockTool(tool, log, level): at the host's level the
 * backend's own tools (built natively, as the host's stock tools are), else the fixed-level build.
 */
export async function ensurePatchedTool(tool: string, level: X86Level, log: Log = () => undefined): Promise<string> {
  return isHostLevel(level) ? join((await buildBackend({ log })).binDir, tool) : ensurePatchedToolAt(tool, level, log);
}

/**
 * A patched tool (llama-bench, ...) built for a fixed x86 level instead of the build
 * machine's CPU: the benchmarks' way to measure, on an AVX-512 machine, what an AVX2-only
 * CPU gets (`pnpm -C benchmarks e2e-speed --x86 avx2`). The regular backend is built first
 * (it prepares the patched source tree, ours synced into it); this is a second, plain cmake
 * build of that tree with the level's ggml flags, cached per backend hash and level.
 * Returns the tool's path.
 */
export async function ensurePatchedToolAt(tool: string, level: X86Level, log: Log = () => undefined): Promise<string> {
  if (!backendStatus().built) await buildBackend({ log });
  const status = backendStatus();
  const hash = backendHash();
  const root = cachePath('llama.cpp', `patched-${hash}-${level}`);
  const buildDir = join(root, 'build');
  const binary = join(buildDir, 'bin', tool);
  const marker = join(root, `.${tool}.complete`);
  const built = (): boolean => existsSync(binary) && existsSync(marker) && readFileSync(marker, 'utf8').trim() === hash;
  if (built()) return binary;
  return withBuildLock(`${root}.lock`, log, async () => (built() ? binary : buildToolAt(tool, level, status.sourceDir, root, buildDir, binary, marker, hash, log)));
}

async function buildToolAt(tool: string, level: X86Level, sourceDir: string, root: string, buildDir: string, binary: string, marker: string, hash: string, log: Log): Promise<string> {
  requireTools([
    { names: ['cmake'], purpose: 'configures llama.cpp' },
    { names: ['c++', 'g++', 'clang++'], purpose: 'C++ compiler' },
    { names: ['cc', 'gcc', 'clang'], purpose: 'C compiler' },
  ]);
  await mkdir(root, { recursive: true });
  log(`building patched ${tool} for ${level} from ${sourceDir} into ${buildDir} (cmake, a few minutes on 2 cores)`);
  const flags = llamaToolBuildFlags(level);
  const configure = await runCommand('cmake', ['-S', sourceDir, '-B', buildDir, ...flags]);
  if (configure.code !== 0) {
    throw new ChessError('BACKEND_BUILD_FAILED', `cmake configure of the ${level} tools in ${buildDir} failed:\n${configure.tail.slice(-30).join('\n')}`, {
      step: 'configure-x86-tools',
      level,
      buildDir,
    });
  }
  const build = await runCommand('cmake', ['--build', buildDir, '--config', 'Release', '-j', String(Math.max(1, cpus().length)), '--target', tool], {
    onLine: buildProgress(`${level} ${tool}`, log),
  });
  if (build.code !== 0 || !existsSync(binary)) {
    throw new ChessError('BACKEND_BUILD_FAILED', `building the ${level} ${tool} in ${buildDir} failed:\n${build.tail.slice(-30).join('\n')}`, {
      step: 'build-x86-tools',
      level,
      buildDir,
    });
  }
  await writeFileAtomic(marker, `${hash}\n`);
  return binary;
}
