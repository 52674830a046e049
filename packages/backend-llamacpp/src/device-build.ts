/**
 * The patched llama.cpp programs for a device (`chess pack`): built for a target CPU family
 * rather than this machine, with nothing beyond the C library needed at run time.
 *
 * - linux-x86_64: shared ggml/llama libraries with ggml's CPU backend loaded at run time
 *   (GGML_BACKEND_DL): one libggml-cpu-<level>.so per x86 level (avx2, avx2vnni, avx512;
 *   x86-level.ts), each a plain cmake build of that level whose score function tells ggml's
 *   loader whether the CPU runs it; the best one that runs is loaded. Our kernels (in
 *   libllama) pick their ISA at run time themselves (native/src/chess_dispatch.c).
 * - linux-aarch64: cross-compiled with Debian's cross toolchain (native/cmake/aarch64-linux-gnu.cmake).
 *   A baseline build (ARMv8.0-A: ggml -march=armv8-a, our NEON kernels without SDOT) and a
 *   dot-product build of the two libraries that differ (libggml-cpu: -march=armv8.2-a+dotprod;
 *   libllama: our kernels with CHESS_NEON_DOTPROD) in bin/dotprod/: the bundle's `run`
 *   entry point puts that directory first on the library path when the CPU has `asimddp`.
 *
 * Every library and program has the run path $ORIGIN; libstdc++ and libgcc_s of the
 * toolchain are bundled beside them. A probe program (device/chess-cpu.c, static) prints the
 * CPU features the run script checks. Cached by target, the backend hash (patch series, our
 * sources, kernels) and the recipe below; built under the cache lock, in a tree keyed by the
 * patch series (deviceTreeKey) so that a kernel change rebuilds incrementally.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { chmod, copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { cpus } from 'node:os';
import { basename, join } from 'node:path';
import { ChessError, UsageError, cachePath, withCacheLock, writeFileAtomic } from '@chess/core';
import { LLAMA_CPP_COMMIT } from '@chess/assets';
import { backendHash, packageRoot, preparePatchedSource, seriesHash } from './build.ts';
import { buildProgress, findOnPath, requireTools, runCommand, type Log } from './process.ts';
import { ggmlIsaFlags, type X86Level } from './x86-level.ts';

export type DeviceTarget = 'linux-x86_64' | 'linux-aarch64';
export const DEVICE_TARGETS: readonly DeviceTarget[] = ['linux-x86_64', 'linux-aarch64'];

/** The programs a device gets. */
export const DEVICE_TOOLS = ['llama-completion', 'llama-server', 'llama-bench', 'llama-perplexity'] as const;

/** Bump when the recipe changes in a way the hashed inputs do not show. */
const DEVICE_RECIPE_VERSION = 1;

/** x86 levels built as ggml CPU backends, the first also builds the programs. */
const X86_DEVICE_LEVELS: readonly X86Level[] = ['avx2', 'avx2vnni', 'avx512'];

/** Packages that provide the aarch64 cross build and its emulator (Debian/Ubuntu). */
export const CROSS_APT_PACKAGES = ['gcc-aarch64-linux-gnu', 'g++-aarch64-linux-gnu', 'libc6-dev-arm64-cross', 'qemu-user'];
export const AARCH64_SYSROOT = '/usr/aarch64-linux-gnu';

/** Shared cmake options of every device build. */
const COMMON_FLAGS: readonly string[] = [
  '-DCMAKE_BUILD_TYPE=Release',
  '-DBUILD_SHARED_LIBS=ON',
  '-DGGML_NATIVE=OFF',
  '-DGGML_OPENMP=OFF',
  '-DGGML_CCACHE=OFF',
  '-DLLAMA_CURL=OFF',
  '-DLLAMA_OPENSSL=OFF',
  '-DLLAMA_BUILD_TESTS=OFF',
  '-DLLAMA_BUILD_EXAMPLES=OFF',
  '-DLLAMA_BUILD_TOOLS=ON',
  '-DLLAMA_BUILD_SERVER=ON',
  '-DLLAMA_BUILD_APP=OFF',
  '-DLLAMA_BUILD_UI=OFF',
  '-DLLAMA_USE_PREBUILT_UI=OFF',
  '-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON',
  '-DCMAKE_INSTALL_RPATH=$ORIGIN',
];

export interface DeviceBuildFlags {
  /** The main build (programs and shared libraries). */
  main: string[];
  /** Extra builds of single libraries: name of the variant, its flags and targets. */
  variants: { name: string; flags: string[]; targets: string[] }[];
}

