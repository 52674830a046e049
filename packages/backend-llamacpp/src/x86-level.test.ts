import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chessKernelIsa, ggmlIsaFlags, hostX86Level, llamaToolBuildFlags, nativeToolBuildFlags, parseX86Level, x86LevelOfCpuFlags } from './x86-level.ts';
import { addonCmakeOptions } from './patched-install.ts';

describe('x86 levels', () => {
  it('avx2 builds enable nothing newer than AVX2 + FMA + F16C + BMI2', () => {
    const flags = ggmlIsaFlags('avx2');
    const on = flags.filter((f) => f.endsWith('=ON')).map((f) => f.slice(2, -3));
    expect(on.sort()).toEqual(['GGML_AVX', 'GGML_AVX2', 'GGML_BMI2', 'GGML_F16C', 'GGML_FMA']);
    expect(flags).toContain('-DGGML_NATIVE=OFF');
    for (const f of ['GGML_AVX512', 'GGML_AVX512_VBMI', 'GGML_AVX512_VNNI', 'GGML_AVX512_BF16', 'GGML_AVX_VNNI', 'GGML_AMX_TILE']) {
      expect(flags).toContain(`-D${f}=OFF`);
    }
    expect(chessKernelIsa('avx2')).toBe('avx2');
  });

  it('avx2vnni builds add AVX-VNNI and nothing else to avx2', () => {
    const flags = ggmlIsaFlags('avx2vnni');
    const on = flags.filter((f) => f.endsWith('=ON')).map((f) => f.slice(2, -3));
    expect(on.sort()).toEqual(['GGML_AVX', 'GGML_AVX2', 'GGML_AVX_VNNI', 'GGML_BMI2', 'GGML_F16C', 'GGML_FMA']);
    for (const f of ['GGML_AVX512', 'GGML_AVX512_VBMI', 'GGML_AVX512_VNNI', 'GGML_AVX512_BF16', 'GGML_AMX_TILE']) {
      expect(flags).toContain(`-D${f}=OFF`);
    }
    expect(chessKernelIsa('avx2vnni')).toBe('avx2vnni');
  });

  it('avx512 builds keep the flag set of the cached stock tools (no AMX)', () => {
    expect(ggmlIsaFlags('avx512')).toEqual([
      '-DGGML_NATIVE=OFF', '-DGGML_AVX=ON', '-DGGML_AVX2=ON', '-DGGML_FMA=ON', '-DGGML_F16C=ON', '-DGGML_BMI2=ON',
      '-DGGML_AVX512=ON', '-DGGML_AVX512_VBMI=ON', '-DGGML_AVX512_VNNI=ON', '-DGGML_AVX512_BF16=ON',
      '-DGGML_AMX_TILE=OFF', '-DGGML_AMX_INT8=OFF', '-DGGML_AMX_BF16=OFF',
    ]);
    expect(chessKernelIsa('avx512')).toBeUndefined();
  });

  it('tool builds are static Release builds at the level, without network code or servers', () => {
    for (const level of ['avx2', 'avx2vnni', 'avx512'] as const) {
      const flags = llamaToolBuildFlags(level);
      expect(flags[0]).toBe('-DCMAKE_BUILD_TYPE=Release');
      expect(flags).toEqual(expect.arrayContaining([...ggmlIsaFlags(level), '-DBUILD_SHARED_LIBS=OFF', '-DLLAMA_CURL=OFF', '-DLLAMA_BUILD_SERVER=OFF', '-DLLAMA_BUILD_TOOLS=ON']));
    }
  });

  it("the host's stock tools are built like the patched addon: native, shared, the addon's release flags", () => {
    const flags = nativeToolBuildFlags();
    expect(flags).toEqual(expect.arrayContaining(['-DCMAKE_BUILD_TYPE=Release', '-DGGML_NATIVE=ON', '-DBUILD_SHARED_LIBS=ON', '-DLLAMA_CURL=OFF', '-DLLAMA_BUILD_TOOLS=ON']));
    // node-llama-cpp's addon build is native and shared; its release flags are the only options we add
    for (const [key, value] of Object.entries(addonCmakeOptions())) expect(flags).toContain(`-D${key}=${value}`);
    // this machine's compiler (gcc 12) knows every excluded instruction set's option
    expect(addonCmakeOptions().CMAKE_CXX_FLAGS_RELEASE).toBe('-O3 -DNDEBUG -mno-amx-tile -mno-amx-int8 -mno-amx-bf16 -mno-avx512fp16');
  });

  it('picks the highest level a CPU executes from its flags', () => {
    const zen4 = 'fpu sse2 avx2 fma f16c bmi2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512vbmi avx512_vnni';
    const skylakeX = 'fpu sse2 avx2 fma f16c bmi2 avx512f avx512dq avx512cd avx512bw avx512vl'; // no VNNI/VBMI/BF16
    const alderLake = 'fpu sse2 avx2 fma f16c bmi2 avx_vnni';
    const haswell = 'fpu sse2 avx2 fma f16c bmi2';
    const sandyBridge = 'fpu sse2 avx';
    expect(x86LevelOfCpuFlags(new Set(zen4.split(' ')))).toBe('avx512');
    expect(x86LevelOfCpuFlags(new Set(skylakeX.split(' ')))).toBe('avx2');
    expect(x86LevelOfCpuFlags(new Set(alderLake.split(' ')))).toBe('avx2vnni');
    expect(x86LevelOfCpuFlags(new Set(haswell.split(' ')))).toBe('avx2');
    expect(x86LevelOfCpuFlags(new Set(sandyBridge.split(' ')))).toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), 'chess-cpuinfo-'));
    writeFileSync(join(dir, 'cpuinfo'), `processor\t: 0\nflags\t\t: ${alderLake}\n\nprocessor\t: 1\nflags\t\t: ${alderLake}\n`);
    expect(hostX86Level(join(dir, 'cpuinfo'))).toBe('avx2vnni');
    expect(hostX86Level(join(dir, 'missing'))).toBeUndefined();
  });

  it('rejects an unknown level with a usage error naming the option', () => {
    expect(parseX86Level('avx2')).toBe('avx2');
    expect(() => parseX86Level('sse4', '--x86')).toThrow(/--x86 sse4: expected one of avx512, avx2vnni, avx2/);
  });
});
