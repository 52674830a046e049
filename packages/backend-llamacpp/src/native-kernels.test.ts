// Thin wrapper: configures + builds the C kernels in native/ (cached by the hash
// of their sources) and runs their ctest suite, once normally and once with
// ASan + UBSan. Golden dequantization uses ggml-base from the pristine tree.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cachePath } from '@chess/core';
import { describe, expect, it } from 'vitest';
import { ensureLlamaSource } from '@chess/assets';

const run = promisify(execFile);
const nativeDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'native');

function listFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? listFiles(path) : [path];
    })
    .sort();
}

function sourcesHash(): string {
  const hash = createHash('sha256');
  // CMake's cache records its source directory: each checkout gets its own build tree.
  hash.update(nativeDir);
  for (const file of listFiles(nativeDir).filter((f) => /\.(c|h)$|CMakeLists\.txt$/.test(f))) {
    hash.update(relative(nativeDir, file));
    hash.update(readFileSync(file));
  }
  return hash.digest('hex').slice(0, 16);
}

function hasTool(tool: string): boolean {
  try {
    return (process.env.PATH ?? '').split(':').some((dir) => dir && existsSync(join(dir, tool)));
  } catch {
    return false;
  }
}

async function buildAndTest(variant: 'release' | 'sanitize', ggmlSource: string): Promise<string> {
  const buildDir = cachePath('build', `kernels-${variant}-${sourcesHash()}`);
  const args = [
    '-S', nativeDir, '-B', buildDir,
    ...(hasTool('ninja') ? ['-G', 'Ninja'] : []),
    `-DCMAKE_BUILD_TYPE=${variant === 'release' ? 'Release' : 'RelWithDebInfo'}`,
    '-DCHESS_BUILD_TESTS=ON',
    `-DCHESS_SANITIZE=${variant === 'sanitize' ? 'ON' : 'OFF'}`,
    `-DCHESS_GGML_SOURCE=${ggmlSource}`,
  ];
  const step = async (cmd: string, cmdArgs: string[], what: string): Promise<string> => {
    try {
      const { stdout, stderr } = await run(cmd, cmdArgs, { maxBuffer: 64 << 20, env: { ...process.env, CHESS_TEST_SEED: '0x5eed' } });
      return stdout + stderr;
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string; message: string };
      throw new Error(`${what} failed (${variant}):\n${e.stdout ?? ''}\n${e.stderr ?? ''}\n${e.message}`);
    }
  };
  await step('cmake', args, 'cmake configure');
  await step('cmake', ['--build', buildDir, '--target', 'test_kernels'], 'cmake build');
  return step('ctest', ['--test-dir', buildDir, '--output-on-failure'], 'ctest');
}

describe.skipIf(!hasTool('cmake') || !hasTool('ctest'))('native sparse kernels (C, ctest)', () => {
  it('pass their conformance, reference, bad-argument and counter tests', async () => {
    const ggmlSource = await ensureLlamaSource();
    const out = await buildAndTest('release', ggmlSource);
    expect(out).toMatch(/100% tests passed/);
  }, 30 * 60_000);

  it('pass the same tests under ASan + UBSan', async () => {
    const ggmlSource = await ensureLlamaSource();
    const out = await buildAndTest('sanitize', ggmlSource);
    expect(out).toMatch(/100% tests passed/);
  }, 30 * 60_000);
});
