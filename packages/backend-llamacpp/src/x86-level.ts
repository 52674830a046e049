/**
 * x86 instruction-set levels for builds that must not depend on the build machine's CPU
 * (GGML_NATIVE off): the benchmarks compare a stock and a patched llama.cpp built with the
 * same flags. `avx512`: AVX2 + AVX-512 (F/BW/VL/DQ/CD, VBMI, VNNI, BF16), no AMX (on these
 * VMs the CPU reports AMX but the first tile instruction raises SIGILL). `avx2vnni`: AVX2 +
 * FMA + F16C + BMI2 + AVX-VNNI, Intel's client CPUs since Alder Lake (laptops, mini PCs;
 * our kernels run their `avx2vnni` table). `avx2`: AVX2 + FMA + F16C + BMI2 and nothing
 * newer: older laptops and small desktops (CHESS_KERNEL_ISA=avx2). Both are measured on
 * an AVX-512 machine by building ggml without AVX-512.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { UsageError } from '@chess/core';

export type X86Level = 'avx512' | 'avx2vnni' | 'avx2';
/** Highest first. */
export const X86_LEVELS: readonly X86Level[] = ['avx512', 'avx2vnni', 'avx2'];

const NO_AMX = ['-DGGML_AMX_TILE=OFF', '-DGGML_AMX_INT8=OFF', '-DGGML_AMX_BF16=OFF'];
const AVX2_BASE = ['-DGGML_NATIVE=OFF', '-DGGML_AVX=ON', '-DGGML_AVX2=ON', '-DGGML_FMA=ON', '-DGGML_F16C=ON', '-DGGML_BMI2=ON'];

/** ggml CMake options of a level. */
export function ggmlIsaFlags(level: X86Level): string[] {
  if (level === 'avx2' || level === 'avx2vnni') {
    const vnni = level === 'avx2vnni' ? '-DGGML_AVX_VNNI=ON' : '-DGGML_AVX_VNNI=OFF';
    return [...AVX2_BASE, '-DGGML_AVX512=OFF', '-DGGML_AVX512_VBMI=OFF', '-DGGML_AVX512_VNNI=OFF', '-DGGML_AVX512_BF16=OFF', vnni, ...NO_AMX];
  }
  return [...AVX2_BASE, '-DGGML_AVX512=ON', '-DGGML_AVX512_VBMI=ON', '-DGGML_AVX512_VNNI=ON', '-DGGML_AVX512_BF16=ON', ...NO_AMX];
}

/**
 * Instruction sets a native build must not use even where -march=native enables them:
 * - AMX: with -march=native on CPUs that report AMX, ggml puts weights in AMX buffers, and
 *   where the tile state is not usable the first tile instruction raises SIGILL.
 * - AVX512-FP16 (Sapphire Rapids and later): ggml's F16 vectors then compute in half
 *   precision (simd-mappings.h: vfmadd231ph accumulators, 128 elements per step), so the
 *   attention's K.Q dot and V accumulation round every partial sum to 11 bits, and a head of
 *   64 (SmolLM2, Llama-3.2-1B) falls entirely into the scalar tail loop: the patched addon
 *   decoded SmolLM2 at 0.74x of node-llama-cpp's prebuilt (whose CPU variants are built
 *   without it) on such a CPU, with flash attention and ggml_vec_dot_f16 at 8 % of the time
 *   instead of 1 %.
 * Each is passed only if the compiler knows the option (gcc 11 has no -mno-avx512fp16).
 */
const NATIVE_EXCLUDED_ISA = ['-mno-amx-tile', '-mno-amx-int8', '-mno-amx-bf16', '-mno-avx512fp16'] as const;

function compilerAccepts(flag: string): boolean {
  const compiler = process.env.CXX || 'c++';
  const probe = spawnSync(compiler, [flag, '-x', 'c++', '-fsyntax-only', '-'], { input: '', stdio: ['pipe', 'ignore', 'ignore'] });
  return probe.status === 0;
}

let nativeReleaseFlagsMemo: string | undefined;

/**
 * Release compiler flags of the builds for this machine's own CPU (GGML_NATIVE): the patched
 * addon (addonCmakeOptions) and the stock tools at the host's level, so that a stock vs
 * patched comparison differs in nothing but the patch: -O3, and the instruction sets of
 * NATIVE_EXCLUDED_ISA turned off. In the *_RELEASE variables because cmake-js overwrites
 * CMAKE_CXX_FLAGS. Part of the patched build's cache key (seriesHash).
 */
export function nativeReleaseFlags(): string {
  nativeReleaseFlagsMemo ??= ['-O3', '-DNDEBUG', ...NATIVE_EXCLUDED_ISA.filter(compilerAccepts)].join(' ');
  return nativeReleaseFlagsMemo;
}

