import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChessError, cachePath, withCacheLock, writeFileAtomic } from '@chess/core';
import { addonCmakeOptions, ensurePatchedNodeLlamaCpp, patchedDependenciesIntact, patchedNodeLlamaCppDir } from './patched-install.ts';
import { buildProgress, requireTools, runCommand, type Log } from './process.ts';
import { LLAMA_CPP_COMMIT, ensureLlamaSource, nodeLlamaCppDir } from '@chess/assets';

/** Root of this package (packages/backend-llamacpp). */
export function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..');
}

/**
 * Bump when the recipe below changes in a way the hashed inputs do not show
 * (cmake flags, layout of the output directory).
 */
const RECIPE_VERSION = 4;

/** The llama.cpp tools we build (only these targets: a full build takes far longer). */
// llama-cli needs the server (LLAMA_BUILD_SERVER) in this release; llama-completion is the classic CLI.
export const BACKEND_TOOLS = ['llama-bench', 'llama-perplexity', 'llama-completion', 'llama-imatrix'] as const;

/** node-llama-cpp's addon target in its build tree. */
const ADDON_TARGET = 'llama-addon';

/**
 * Extra CMake options for the tools, set on node-llama-cpp's build tree of the
 * addon after the addon is built (that tree is CPU-only, Release, GGML_NATIVE on,
 * no CURL/HTTPLIB/OpenSSL, no tests or examples): the tools reuse its ggml and
 * llama libraries instead of compiling them a second time.
 */
const TOOLS_CMAKE_OPTIONS: Readonly<Record<string, string>> = {
  LLAMA_BUILD_TOOLS: 'ON',
  LLAMA_BUILD_SERVER: 'OFF',
  LLAMA_BUILD_TESTS: 'OFF',
  LLAMA_BUILD_EXAMPLES: 'OFF',
};

/** Our patch series (applied after node-llama-cpp's own patches, in file-name order). */
const PATCHES_DIR = 'patches';
/** Our own llama.cpp source files (referenced by the patches), synced into the tree's src/. */
const LLAMA_SRC_DIR = 'llama-src';
/** The kernel library (chess_sparse); synced into the tree as chess-native/ (CHESS_SPARSE_DIR default). */
const NATIVE_DIR = 'native';
const NATIVE_DIR_IN_TREE = 'chess-native';

export interface BackendBuildOptions {
  log?: Log;
  /** Parallel compile jobs (default: number of CPUs). */
  jobs?: number;
}

export interface BackendInfo {
  /** Identity of the binaries: hash of the patch series, our sources, the kernels and the recipe. */
  hash: string;
  /** The patched llama.cpp tree. */
  sourceDir: string;
  /** Directory holding llama-bench, llama-perplexity, llama-completion, llama-imatrix and their shared libraries. */
  binDir: string;
  /** Separate node-llama-cpp install whose local build is the patched addon. */
  nodeLlamaCppDir: string;
}

export interface BackendStatus extends BackendInfo {
  /** Tools and addon both built for the current sources. */
  built: boolean;
}

function listFiles(root: string, skip: (relativePath: string) => boolean = () => false): string[] {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = join(dir, entry.name);
      const rel = relative(root, full);
      if (skip(rel)) continue;
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) out.push(full);
    }
  };
  walk(root);
  return out;
}

/** Source files of native/ (build directories and objects are not sources). */
function nativeFiles(root = packageRoot()): string[] {
  return listFiles(join(root, NATIVE_DIR), (rel) => /(^|\/)(build[^/]*|\.cache|node_modules)$/.test(rel) || /\.(o|a|so)$/.test(rel));
}

function llamaSrcFiles(root = packageRoot()): string[] {
  return listFiles(join(root, LLAMA_SRC_DIR));
}

export function patchFiles(root = packageRoot()): string[] {
  return listFiles(join(root, PATCHES_DIR)).filter((file) => file.endsWith('.patch'));
}

function nodeLlamaCppPatchFiles(): string[] {
  return listFiles(join(nodeLlamaCppDir(), 'llama', 'patches')).filter((file) => file.endsWith('.diff'));
}

/**
 * Everything applied to the pristine tree, in order: node-llama-cpp's own
 * patches (it applies them before building its prebuilt binaries, so applying
 * them too keeps the patched build comparable with the stock one), then ours.
 */
export function fullPatchSeries(): string[] {
  return [...nodeLlamaCppPatchFiles(), ...patchFiles()];
}

