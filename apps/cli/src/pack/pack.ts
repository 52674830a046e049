/**
 * `chess pack`: a self-contained bundle for a device (a .tar.gz): the model files, the patched
 * llama.cpp programs built for the target (@chess/backend-llamacpp buildDeviceTools), a
 * manifest, SHA256SUMS and the POSIX-sh entry point `run` (run.sh beside this file).
 *
 * Reproducible: no time stamps in any file, tar entries sorted by name with fixed mtime,
 * owner and modes, gzip without a time stamp; the same inputs give the same bytes. Cached by
 * its inputs (the device build's hash, each model's sha256 and name, this recipe and run.sh)
 * under the cache's bundles/ folder; the output is written atomically.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync, statSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, rename, rm, symlink, writeFile, chmod } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { ChessError, UsageError, cachePath, temporarySiblingPath } from '@chess/core';
import { buildDeviceTools, fullPatchSeries, type DeviceBuild, type DeviceTarget } from '@chess/backend-llamacpp';
import { readModelInfo, readWeightTable, weightLayout } from '@chess/bench';
import { sha256File } from '@chess/assets';

/** Bump when the bundle's layout or files change in a way the hashed inputs do not show. */
const PACK_RECIPE_VERSION = 1;
/** Every tar entry's modification time (2024-01-01T00:00:00Z): fixed, so that bundles are reproducible. */
const TAR_MTIME = 1704067200;

export const RUN_SCRIPT_BODY = join(dirname(fileURLToPath(import.meta.url)), 'run.sh');

export interface PackOptions {
  models: readonly string[];
  target: DeviceTarget;
  out: string;
  /** Make the bundle again even when the cache has one for these inputs (the programs stay cached). */
  noCache?: boolean;
  log?: (line: string) => void;
}

export interface BundleModel {
  /** Path inside the bundle (models/<name>). */
  file: string;
  role: 'dense' | 'sparse';
  sha256: string;
  sizeBytes: number;
  method: string;
  sparsity: number;
  architecture: string | null;
  layout: string;
}

export interface BundleManifest {
  kind: 'chess-bundle';
  version: 1;
  id: string;
  target: DeviceTarget;
  models: BundleModel[];
  serveModel: string;
  llamaCpp: { commit: string; patchSeriesHash: string; backendHash: string; patches: string[] };
  build: { hash: string; cpuRequirements: string[]; flags: DeviceBuild['flags'] };
  files: { path: string; sha256: string; bytes: number }[];
}

export interface PackResult {
  out: string;
  id: string;
  cached: boolean;
  manifest: BundleManifest;
}

async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  return { sha256: await sha256File(path), bytes: statSync(path).size };
}

/** A name that the run script can use unquoted: letters, digits, dot, plus, dash, underscore. */
function bundleName(path: string): string {
  const name = basename(path);
  if (!/^[A-Za-z0-9._+-]+$/.test(name)) {
    throw new UsageError('PACK_BAD_MODEL_NAME', `--model ${path}: the file name '${name}' must use only letters, digits, '.', '+', '-' and '_' (it becomes models/${name} in the bundle); rename or link it`, { model: path });
  }
  return name;
}

const archOf = (target: DeviceTarget): string => (target === 'linux-x86_64' ? 'x86_64' : 'aarch64');

function runScript(manifest: BundleManifest, body: string): string {
  const models = manifest.models.map((m) => m.file).join(' ');
  return [
    '#!/bin/sh',
    `# CHESS device bundle for ${manifest.target}, made by \`chess pack\`: manifest.json lists every file.`,
    `BUNDLE_ID=${manifest.id}`,
    `BUNDLE_TARGET=${manifest.target}`,
    `BUNDLE_ARCH=${archOf(manifest.target)}`,
    `BUNDLE_REQUIRES="${manifest.build.cpuRequirements.join(' ')}"`,
    `BUNDLE_MODELS="${models}"`,
    `BUNDLE_SERVE_MODEL=${manifest.serveModel}`,
    body,
  ].join('\n');
}

