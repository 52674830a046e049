// Thin wrapper: configures + builds the C kernels in native/ (cached by the hash
// of their sources) and runs their ctest suite, once normally and once with
// ASan + UBSan. Golden dequantization uses ggml-base from the pristine tree.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cachePath, withCacheLock } from '@chess/core';
import { NATIVE_DIR, nativeSourcesHash } from './native-sources.ts';
import { findOnPath } from './process.ts';
import { hostCpuFlags } from './x86-level.ts';
import { expect, it } from 'vitest';
import { describeWithTools } from './suite-tools.ts';
import { ensureLlamaSource } from '@chess/assets';

const run = promisify(execFile);
const nativeDir = NATIVE_DIR;
const hasTool = (tool: string): boolean => findOnPath(tool) !== undefined;




/** The SIMD tables this x86 CPU must run (from /proc/cpuinfo), so that a broken CPU check
 * cannot turn an ISA's tests into "not available, skipped". */
function expectedX86Isas(): string[] {
  const flags = hostCpuFlags() ?? new Set<string>();
  const has = (...names: string[]): boolean => names.every((n) => flags.has(n));
  const isas: string[] = [];
  if (has('avx2', 'fma', 'f16c')) isas.push('avx2');
  if (has('avx2', 'fma', 'f16c', 'avx_vnni')) isas.push('avx2vnni');
  if (has('avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'fma', 'f16c')) isas.push('avx512');
  if (has('avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512vbmi', 'fma', 'f16c')) isas.push('avx512vbmi');
  return isas;
}

async function buildAndTest(variant: 'release' | 'sanitize', ggmlSource: string): Promise<string> {
  const buildDir = cachePath('build', `kernels-${variant}-${nativeSourcesHash(/\.(c|h)$|CMakeLists\.txt$/)}`);
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
  // the build directory is a shared cache entry: another test run may be building it
  return withCacheLock(buildDir, { what: `the ${variant} kernel test build` }, async () => {
    await step('cmake', args, 'cmake configure');
    await step('cmake', ['--build', buildDir, '--target', 'test_kernels', 'test_cb', 'test_contract'], 'cmake build');
    const ctest = await step('ctest', ['--test-dir', buildDir, '--output-on-failure'], 'ctest');
    // ctest hides a passing test's output: the primitives' per-ISA lines, once more
    const primitives = await step(join(buildDir, 'test_kernels'), ['primitives'], 'test_kernels primitives');
    // and the column-block kernels' per-ISA lines (test_cb simd)
    const cb = await step(join(buildDir, 'test_cb'), ['simd'], 'test_cb simd');
    return `${ctest}\n${primitives}\n${cb}`;
  });
}

describeWithTools(['cmake', 'ctest'], 'native sparse kernels (C, ctest)', () => {
  it('pass their conformance, reference, bad-argument and counter tests', async () => {
    const ggmlSource = await ensureLlamaSource();
    const out = await buildAndTest('release', ggmlSource);
    expect(out).toMatch(/100% tests passed/);
    for (const isa of expectedX86Isas()) {
      expect(out).toContain(`${isa} integer in_accum (3 types) identical to the integer model`);
    }
    if (expectedX86Isas().includes('avx2vnni')) expect(out).toContain('avx2vnni dot_rows (3 types) identical to avx2');
    for (const isa of expectedX86Isas()) {
      expect(out).toContain(`simd ${isa}: kernels for f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_K q5_K q6_K identical to the reference`);
    }
  }, 30 * 60_000);

  it('pass the same tests under ASan + UBSan', async () => {
    const ggmlSource = await ensureLlamaSource();
    const out = await buildAndTest('sanitize', ggmlSource);
    expect(out).toMatch(/100% tests passed/);
    // the loader's sparse-contract checks and their seeded fuzz (tests/test_contract.c) ran under the sanitizers
    expect(out).toMatch(/contract_checks \.+\s+Passed/);
  }, 30 * 60_000);
});