function hashFiles(hash: ReturnType<typeof createHash>, group: string, root: string, files: readonly string[]): void {
  for (const file of files) {
    const data = readFileSync(file);
    hash.update(`${group}:${relative(root, file)}:${data.length}\n`);
    hash.update(data);
  }
}

/**
 * Hash of what shapes the patched tree: llama.cpp commit, node-llama-cpp's and
 * our patch series, the recipe. It names the cache directories; a change means
 * a fresh tree and a full build.
 */
export function seriesHash(root = packageRoot()): string {
  const hash = createHash('sha256');
  hash.update(`recipe ${RECIPE_VERSION}\ncommit ${LLAMA_CPP_COMMIT}\n${JSON.stringify(TOOLS_CMAKE_OPTIONS)}\n${JSON.stringify(addonCmakeOptions())}\n`);
  hashFiles(hash, 'nlc-patches', nodeLlamaCppDir(), nodeLlamaCppPatchFiles());
  hashFiles(hash, 'patches', root, patchFiles(root));
  return hash.digest('hex').slice(0, 16);
}

/**
 * Hash of everything the binaries depend on: the series plus our llama.cpp
 * sources and the kernel library. A change of only these is rebuilt
 * incrementally in the existing tree. `root` (default: this package) lets a
 * test hash a copy of the sources.
 */
export function backendHash(root = packageRoot()): string {
  const hash = createHash('sha256');
  hash.update(`series ${seriesHash(root)}\n`);
  hashFiles(hash, 'llama-src', root, llamaSrcFiles(root));
  hashFiles(hash, 'native', root, nativeFiles(root));
  return hash.digest('hex').slice(0, 16);
}

function backendDirs(series: string): { root: string; sourceDir: string; binDir: string; marker: string } {
  const root = cachePath('llama.cpp', `patched-${series}`);
  return { root, sourceDir: join(root, 'src'), binDir: join(root, 'bin'), marker: join(root, '.chess-complete') };
}

/** Directory of the patched tools for the current patch series (whether built or not). */
export function backendPath(): string {
  return backendDirs(seriesHash()).binDir;
}

function builtHash(marker: string): string | undefined {
  if (!existsSync(marker)) return undefined;
  try {
    return (JSON.parse(readFileSync(marker, 'utf8')) as { hash?: string }).hash;
  } catch {
    return undefined;
  }
}

export function backendStatus(): BackendStatus {
  const series = seriesHash();
  const hash = backendHash();
  const dirs = backendDirs(series);
  return {
    hash,
    sourceDir: dirs.sourceDir,
    binDir: dirs.binDir,
    nodeLlamaCppDir: patchedNodeLlamaCppDir(series),
    built: builtHash(dirs.marker) === hash && patchedDependenciesIntact(patchedNodeLlamaCppDir(series)),
  };
}

/**
 * Build the patched llama.cpp backend; a second call with unchanged sources
 * does no work.
 * 1. Copy the pristine tree, apply node-llama-cpp's patches then ours (once per
 *    patch series), and sync our sources (llama-src/) and the kernel library
 *    (native/) into it.
 * 2. Build node-llama-cpp's addon against it, in a separate node-llama-cpp
 *    install (the workspace's install keeps the stock prebuilt binary); later
 *    source changes rebuild incrementally in the same build tree.
 * 3. Build the tools (llama-bench, ...) in the addon's build tree, which already
 *    holds the compiled ggml and llama libraries, and collect them in binDir.
 */
export async function buildBackend(options: BackendBuildOptions = {}): Promise<BackendInfo> {
  const log = options.log ?? (() => undefined);
  const jobs = options.jobs ?? Math.max(1, cpus().length);
  const series = seriesHash();
  const hash = backendHash();
  const dirs = backendDirs(series);
  const info: BackendInfo = { hash, sourceDir: dirs.sourceDir, binDir: dirs.binDir, nodeLlamaCppDir: patchedNodeLlamaCppDir(series) };
  if (builtHash(dirs.marker) === hash && patchedDependenciesIntact(info.nodeLlamaCppDir)) return info;
  await mkdir(dirname(dirs.root), { recursive: true });
  // one build at a time per tree (the CLI and parallel test files may race); a build takes
  // 10-40 minutes on 2 busy cores, so waiters wait up to two hours
  return withCacheLock(dirs.root, { what: 'the patched llama.cpp build', waitMs: 120 * 60_000, log }, async () => {
    if (builtHash(dirs.marker) === hash && patchedDependenciesIntact(info.nodeLlamaCppDir)) return info; // built by the process we waited for
    await buildLocked(dirs, series, hash, jobs, log);
    return info;
  });
}