/** The cmake options of a target's builds (recorded in the bundle's manifest). */
export function deviceBuildFlags(target: DeviceTarget): DeviceBuildFlags {
  if (target === 'linux-x86_64') {
    const dl = ['-DGGML_BACKEND_DL=ON', '-DGGML_CPU_ALL_VARIANTS=OFF'];
    return {
      main: [...COMMON_FLAGS, ...dl, ...ggmlIsaFlags(X86_DEVICE_LEVELS[0]!)],
      variants: X86_DEVICE_LEVELS.slice(1).map((level) => ({ name: level, flags: [...COMMON_FLAGS, ...dl, ...ggmlIsaFlags(level)], targets: ['ggml-cpu'] })),
    };
  }
  const toolchain = `-DCMAKE_TOOLCHAIN_FILE=${join(packageRoot(), 'native', 'cmake', 'aarch64-linux-gnu.cmake')}`;
  return {
    main: [...COMMON_FLAGS, toolchain, '-DGGML_CPU_ARM_ARCH=armv8-a', '-DCHESS_NEON_DOTPROD=OFF'],
    variants: [{ name: 'dotprod', flags: [...COMMON_FLAGS, toolchain, '-DGGML_CPU_ARM_ARCH=armv8.2-a+dotprod', '-DCHESS_NEON_DOTPROD=ON'], targets: ['ggml-cpu', 'llama'] }],
  };
}

/**
 * The flags as the manifest records them (and as the build's hash sees them): paths into this
 * checkout relative to the repository, so that checkouts elsewhere give the same bundle.
 */
export function recordedFlags(target: DeviceTarget): DeviceBuildFlags {
  const relative = (flag: string): string => flag.split(packageRoot()).join('packages/backend-llamacpp');
  const flags = deviceBuildFlags(target);
  return { main: flags.main.map(relative), variants: flags.variants.map((v) => ({ ...v, flags: v.flags.map(relative) })) };
}

/** CPU features (names as the probe prints them) the lowest build of a target needs. */
export function deviceCpuRequirements(target: DeviceTarget): string[] {
  return target === 'linux-x86_64' ? ['avx2', 'fma', 'f16c', 'bmi2'] : ['asimd'];
}

export interface DeviceBuild {
  target: DeviceTarget;
  /** Identity of the build: target, backend hash, recipe. */
  hash: string;
  /** Patch series hash (seriesHash) and backend hash (series + our sources + kernels). */
  seriesHash: string;
  backendHash: string;
  llamaCppCommit: string;
  /** Directory whose files go into the bundle as they are (bin/...). */
  dir: string;
  /** Relative paths of the files in `dir`, sorted. */
  files: string[];
  flags: DeviceBuildFlags;
  cpuRequirements: string[];
}

export function parseDeviceTarget(value: string, option = '--target'): DeviceTarget {
  if ((DEVICE_TARGETS as readonly string[]).includes(value)) return value as DeviceTarget;
  throw new UsageError('PACK_BAD_TARGET', `${option} ${value}: expected one of ${DEVICE_TARGETS.join(', ')}`, { option, value });
}

function probeSource(): string {
  return join(packageRoot(), 'device', 'chess-cpu.c');
}

/**
 * Hash naming a target's build tree in the cache: the recipe, the target, the patch series and
 * the flags. A change of only our own sources (llama-src/, native/: the kernels) is rebuilt
 * incrementally in the same tree (minutes, not the full build's half hour), as the backend does.
 */
export function deviceTreeKey(target: DeviceTarget): string {
  return createHash('sha256')
    .update(`device recipe ${DEVICE_RECIPE_VERSION}\ntarget ${target}\nseries ${seriesHash()}\n${JSON.stringify(recordedFlags(target))}\n`)
    .digest('hex')
    .slice(0, 16);
}

/** Identity of a target's programs: the tree key's inputs plus our sources (backendHash) and the CPU probe. */
export function deviceBuildHash(target: DeviceTarget): string {
  const hash = createHash('sha256');
  hash.update(`device recipe ${DEVICE_RECIPE_VERSION}\ntarget ${target}\nbackend ${backendHash()}\n${JSON.stringify(recordedFlags(target))}\n`);
  hash.update(readFileSync(probeSource()));
  return hash.digest('hex').slice(0, 16);
}

interface Marker {
  hash: string;
  files: string[];
}

function readMarker(path: string): Marker | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Marker;
  } catch {
    return undefined;
  }
}

/**
 * Build (or find in the cache) the device programs of a target. A second call with the same
 * inputs does no work.
 */