/** Tool-build options shared by every standalone build: no network code, no tests/examples/server/app/UI. */
const TOOL_OPTIONS = [
  '-DLLAMA_CURL=OFF',
  '-DLLAMA_OPENSSL=OFF',
  '-DLLAMA_BUILD_TESTS=OFF',
  '-DLLAMA_BUILD_EXAMPLES=OFF',
  '-DLLAMA_BUILD_SERVER=OFF',
  '-DLLAMA_BUILD_APP=OFF',
  '-DLLAMA_BUILD_UI=OFF',
  '-DLLAMA_BUILD_TOOLS=ON',
];

/**
 * CMake options of the stock tools built for this machine's CPU: what the patched build uses
 * (node-llama-cpp's addon build: GGML_NATIVE, shared libraries, nativeReleaseFlags()), which is
 * also llama.cpp's own default for a build from source. A baseline built any other way
 * measures the flags, not the patch (the former fixed-level static stock build: see the
 * changeset that replaced it).
 */
export function nativeToolBuildFlags(): string[] {
  return [
    '-DCMAKE_BUILD_TYPE=Release',
    '-DGGML_NATIVE=ON',
    `-DCMAKE_C_FLAGS_RELEASE=${nativeReleaseFlags()}`,
    `-DCMAKE_CXX_FLAGS_RELEASE=${nativeReleaseFlags()}`,
    '-DBUILD_SHARED_LIBS=ON',
    ...TOOL_OPTIONS,
  ];
}

/**
 * CMake options of a standalone CPU-only Release build of llama.cpp's tools at a fixed level
 * (static): the stock tools for a level other than the host's (@chess/bench) and the patched
 * tools for a fixed level (ensurePatchedToolAt) alike.
 */
export function llamaToolBuildFlags(level: X86Level): string[] {
  return [
    '-DCMAKE_BUILD_TYPE=Release',
    ...ggmlIsaFlags(level),
    '-DBUILD_SHARED_LIBS=OFF',
    ...TOOL_OPTIONS,
  ];
}

/** Whether a level is this machine's own (or the machine's level cannot be told): built natively, like the patched addon. */
export function isHostLevel(level: X86Level): boolean {
  return level === (hostX86Level() ?? level);
}

/** The kernel ISA (CHESS_KERNEL_ISA) that matches a level, or undefined for the best available. */
export function chessKernelIsa(level: X86Level): string | undefined {
  return level === 'avx512' ? undefined : level;
}

/** CPU flags (Linux /proc/cpuinfo names) each level's builds execute. */
const LEVEL_CPU_FLAGS: Readonly<Record<X86Level, readonly string[]>> = {
  avx512: ['avx2', 'fma', 'f16c', 'bmi2', 'avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'avx512cd', 'avx512vbmi', 'avx512_vnni', 'avx512_bf16'],
  avx2vnni: ['avx2', 'fma', 'f16c', 'bmi2', 'avx_vnni'],
  avx2: ['avx2', 'fma', 'f16c', 'bmi2'],
};

/** The highest level whose instructions a CPU with these flags executes, or undefined. */
export function x86LevelOfCpuFlags(flags: ReadonlySet<string>): X86Level | undefined {
  return X86_LEVELS.find((level) => LEVEL_CPU_FLAGS[level].every((flag) => flags.has(flag)));
}

/**
 * This machine's level from /proc/cpuinfo: the default of the benchmarks' fixed-level
 * builds, so that they never build for instructions the CPU lacks (an AVX-512 build
 * dies with SIGILL on an AVX2 laptop). Undefined where it cannot tell (no /proc/cpuinfo,
 * not x86, or older than AVX2).
 */
export function hostX86Level(cpuinfoPath = '/proc/cpuinfo'): X86Level | undefined {
  const flags = hostCpuFlags(cpuinfoPath);
  return flags ? x86LevelOfCpuFlags(flags) : undefined;
}

/** The CPU flags of this machine (first `flags` line of /proc/cpuinfo), or undefined where there is none (not Linux x86). */
export function hostCpuFlags(cpuinfoPath = '/proc/cpuinfo'): ReadonlySet<string> | undefined {
  let text: string;
  try {
    text = readFileSync(cpuinfoPath, 'utf8');
  } catch {
    return undefined;
  }
  const line = /^flags\s*:(.*)$/m.exec(text);
  return line ? new Set(line[1]!.trim().split(/\s+/)) : undefined;
}

/** A level named on a command line; UsageError BAD_X86_LEVEL otherwise. */
export function parseX86Level(value: string, option = '--x86'): X86Level {
  if ((X86_LEVELS as readonly string[]).includes(value)) return value as X86Level;
  throw new UsageError('BAD_X86_LEVEL', `${option} ${value}: expected one of ${X86_LEVELS.join(', ')}`, { option, value });
}