async function buildLocked(dirs: ReturnType<typeof backendDirs>, series: string, hash: string, jobs: number, log: Log): Promise<void> {
  requireTools([
    { names: ['cmake'], purpose: 'configures llama.cpp' },
    { names: ['c++', 'g++', 'clang++'], purpose: 'C++ compiler' },
    { names: ['cc', 'gcc', 'clang'], purpose: 'C compiler' },
    { names: ['git'], purpose: 'applies the patch series' },
  ]);
  const started = Date.now();
  if (!existsSync(join(dirs.sourceDir, '.chess-patched'))) await preparePatchedTree(dirs.sourceDir, log);
  const changed = await syncOwnSources(dirs.sourceDir);
  const install = await ensurePatchedNodeLlamaCpp({ hash: series, sourceDir: dirs.sourceDir, log });
  if (!install.fresh && changed > 0) {
    log(`${changed} source file(s) changed: rebuilding the addon incrementally`);
    await cmakeBuild(install.buildTree, [ADDON_TARGET], jobs, 'addon', log);
    await refreshAddonLibraries(install.buildTree);
  }
  await buildTools(install.buildTree, dirs.binDir, jobs, log);
  const seconds = (Date.now() - started) / 1000;
  await writeFileAtomic(dirs.marker, `${JSON.stringify({ hash, series, builtAt: new Date().toISOString(), seconds })}\n`);
  log(`patched llama.cpp backend ready in ${Math.round(seconds)} s: tools in ${dirs.binDir}`);
}

/**
 * One cmake build at a time in a cache directory: `lockDir` is `<dir>.lock`, taken
 * through @chess/core's cache lock (bounded wait, progress, dead owners taken over).
 */
export function withBuildLock<T>(lockDir: string, log: Log, fn: () => Promise<T>): Promise<T> {
  const entry = lockDir.replace(/\.lock$/, '');
  return withCacheLock(entry, { what: `the build in ${entry}`, waitMs: 120 * 60_000, log }, fn);
}

/**
 * Apply patches in order with `git apply` (all or nothing per patch). A patch
 * that does not apply raises PATCH_FAILED naming the patch file.
 */
export async function applyPatchSeries(treeDir: string, patches: readonly string[], log: Log = () => undefined): Promise<void> {
  for (const patch of patches) {
    log(`applying ${basename(patch)}`);
    const result = await runCommand('git', ['-C', treeDir, 'apply', '--whitespace=nowarn', patch]);
    if (result.code !== 0) {
      throw new ChessError(
        'PATCH_FAILED',
        `patch ${patch} does not apply to ${treeDir} (llama.cpp ${LLAMA_CPP_COMMIT.slice(0, 7)}): ${result.tail.join(' | ')}`,
        { patch, treeDir, commit: LLAMA_CPP_COMMIT },
      );
    }
  }
}