export async function buildDeviceTools(target: DeviceTarget, options: { log?: Log; jobs?: number } = {}): Promise<DeviceBuild> {
  const log = options.log ?? (() => undefined);
  const jobs = options.jobs ?? Math.max(1, cpus().length);
  const hash = deviceBuildHash(target);
  const root = cachePath('llama.cpp', `device-${target}-${deviceTreeKey(target)}`);
  const out = join(root, 'out');
  const markerPath = join(root, '.chess-complete');
  const result = (marker: Marker): DeviceBuild => ({
    target,
    hash,
    seriesHash: seriesHash(),
    backendHash: backendHash(),
    llamaCppCommit: LLAMA_CPP_COMMIT,
    dir: out,
    files: marker.files,
    flags: recordedFlags(target),
    cpuRequirements: deviceCpuRequirements(target),
  });
  const done = (): Marker | undefined => {
    const m = readMarker(markerPath);
    return m && m.hash === hash && m.files.every((f) => existsSync(join(out, f))) ? m : undefined;
  };
  const cached = done();
  if (cached) return result(cached);
  await mkdir(root, { recursive: true });
  return withCacheLock(root, { what: `the ${target} device build`, waitMs: 180 * 60_000, log }, async () => {
    const again = done();
    if (again) return result(again);
    const files = await buildLocked(target, root, out, jobs, log);
    const marker: Marker = { hash, files };
    await writeFileAtomic(markerPath, `${JSON.stringify(marker)}\n`);
    return result(marker);
  });
}

async function requireCrossToolchain(): Promise<void> {
  const missing = ['aarch64-linux-gnu-gcc', 'aarch64-linux-gnu-g++'].filter((tool) => findOnPath(tool) === undefined);
  if (!existsSync(join(AARCH64_SYSROOT, 'lib', 'libc.so'))) missing.push(join(AARCH64_SYSROOT, 'lib', 'libc.so'));
  if (missing.length > 0) {
    throw new ChessError(
      'PACK_TOOLCHAIN_MISSING',
      `the linux-aarch64 bundle is cross-compiled with Debian's cross toolchain; missing: ${missing.join(', ')}. Install it (as root): apt-get install -y --no-install-recommends ${CROSS_APT_PACKAGES.join(' ')}`,
      { missing },
    );
  }
}

async function step(command: string, args: readonly string[], what: string, log: Log, label?: string): Promise<void> {
  const r = await runCommand(command, args, label ? { onLine: buildProgress(label, log) } : {});
  if (r.code !== 0) throw new ChessError('PACK_BUILD_FAILED', `${what} failed:\n${r.tail.slice(-40).join('\n')}`, { step: what });
}

async function cmakeBuildDir(sourceDir: string, buildDir: string, flags: readonly string[], targets: readonly string[], jobs: number, label: string, log: Log): Promise<void> {
  log(`configuring ${label} in ${buildDir}`);
  await step('cmake', ['-S', sourceDir, '-B', buildDir, ...(findOnPath('ninja') ? ['-G', 'Ninja'] : []), ...flags], `cmake configure of ${label}`, log);
  log(`building ${targets.join(', ')} (${label}) with ${jobs} jobs`);
  await step('cmake', ['--build', buildDir, '--config', 'Release', '-j', String(jobs), '--target', ...targets], `building ${targets.join(', ')} (${label})`, log, label);
}

/** SONAME of a shared library (readelf reads any architecture's ELF), or its file name. */
async function soname(file: string): Promise<string> {
  let text = '';
  const r = await runCommand('readelf', ['-d', file], { onLine: (line) => (text += `${line}\n`) });
  if (r.code !== 0) throw new ChessError('PACK_BUILD_FAILED', `readelf -d ${file} failed: ${r.tail.join(' ')}`, { file });
  return /\(SONAME\)\s+Library soname: \[([^\]]+)\]/.exec(text)?.[1] ?? basename(file);
}

/**
 * The shared libraries of a build's bin/ under the names the programs ask for (their SONAME;
 * versioned names and link-time symlinks are resolved to one regular file each).
 */
async function collectLibraries(binDir: string, toDir: string, rename: (name: string) => string = (n) => n): Promise<string[]> {
  const names: string[] = [];
  const seen = new Set<string>();
  for (const entry of readdirSync(binDir).sort()) {
    if (!/\.so(\.\d+)*$/.test(entry)) continue;
    const real = realpathSync(join(binDir, entry));
    if (seen.has(real) || !statSync(real).isFile()) continue;
    seen.add(real);
    const name = rename(await soname(real));
    await copyFile(real, join(toDir, name));
    names.push(name);
  }
  return names;
}

async function compilerFile(compiler: string, name: string): Promise<string> {
  let path = '';
  const r = await runCommand(compiler, [`-print-file-name=${name}`], { onLine: (line) => (path = line.trim()) });
  if (r.code !== 0 || !path.startsWith('/') || !existsSync(path)) {
    throw new ChessError('PACK_BUILD_FAILED', `${compiler} does not know where ${name} is (got '${path}')`, { compiler, name });
  }
  return realpathSync(path);
}

