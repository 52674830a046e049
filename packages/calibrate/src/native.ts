/**
 * The native collector `chess-profile` (native/chess-profile.cpp): built with
 * cmake against the PATCHED llama.cpp build (the runtime that will execute the
 * compiled model), cached under `<cache>/calibrate/chess-profile-<hash>` where
 * the hash covers our C++ sources and the backend hash.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChessError, cachePath, ensureCacheDir } from '@chess/core';
import { LLAMA_CPP_COMMIT, backendStatus, buildBackend } from '@chess/backend-llamacpp';

export type Log = (line: string) => void;

const NATIVE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'native');
const NATIVE_SOURCES = ['CMakeLists.txt', 'chess-profile.cpp'];
export const TOOL_NAME = 'chess-profile';

export interface ProfileTool {
  /** Path of the chess-profile executable. */
  exe: string;
  /** Identity recorded in profiles: tool version, llama.cpp commit, patched-backend hash. */
  version: string;
}

function toolHash(backend: string): string {
  const hash = createHash('sha256');
  hash.update(`backend ${backend}\n`);
  // CMake's cache records its source directory: each checkout gets its own build tree.
  hash.update(`source ${NATIVE_DIR}\n`);
  for (const name of NATIVE_SOURCES) {
    const data = readFileSync(join(NATIVE_DIR, name));
    hash.update(`${name}:${data.length}\n`);
    hash.update(data);
  }
  return hash.digest('hex').slice(0, 16);
}

/** The shared libraries of the patched build to link: libllama, libggml, libggml-base (whatever their version suffix). */
function backendLibraries(binDir: string): string[] {
  const names = existsSync(binDir) ? readdirSync(binDir) : [];
  const pick = (re: RegExp, what: string): string => {
    const hit = names.filter((n) => re.test(n)).sort()[0];
    if (!hit) throw new ChessError('CALIBRATE_TOOL_BUILD_FAILED', `no ${what} shared library in the patched backend's ${binDir}`, { binDir, what });
    return join(binDir, hit);
  };
  return [pick(/^libllama(\.v[\w.]+)?\.so$/, 'libllama'), pick(/^libggml(\.v[\w.]+)?\.so$/, 'libggml'), pick(/^libggml-base\.so$/, 'libggml-base')];
}

interface BackendLocation {
  hash: string;
  sourceDir: string;
  binDir: string;
}

/**
 * Developer override: `CHESS_PROFILE_BACKEND_DIR=<cache>/llama.cpp/patched-<series>`
 * uses an already built patched tree (its src/, bin/ and .chess-complete) even
 * when the current sources would rebuild the backend (e.g. while the patch
 * series is being edited). The dense graph the collector observes does not
 * depend on the sparse kernels.
 */
function backendOverride(): BackendLocation | undefined {
  const root = process.env.CHESS_PROFILE_BACKEND_DIR;
  if (!root) return undefined;
  const marker = join(root, '.chess-complete');
  if (!existsSync(marker)) throw new ChessError('CALIBRATE_TOOL_BUILD_FAILED', `CHESS_PROFILE_BACKEND_DIR=${root}: no built backend there (${marker} missing)`, { root });
  const { hash } = JSON.parse(readFileSync(marker, 'utf8')) as { hash: string };
  return { hash, sourceDir: join(root, 'src'), binDir: join(root, 'bin') };
}

/** Build chess-profile if needed (building the patched backend first if needed); return it. */
export async function ensureProfileTool(log: Log = () => undefined): Promise<ProfileTool> {
  let status: BackendLocation & { built: boolean } = backendOverride() ? { ...backendOverride()!, built: true } : backendStatus();
  if (!status.built) {
    log('building the patched llama.cpp backend (first use; this takes a while)');
    await buildBackend({ log, jobs: 2 });
    status = backendStatus();
  }
  const hash = toolHash(status.hash);
  const version = `${TOOL_NAME} 2; llama.cpp ${LLAMA_CPP_COMMIT.slice(0, 12)}; chess backend ${status.hash}`;
  const dir = cachePath('calibrate', `${TOOL_NAME}-${hash}`);
  const exe = join(dir, TOOL_NAME);
  if (existsSync(exe)) return { exe, version };
  const libs = backendLibraries(status.binDir);
  const backend = status;
  // built in a scratch directory, the executable alone renamed into place (parallel callers wait)
  await ensureCacheDir(dir, {
    what: `the ${TOOL_NAME} build`,
    log,
    complete: (d) => existsSync(join(d, TOOL_NAME)),
    build: async (tmp) => {
      const work = await mkdtemp(`${dir}.build-`);
      try {
        log(`building ${TOOL_NAME} against the patched backend ${backend.hash}`);
        const configure = await runTool('cmake', [
          '-S', NATIVE_DIR, '-B', join(work, 'build'), '-DCMAKE_BUILD_TYPE=Release',
          `-DLLAMA_SOURCE_DIR=${backend.sourceDir}`, `-DLLAMA_LIB_DIR=${backend.binDir}`, `-DLLAMA_LIBRARIES=${libs.join(';')}`,
        ]);
        if (configure.code !== 0) throw buildError('configure', configure.tail);
        const build = await runTool('cmake', ['--build', join(work, 'build'), '-j', '2']);
        if (build.code !== 0) throw buildError('build', build.tail);
        await mkdir(tmp);
        await cp(join(work, 'build', TOOL_NAME), join(tmp, TOOL_NAME));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !(error instanceof ChessError)) {
          throw new ChessError('CALIBRATE_TOOL_BUILD_FAILED', `cannot build ${TOOL_NAME}: ${(error as Error).message} (is cmake installed?)`, {});
        }
        throw error;
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
  });
  return { exe, version };
}

function buildError(step: string, tail: string[]): ChessError {
  return new ChessError('CALIBRATE_TOOL_BUILD_FAILED', `${step} of ${TOOL_NAME} (${NATIVE_DIR}) failed:\n${tail.slice(-30).join('\n')}`, { step });
}

export interface ToolRun {
  code: number;
  /** Last 100 lines of stderr. */
  tail: string[];
}

/** Run a command; stdout lines go to onLine, stderr is kept for messages. Never throws on a non-zero exit. */
export function runTool(command: string, args: readonly string[], onLine: (line: string) => void = () => undefined, env?: NodeJS.ProcessEnv): Promise<ToolRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    const tail: string[] = [];
    let pendingOut = '';
    let pendingErr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = (pendingOut + chunk.toString('utf8')).split('\n');
      pendingOut = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      const lines = (pendingErr + chunk.toString('utf8')).split('\n');
      pendingErr = lines.pop() ?? '';
      for (const line of lines) {
        tail.push(line);
        if (tail.length > 100) tail.shift();
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (pendingOut) onLine(pendingOut);
      if (pendingErr) tail.push(pendingErr);
      if (signal) tail.push(`killed by ${signal}`);
      resolvePromise({ code: code ?? 1, tail });
    });
  });
}
