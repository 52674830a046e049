// The C kernels in native/ cross-compiled for AArch64 (Debian's cross gcc, toolchain
// file native/cmake/aarch64-linux-gnu.cmake) and their ctest suite run under
// qemu-user, so the NEON variant is tested against the reference on an x86 machine.
// Two builds, cached by the hash of the sources like native-kernels.test.ts:
//   aarch64          baseline NEON (ARMv8.0-A), golden values from ggml-base (also
//                    cross-compiled), run on qemu's cortex-a53 model: no later
//                    instruction can slip in
//   aarch64-dotprod-sanitize  CHESS_NEON_DOTPROD=ON (SDOT) with ASan + UBSan, run on
//                    qemu's "max" CPU (LeakSanitizer cannot run under qemu-user: the
//                    CMake file sets detect_leaks=0; the x86 sanitizer build checks leaks)
// In both, CHESS_TEST_EXPECT_ISA=neon makes ctest fail unless NEON is available, is
// the default ISA and ran every type. A missing cross toolchain or qemu is installed
// with apt-get (root, or sudo without a password); if that fails the test fails and
// says what to install.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cachePath, withCacheLock } from '@chess/core';
import { NATIVE_DIR, nativeSourcesHash } from './native-sources.ts';
import { findOnPath } from './process.ts';
import { expect, it } from 'vitest';
import { describeWithTools } from './suite-tools.ts';
import { ensureLlamaSource } from '@chess/assets';

const run = promisify(execFile);
const nativeDir = NATIVE_DIR;
const hasTool = (tool: string): boolean => findOnPath(tool) !== undefined;
const toolchainFile = join(nativeDir, 'cmake', 'aarch64-linux-gnu.cmake');

const APT_PACKAGES = ['gcc-aarch64-linux-gnu', 'g++-aarch64-linux-gnu', 'libc6-dev-arm64-cross', 'qemu-user'];
const REQUIRED = {
  tools: ['aarch64-linux-gnu-gcc', 'aarch64-linux-gnu-g++', 'qemu-aarch64'],
  files: ['/usr/aarch64-linux-gnu/lib/libc.so', '/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1'],
};
const TYPES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1'];




function missingPrerequisites(): string[] {
  return [...REQUIRED.tools.filter((t) => !hasTool(t)), ...REQUIRED.files.filter((f) => !existsSync(f))];
}

