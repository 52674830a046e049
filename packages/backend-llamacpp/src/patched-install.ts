import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { cp, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { ChessError, cachePath } from '@chess/core';
import { buildProgress, runCommand, type Log } from './process.ts';
import { nodeLlamaCppDir } from '@chess/assets';
import { nativeReleaseFlags } from './x86-level.ts';

/**
 * The patched addon lives in a second node-llama-cpp install of the same
 * version, under the cache, so the workspace's install keeps loading the stock
 * prebuilt binary (`@node-llama-cpp/linux-x64`) for dense baselines.
 *
 * The second install is assembled offline: node-llama-cpp's own files are
 * copied (without its bundle and local builds), and the prebuilt-binary
 * packages are left out on purpose, so this install can only ever load its
 * local build: a failed build is an error, never a silent fallback to the
 * stock binary. Its dependencies are copied too (see copyDependencies): the
 * cache outlives the checkout that filled it, and CI runs clean clones against
 * this machine's cache.
 */
export function patchedNodeLlamaCppDir(hash: string): string {
  return cachePath('node-llama-cpp', `patched-${hash}`);
}

/** The node-llama-cpp package directory inside an install root. */
export function packageDirOf(installRoot: string): string {
  return join(installRoot, 'node_modules', 'node-llama-cpp');
}

/**
 * CMake options of the patched addon build (on top of node-llama-cpp's own: CPU only,
 * Release, GGML_NATIVE on): nativeReleaseFlags() (the stock tools for this machine use the
 * same). node-llama-cpp puts these options in its build folder name, so the loader passes
 * the same ones.
 */
export function addonCmakeOptions(): Readonly<Record<string, string>> {
  const flags = nativeReleaseFlags();
  return { CMAKE_C_FLAGS_RELEASE: flags, CMAKE_CXX_FLAGS_RELEASE: flags };
}

const SKIPPED_LLAMA_ENTRIES = new Set(['gitRelease.bundle', 'localBuilds', 'llama.cpp', 'lastBuild.json', '.temp']);

/** The single local build of a patched install (its cmake build tree; outputs in Release/). */
export function localBuildTree(root: string): string | undefined {
  const dir = join(packageDirOf(root), 'llama', 'localBuilds');
  const builds = existsSync(dir) ? readdirSync(dir).filter((name) => existsSync(join(dir, name, 'Release'))) : [];
  return builds.length === 1 ? join(dir, builds[0]!) : undefined;
}

/** "steps done / total" of the ninja build under localBuilds (best effort). */
function ninjaProgress(localBuilds: string): string {
  try {
    for (const name of readdirSync(localBuilds)) {
      const tree = join(localBuilds, name);
      if (!existsSync(join(tree, 'build.ninja'))) continue;
      const total = (readFileSync(join(tree, 'build.ninja'), 'utf8').match(/^build /gm) ?? []).length;
      const done = existsSync(join(tree, '.ninja_log')) ? readFileSync(join(tree, '.ninja_log'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).length : 0;
      return `${done} of about ${total} build steps done`;
    }
  } catch {
    // the tree is being created
  }
  return 'configuring';
}

export async function ensurePatchedNodeLlamaCpp(args: {
  hash: string;
  sourceDir: string;
  log: Log;
}): Promise<{ root: string; buildTree: string; fresh: boolean }> {
  const { hash, sourceDir, log } = args;
  const root = patchedNodeLlamaCppDir(hash);
  const marker = join(root, '.chess-complete');
  const existing = localBuildTree(root);
  const stock = realpathSync(nodeLlamaCppDir());
  if (existsSync(marker) && existing) {
    // installs from before dependencies were copied link into a checkout that may be gone
    if (!patchedDependenciesIntact(root)) await copyDependencies(root, stock, log);
    return { root, buildTree: existing, fresh: false };
  }
  const started = Date.now();
  const pkg = packageDirOf(root);
  await rm(root, { recursive: true, force: true });
  await mkdir(join(pkg, 'llama'), { recursive: true });
  log(`assembling a separate node-llama-cpp install in ${root}`);
  for (const entry of ['package.json', 'LICENSE', 'dist', 'bins']) {
    if (existsSync(join(stock, entry))) await cp(join(stock, entry), join(pkg, entry), { recursive: true });
  }
  for (const entry of readdirSync(join(stock, 'llama'))) {
    if (SKIPPED_LLAMA_ENTRIES.has(entry)) continue;
    if (entry === 'xpack') continue; // cmake download cache; we require a system cmake
    await cp(join(stock, 'llama', entry), join(pkg, 'llama', entry), { recursive: true });
  }
  // The patched tree is used in place (node-llama-cpp builds from llama/llama.cpp).
  await symlink(sourceDir, join(pkg, 'llama', 'llama.cpp'), 'dir');

  await copyDependencies(root, stock, log);
  const modules = join(root, 'node_modules');

  log('building the node-llama-cpp addon against the patched tree');
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true', NODE_LLAMA_CPP_GPU: 'false' };
  for (const key of Object.keys(env)) if (key.startsWith('NODE_LLAMA_CPP_CMAKE_OPTION_')) delete env[key];
  for (const [key, value] of Object.entries(addonCmakeOptions())) env[`NODE_LLAMA_CPP_CMAKE_OPTION_${key}`] = value;
  env.PATH = `${join(modules, '.bin')}:${env.PATH ?? ''}`;
  // node-llama-cpp runs cmake-js quietly; report progress from ninja's log of finished steps
  const ticker = setInterval(() => log(`addon: ${ninjaProgress(join(pkg, 'llama', 'localBuilds'))}`), 30_000);
  const result = await runCommand(process.execPath, [join(pkg, 'dist', 'cli', 'cli.js'), 'source', 'build', '--gpu', 'false', '--noUsageExample'], {
    cwd: root,
    env,
    onLine: buildProgress('addon', log),
  }).finally(() => clearInterval(ticker));
  const buildTree = localBuildTree(root);
  if (result.code !== 0 || !buildTree) {
    throw new ChessError(
      'BACKEND_BUILD_FAILED',
      `building the node-llama-cpp addon against ${sourceDir} failed:\n${result.tail.slice(-40).join('\n')}`,
      { step: 'addon', root },
    );
  }
  await writeFile(marker, `${JSON.stringify({ hash, buildTree, seconds: (Date.now() - started) / 1000 })}\n`);
  log(`patched node-llama-cpp addon ready (${Math.round((Date.now() - started) / 1000)} s)`);
  return { root, buildTree, fresh: true };
}

/** `name` and `@scope/name` entries of a node_modules directory (dot entries left out). */
function packageEntries(modules: string): string[] {
  if (!existsSync(modules)) return [];
  const names: string[] = [];
  for (const name of readdirSync(modules)) {
    if (name.startsWith('.')) continue;
    if (name.startsWith('@')) for (const child of readdirSync(join(modules, name))) names.push(`${name}/${child}`);
    else names.push(name);
  }
  return names;
}

/**
 * The pnpm store entries (`.pnpm/<name@version>`) that node-llama-cpp needs, found by
 * following the relative links pnpm puts beside each package, without the prebuilt
 * binaries (@node-llama-cpp/*) and without node-llama-cpp's own entry (copied apart).
 */
function dependencyClosure(stock: string): { store: string; entries: string[]; direct: Map<string, string> } {
  const ownModules = dirname(stock); // .pnpm/<node-llama-cpp entry>/node_modules
  const ownEntry = dirname(ownModules);
  const store = dirname(ownEntry);
  const entryOf = (modules: string, name: string): string | undefined => {
    const link = join(modules, name);
    if (!lstatSync(link).isSymbolicLink()) return undefined;
    const target = resolve(dirname(link), readlinkSync(link));
    const rel = relative(store, target);
    if (rel.startsWith('..') || isAbsolute(rel)) {
      throw new ChessError('BACKEND_BUILD_FAILED', `node-llama-cpp's dependency ${name} links outside the pnpm store ${store}: ${target}`, { link, target });
    }
    return rel.split('/')[0]!;
  };
  const direct = new Map<string, string>();
  const seen = new Set<string>();
  const pending: string[] = [];
  for (const name of packageEntries(ownModules)) {
    if (name === 'node-llama-cpp' || name.startsWith('@node-llama-cpp/')) continue;
    const entry = entryOf(ownModules, name);
    if (!entry) continue;
    direct.set(name, entry);
    pending.push(entry);
  }
  while (pending.length > 0) {
    const entry = pending.pop()!;
    if (seen.has(entry) || entry === relative(store, ownEntry)) continue;
    seen.add(entry);
    const modules = join(store, entry, 'node_modules');
    for (const name of packageEntries(modules)) {
      if (name.startsWith('@node-llama-cpp/')) continue;
      const dep = entryOf(modules, name);
      if (dep && !seen.has(dep)) pending.push(dep);
    }
  }
  return { store, entries: [...seen].sort(), direct };
}

/**
 * Copy node-llama-cpp's dependency closure into `<root>/node_modules/.pnpm` (pnpm's
 * relative links kept as they are, so each package still finds its own versions)
 * and link `<root>/node_modules/<name>` to it: the install depends on nothing
 * outside the cache. The copy is staged and renamed, and each top-level link is
 * replaced by a rename, so a repair never leaves a half-written tree.
 */
export async function copyDependencies(root: string, stock: string, log: Log): Promise<void> {
  const { store, entries, direct } = dependencyClosure(stock);
  const modules = join(root, 'node_modules');
  const staged = join(modules, `.pnpm.partial-${process.pid}`);
  log(`copying node-llama-cpp's ${entries.length} dependency packages into ${modules}`);
  await rm(staged, { recursive: true, force: true });
  await mkdir(staged, { recursive: true });
  for (const entry of entries) {
    await cp(join(store, entry), join(staged, entry), { recursive: true, verbatimSymlinks: true });
  }
  await rm(join(modules, '.pnpm'), { recursive: true, force: true });
  await rename(staged, join(modules, '.pnpm'));
  for (const [name, entry] of direct) {
    const link = join(modules, name);
    await mkdir(dirname(link), { recursive: true });
    const temp = `${link}.link-${process.pid}`;
    await rm(temp, { force: true });
    await symlink(relative(dirname(link), join(modules, '.pnpm', entry, 'node_modules', name)), temp, 'dir');
    await rm(link, { recursive: true, force: true });
    await rename(temp, link);
  }
  await mkdir(join(modules, '.bin'), { recursive: true });
  const cmakeJs = join(modules, '.bin', 'cmake-js');
  await rm(cmakeJs, { force: true });
  await symlink(join('..', 'cmake-js', 'bin', 'cmake-js'), cmakeJs);
}

/**
 * Whether every dependency of a patched install resolves inside the install (an
 * install whose links point into a deleted checkout fails at import time with
 * "Cannot find package").
 */
export function patchedDependenciesIntact(root: string): boolean {
  const modules = join(root, 'node_modules');
  const names = packageEntries(modules).filter((name) => name !== 'node-llama-cpp');
  if (names.length === 0) return false;
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
  } catch {
    return false;
  }
  for (const name of names) {
    try {
      if (!realpathSync(join(modules, name)).startsWith(`${realRoot}/`)) return false;
    } catch {
      return false; // dangling
    }
  }
  return true;
}