/** Pack the models and the target's programs into a bundle at `options.out`. */
export async function packBundle(options: PackOptions): Promise<PackResult> {
  const log = options.log ?? (() => undefined);
  if (options.models.length === 0) throw new UsageError('PACK_NO_MODEL', 'give at least one --model (the sparse GGUF, and optionally its dense source)', {});
  const seen = new Set<string>();
  const models: (BundleModel & { path: string; tensors: Awaited<ReturnType<typeof readWeightTable>>; fileName: string })[] = [];
  for (const path of options.models) {
    const name = bundleName(path);
    if (seen.has(name)) throw new UsageError('PACK_DUPLICATE_MODEL', `--model ${path}: two models are named ${name}; the bundle holds models/<file name>`, { model: path });
    seen.add(name);
    const info = await readModelInfo(path); // our reader and the sparse contract: a bad file fails here, named
    const tensors = await readWeightTable(path);
    log(`hashing ${path}`);
    const sha256 = await sha256File(path);
    models.push({
      path: resolve(path),
      fileName: info.fileName,
      file: `models/${name}`,
      role: info.method === 'dense' ? 'dense' : 'sparse',
      sha256,
      sizeBytes: info.sizeBytes,
      method: info.method,
      sparsity: info.sparsity,
      architecture: info.architecture,
      layout: weightLayout(tensors),
      tensors,
    });
  }
  // the dense model first: it is the baseline of the bench's speedups
  models.sort((a, b) => (a.role === b.role ? 0 : a.role === 'dense' ? -1 : 1));
  const serve = models.find((m) => m.role === 'sparse') ?? models[0]!;
  const build = await buildDeviceTools(options.target, { log });
  const body = readFileSync(RUN_SCRIPT_BODY, 'utf8');
  const key = createHash('sha256')
    .update(`pack ${PACK_RECIPE_VERSION}\nbuild ${build.hash}\n${models.map((m) => `${m.file} ${m.sha256}`).join('\n')}\n`)
    .update(body)
    .digest('hex')
    .slice(0, 24);
  const cached = cachePath('bundles', `${options.target}-${key}.tar.gz`);
  const cachedManifest = `${cached}.manifest.json`;
  if (!options.noCache && existsSync(cached) && existsSync(cachedManifest)) {
    await copyAtomic(cached, options.out);
    const manifest = JSON.parse(readFileSync(cachedManifest, 'utf8')) as BundleManifest;
    log(`bundle ${manifest.id} from the cache`);
    return { out: options.out, id: manifest.id, cached: true, manifest };
  }

  const stageRoot = cachePath('bundles', 'stage');
  await mkdir(stageRoot, { recursive: true });
  const stage = await mkdtemp(join(stageRoot, `${options.target}-`));
  try {
    // programs: copies (their modes come from the build); models: links, read through by tar -h
    const files: BundleManifest['files'] = [];
    for (const file of build.files) {
      await mkdir(dirname(join(stage, file)), { recursive: true });
      await copyFile(join(build.dir, file), join(stage, file));
      files.push({ path: file, ...(await hashFile(join(stage, file))) });
    }
    await mkdir(join(stage, 'models'));
    for (const m of models) {
      await symlink(m.path, join(stage, m.file));
      files.push({ path: m.file, sha256: m.sha256, bytes: m.sizeBytes });
    }
    const benchModels = models.map((m) => ({
      file: m.file,
      role: m.role,
      fileName: m.fileName,
      sizeBytes: m.sizeBytes,
      method: m.method,
      sparsity: m.sparsity,
      architecture: m.architecture,
      layout: m.layout,
      tensors: m.tensors,
    }));
    await writeFile(join(stage, 'bench-models.json'), `${JSON.stringify(benchModels)}\n`);
    files.push({ path: 'bench-models.json', ...(await hashFile(join(stage, 'bench-models.json'))) });
    const id = createHash('sha256')
      .update(files.map((f) => `${f.sha256}  ${f.path}`).sort().join('\n'))
      .digest('hex')
      .slice(0, 16);
    const manifest: BundleManifest = {
      kind: 'chess-bundle',
      version: 1,
      id,
      target: options.target,
      models: models.map(({ file, role, sha256, sizeBytes, method, sparsity, architecture, layout }) => ({ file, role, sha256, sizeBytes, method, sparsity, architecture, layout })),
      serveModel: serve.file,
      llamaCpp: { commit: build.llamaCppCommit, patchSeriesHash: build.seriesHash, backendHash: build.backendHash, patches: fullPatchSeries().map((p) => basename(p)) },
      build: { hash: build.hash, cpuRequirements: build.cpuRequirements, flags: build.flags },
      files: [],
    };
    await writeFile(join(stage, 'run'), runScript(manifest, body));
    await chmod(join(stage, 'run'), 0o755);
    files.push({ path: 'run', ...(await hashFile(join(stage, 'run'))) });
    files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    manifest.files = files;
    const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
    await writeFile(join(stage, 'manifest.json'), manifestText);
    const sums = [...files, { path: 'manifest.json', ...(await hashFile(join(stage, 'manifest.json'))) }]
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
      .map((f) => `${f.sha256}  ${f.path}\n`)
      .join('');
    await writeFile(join(stage, 'SHA256SUMS'), sums);
    log(`writing the bundle (${models.length} model(s), ${build.files.length} program files)`);
    await writeTarGz(stage, cached);
    await writeFile(cachedManifest, manifestText);
    await copyAtomic(cached, options.out);
    return { out: options.out, id, cached: false, manifest };
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

/** `tar` of `dir` (sorted, fixed times, owners and modes, links followed), gzip without a time stamp, renamed into place. */
async function writeTarGz(dir: string, finalPath: string): Promise<void> {
  await mkdir(dirname(finalPath), { recursive: true });
  const tmp = temporarySiblingPath(finalPath);
  const args = [
    '--sort=name',
    '--format=gnu',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    `--mtime=@${TAR_MTIME}`,
    '--mode=a+rX,u+w,go-w',
    '--dereference',
    '-C',
    dir,
    '-cf',
    '-',
    '.',
  ];
  const child = spawn('tar', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number>((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolvePromise(code ?? 1));
  });
  try {
    await pipeline(child.stdout, createGzip({ level: 6 }), createWriteStream(tmp));
    const code = await exited;
    if (code !== 0) throw new ChessError('PACK_TAR_FAILED', `tar ${args.join(' ')} failed (exit ${code}): ${stderr.trim()}`, { code });
    const handle = await open(tmp, 'r+');
    await handle.sync();
    await handle.close();
    await rename(tmp, finalPath);
  } catch (error) {
    await rm(tmp, { force: true });
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !existsSync(tmp)) {
      throw new ChessError('PACK_TAR_FAILED', `tar (GNU tar) is needed to write the bundle: ${(error as Error).message}`, {});
    }
    throw error;
  }
}

async function copyAtomic(from: string, to: string): Promise<void> {
  const tmp = temporarySiblingPath(resolve(to));
  try {
    await copyFile(from, tmp);
    await rename(tmp, to);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}