async function tryRun(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const { stdout, stderr } = await run(cmd, args, {
      maxBuffer: 64 << 20,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    return { ok: true, out: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}${e.message}` };
  }
}

/** Installs the cross toolchain and qemu-user when missing; throws with what to install otherwise. */
async function ensureCrossToolchain(): Promise<void> {
  let missing = missingPrerequisites();
  if (missing.length === 0) return;
  const log: string[] = [];
  const asRoot = process.getuid?.() === 0;
  const prefix = asRoot ? [] : hasTool('sudo') ? ['sudo', '-n'] : null;
  if (prefix && hasTool('apt-get')) {
    const apt = async (...args: string[]) => {
      const [cmd, ...rest] = [...prefix, 'apt-get', '-o', 'DPkg::Lock::Timeout=600', ...args];
      const r = await tryRun(cmd!, rest);
      log.push(`$ ${[cmd, ...rest].join(' ')}\n${r.out.split('\n').slice(-15).join('\n')}`);
      return r.ok;
    };
    const install = () => apt('install', '-y', '--no-install-recommends', ...APT_PACKAGES);
    if (!(await install())) {
      await apt('update');
      await install();
    }
    missing = missingPrerequisites();
  } else {
    log.push(prefix ? 'apt-get not found' : 'not root and no sudo: cannot install packages');
  }
  if (missing.length > 0) {
    throw new Error(
      `The AArch64 kernel test needs a cross toolchain and qemu-user; missing: ${missing.join(', ')}.\n` +
        `Install them (Debian/Ubuntu, as root):\n  apt-get install -y --no-install-recommends ${APT_PACKAGES.join(' ')}\n` +
        `Automatic installation failed:\n${log.join('\n')}`,
    );
  }
}

type Variant = {
  name: 'aarch64' | 'aarch64-dotprod-sanitize';
  qemuCpu: string;
  dotprod: boolean;
  sanitize: boolean;
  ggml: boolean;
};

async function buildAndTest(v: Variant, ggmlSource: string | null): Promise<string> {
  const buildDir = cachePath('build', `kernels-${v.name}-${nativeSourcesHash(/\.(c|h|cmake)$|CMakeLists\.txt$/)}`);
  const args = [
    '-S', nativeDir, '-B', buildDir,
    ...(hasTool('ninja') ? ['-G', 'Ninja'] : []),
    `-DCMAKE_TOOLCHAIN_FILE=${toolchainFile}`,
    `-DCMAKE_BUILD_TYPE=${v.sanitize ? 'RelWithDebInfo' : 'Release'}`,
    '-DCHESS_BUILD_TESTS=ON',
    `-DCHESS_SANITIZE=${v.sanitize ? 'ON' : 'OFF'}`,
    `-DCHESS_NEON_DOTPROD=${v.dotprod ? 'ON' : 'OFF'}`,
    `-DCHESS_QEMU_CPU=${v.qemuCpu}`,
    '-DCHESS_TEST_EXPECT_ISA=neon',
    `-DCHESS_GGML_SOURCE=${v.ggml && ggmlSource ? ggmlSource : ''}`,
  ];
  const step = async (cmd: string, cmdArgs: string[], what: string): Promise<string> => {
    // qemu-user hands its environment to the guest: the seed, and no forced ISA
    // (ctest sets ASAN_OPTIONS=detect_leaks=0 itself in a sanitized cross build)
    const env = { ...process.env, CHESS_TEST_SEED: '0x5eed', CHESS_KERNEL_ISA: '' };
    try {
      const { stdout, stderr } = await run(cmd, cmdArgs, { maxBuffer: 64 << 20, env });
      return stdout + stderr;
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string; message: string };
      throw new Error(`${what} failed (${v.name}):\n${e.stdout ?? ''}\n${e.stderr ?? ''}\n${e.message}`);
    }
  };
  // the build directory is a shared cache entry: another test run may be building it
  return withCacheLock(buildDir, { what: `the ${v.name} kernel test build` }, async () => {
    await step('cmake', args, 'cmake configure');
    await step('cmake', ['--build', buildDir, '--target', 'test_kernels', 'test_cb', 'test_contract', '-j', '2'], 'cmake build');
    return step('ctest', ['--test-dir', buildDir, '--output-on-failure', '-V', '-j', '2'], 'ctest');
  });
}

function expectNeonCoverage(out: string, qemuCpu: string): void {
  expect(out).toMatch(/100% tests passed/);
  expect(out).toContain(`-cpu" "${qemuCpu}"`); // ran under qemu, on that CPU model
  expect(out).toContain('default isa neon (expected neon)');
  expect(out).toContain('CHESS_KERNEL_ISA=neon selected neon');
  expect(out).toMatch(/neon +quant_x8 identical to ref on \d+ blocks; to_float of 6 types matches/);
  // the integer input-sparse kernels: the x86 arithmetic, bit for bit (the test's scalar model)
  expect(out).toMatch(/neon integer in_accum \(3 types\) identical to the integer model on [1-9]\d* active rows/);
  for (const type of TYPES)
    for (const kind of ['in', 'out_gated']) expect(out).toMatch(new RegExp(`neon +${type} +${kind} +28 cases`));
  // the column-block kernels (test_cb simd): every type, bit for bit against the reference
  expect(out).toContain('simd neon: kernels for f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_K q5_K q6_K identical to the reference');
}

describeWithTools(['cmake', 'ctest'], 'native sparse kernels on AArch64 (NEON, qemu-user)', () => {
  it('baseline NEON passes conformance, primitives, reference (ggml golden) and the rest on a cortex-a53', async () => {
    await ensureCrossToolchain();
    const ggmlSource = await ensureLlamaSource();
    const out = await buildAndTest(
      { name: 'aarch64', qemuCpu: 'cortex-a53', dotprod: false, sanitize: false, ggml: true },
      ggmlSource,
    );
    expectNeonCoverage(out, 'cortex-a53');
    expect(out).toMatch(/ref +q4_1 +out_gated vs float64: 12 cases/);
  }, 30 * 60_000);

  it('NEON with SDOT (CHESS_NEON_DOTPROD) passes the same tests under ASan + UBSan on qemu max', async () => {
    await ensureCrossToolchain();
    const out = await buildAndTest(
      { name: 'aarch64-dotprod-sanitize', qemuCpu: 'max', dotprod: true, sanitize: true, ggml: false },
      null,
    );
    expectNeonCoverage(out, 'max');
  }, 30 * 60_000);
});