/** Clone the pristine tree and apply node-llama-cpp's patches then ours. */
async function preparePatchedTree(sourceDir: string, log: Log): Promise<void> {
  const pristine = await ensureLlamaSource(log);
  const tmp = `${sourceDir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(dirname(sourceDir), { recursive: true });
  log(`copying llama.cpp ${LLAMA_CPP_COMMIT.slice(0, 7)} to ${sourceDir}`);
  const clone = await runCommand('git', ['clone', '-q', '--no-hardlinks', pristine, tmp]);
  if (clone.code !== 0) {
    throw new ChessError('LLAMA_SOURCE_FAILED', `git clone of ${pristine} failed: ${clone.tail.join('\n')}`, { pristine });
  }
  const series = fullPatchSeries();
  try {
    await applyPatchSeries(tmp, series, log);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
  await writeFile(join(tmp, '.chess-patched'), `${JSON.stringify({ commit: LLAMA_CPP_COMMIT, series: series.map((p) => basename(p)) })}\n`);
  await rm(sourceDir, { recursive: true, force: true });
  await rename(tmp, sourceDir);
}

/**
 * A patched tree of its own at `sourceDir` (pristine clone, the full patch series, our
 * llama-src/ and native/ synced in), for builds other than the backend's (device bundles);
 * the caller holds a lock on it. Done once; later calls only sync changed own sources.
 */
export async function preparePatchedSource(sourceDir: string, log: Log = () => undefined): Promise<void> {
  if (!existsSync(join(sourceDir, '.chess-patched'))) await preparePatchedTree(sourceDir, log);
  await syncOwnSources(sourceDir);
}

/**
 * Copy llama-src/ into the tree's src/ and native/ into chess-native/, writing
 * only files whose content differs (unchanged files keep their timestamps, so
 * the incremental build recompiles only what changed). Returns the number of
 * files written or removed.
 */
async function syncOwnSources(sourceDir: string): Promise<number> {
  let changed = 0;
  const sync = async (fromRoot: string, files: readonly string[], toRoot: string): Promise<void> => {
    for (const file of files) {
      const target = join(toRoot, relative(fromRoot, file));
      const data = await readFile(file);
      if (existsSync(target) && (await readFile(target)).equals(data)) continue;
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, data);
      changed++;
    }
  };
  await sync(join(packageRoot(), LLAMA_SRC_DIR), llamaSrcFiles(), join(sourceDir, 'src'));
  const native = nativeFiles();
  const nativeTree = join(sourceDir, NATIVE_DIR_IN_TREE);
  await sync(join(packageRoot(), NATIVE_DIR), native, nativeTree);
  const wanted = new Set(native.map((file) => relative(join(packageRoot(), NATIVE_DIR), file)));
  for (const file of listFiles(nativeTree)) {
    if (!wanted.has(relative(nativeTree, file))) {
      await rm(file);
      changed++;
    }
  }
  return changed;
}

async function cmakeBuild(buildTree: string, targets: readonly string[], jobs: number, label: string, log: Log): Promise<void> {
  const build = await runCommand('cmake', ['--build', buildTree, '--config', 'Release', '-j', String(jobs), '--target', ...targets], {
    onLine: buildProgress(label, log),
  });
  if (build.code !== 0) {
    throw new ChessError('BACKEND_BUILD_FAILED', `building ${targets.join(', ')} in ${buildTree} failed:\n${build.tail.slice(-40).join('\n')}`, {
      step: label,
      buildTree,
    });
  }
}

/**
 * node-llama-cpp loads the addon from <tree>/Release, where its own build copied
 * the shared libraries from <tree>/bin once; after an incremental rebuild the
 * copies must be refreshed (the addon's rpath is $ORIGIN).
 */
async function refreshAddonLibraries(buildTree: string): Promise<void> {
  const release = join(buildTree, 'Release');
  for (const name of readdirSync(release).filter((file) => file.endsWith('.so'))) {
    const fresh = join(buildTree, 'bin', name);
    if (existsSync(fresh)) await cp(fresh, join(release, name));
  }
}

async function buildTools(buildTree: string, binDir: string, jobs: number, log: Log): Promise<void> {
  const cache = readFileSync(join(buildTree, 'CMakeCache.txt'), 'utf8');
  if (!/^LLAMA_BUILD_TOOLS:BOOL=ON$/m.test(cache)) {
    const defines = Object.entries(TOOLS_CMAKE_OPTIONS).map(([key, value]) => `-D${key}=${value}`);
    log(`configuring the tools in ${buildTree}`);
    const configure = await runCommand('cmake', [...defines, buildTree]);
    if (configure.code !== 0) {
      throw new ChessError('BACKEND_BUILD_FAILED', `cmake configure of the tools in ${buildTree} failed:\n${configure.tail.slice(-40).join('\n')}`, {
        step: 'configure-tools',
        buildTree,
      });
    }
  }
  log(`building ${BACKEND_TOOLS.join(', ')} with ${jobs} jobs`);
  await cmakeBuild(buildTree, BACKEND_TOOLS, jobs, 'tools', log);
  // The tree's bin/ holds the tools, their *-impl libraries and the ggml/llama shared
  // libraries they link ($ORIGIN rpath): copy it whole.
  const treeBin = join(buildTree, 'bin');
  const tmp = `${binDir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  for (const tool of BACKEND_TOOLS) {
    if (!existsSync(join(treeBin, tool))) throw new ChessError('BACKEND_BUILD_FAILED', `${tool} missing in ${treeBin} after the build`, { step: 'collect', tool });
  }
  for (const name of readdirSync(treeBin)) {
    if ((BACKEND_TOOLS as readonly string[]).includes(name) || name.endsWith('.so')) await cp(join(treeBin, name), join(tmp, name));
  }
  await rm(binDir, { recursive: true, force: true });
  await rename(tmp, binDir);
}