async function buildLocked(target: DeviceTarget, root: string, out: string, jobs: number, log: Log): Promise<string[]> {
  requireTools([
    { names: ['cmake'], purpose: 'configures llama.cpp' },
    { names: ['c++', 'g++'], purpose: 'C++ compiler' },
    { names: ['cc', 'gcc'], purpose: 'C compiler' },
    { names: ['git'], purpose: 'applies the patch series' },
    { names: ['readelf'], purpose: 'reads the libraries\' names (binutils)' },
  ]);
  if (target === 'linux-aarch64') await requireCrossToolchain();
  const started = Date.now();
  const sourceDir = join(root, 'src');
  await preparePatchedSource(sourceDir, log);
  const flags = deviceBuildFlags(target);
  const mainBuild = join(root, 'build-main');
  await cmakeBuildDir(sourceDir, mainBuild, flags.main, [...DEVICE_TOOLS], jobs, `${target} programs`, log);
  for (const variant of flags.variants) {
    await cmakeBuildDir(sourceDir, join(root, `build-${variant.name}`), variant.flags, variant.targets, jobs, `${target} ${variant.name}`, log);
  }
  const tmp = `${out}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  const bin = join(tmp, 'bin');
  await mkdir(bin, { recursive: true });
  const files: string[] = [];
  for (const tool of DEVICE_TOOLS) {
    const from = join(mainBuild, 'bin', tool);
    if (!existsSync(from)) throw new ChessError('PACK_BUILD_FAILED', `${tool} missing in ${join(mainBuild, 'bin')} after the build`, { tool });
    await copyFile(from, join(bin, tool));
    files.push(`bin/${tool}`);
  }
  if (target === 'linux-x86_64') {
    const cpuName = (name: string, level: X86Level) => (/^libggml-cpu\.so/.test(name) ? `libggml-cpu-${level}.so` : name);
    for (const name of await collectLibraries(join(mainBuild, 'bin'), bin, (n) => cpuName(n, X86_DEVICE_LEVELS[0]!))) files.push(`bin/${name}`);
    for (const variant of flags.variants) {
      const from = join(root, `build-${variant.name}`, 'bin', 'libggml-cpu.so');
      if (!existsSync(from)) throw new ChessError('PACK_BUILD_FAILED', `libggml-cpu.so missing in the ${variant.name} build`, { variant: variant.name });
      await copyFile(from, join(bin, `libggml-cpu-${variant.name}.so`));
      files.push(`bin/libggml-cpu-${variant.name}.so`);
    }
  } else {
    for (const name of await collectLibraries(join(mainBuild, 'bin'), bin)) files.push(`bin/${name}`);
    for (const variant of flags.variants) {
      const dir = join(bin, variant.name);
      await mkdir(dir, { recursive: true });
      const wanted = new Set(variant.targets.map((t) => `lib${t}.so`));
      const variantBin = join(root, `build-${variant.name}`, 'bin');
      for (const entry of readdirSync(variantBin).sort()) {
        if (!wanted.has(entry)) continue;
        const real = realpathSync(join(variantBin, entry));
        const name = await soname(real);
        await copyFile(real, join(dir, name));
        files.push(`bin/${variant.name}/${name}`);
      }
      if (files.filter((f) => f.startsWith(`bin/${variant.name}/`)).length !== wanted.size) {
        throw new ChessError('PACK_BUILD_FAILED', `the ${variant.name} build lacks one of ${[...wanted].join(', ')}`, { variant: variant.name });
      }
    }
  }
  // the C++ runtime of the toolchain, beside the programs ($ORIGIN run path)
  const cxx = target === 'linux-x86_64' ? (findOnPath('g++') ? 'g++' : 'c++') : 'aarch64-linux-gnu-g++';
  for (const lib of ['libstdc++.so.6', 'libgcc_s.so.1']) {
    await copyFile(await compilerFile(cxx, lib), join(bin, lib));
    files.push(`bin/${lib}`);
  }
  // the CPU probe: static, so it runs wherever the kernel does
  const cc = target === 'linux-x86_64' ? (findOnPath('gcc') ? 'gcc' : 'cc') : 'aarch64-linux-gnu-gcc';
  await step(cc, ['-O2', '-std=c11', '-static', '-o', join(bin, 'chess-cpu'), probeSource()], `compiling the CPU probe (${cc})`, log);
  files.push('bin/chess-cpu');
  for (const file of files) await chmod(join(tmp, file), /\.so/.test(file) ? 0o644 : 0o755);
  await rm(out, { recursive: true, force: true });
  await rename(tmp, out);
  log(`${target} device programs ready in ${Math.round((Date.now() - started) / 1000)} s: ${out}`);
  return files.sort();
}
