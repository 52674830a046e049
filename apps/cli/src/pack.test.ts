// `chess pack --target linux-x86_64`: the bundle is built (the device programs in the cache:
// minutes on an empty cache), unpacked in an empty directory and run with an environment
// that has no Node.js and no pnpm (`env -i PATH=/usr/bin:/bin`): `./run check`, `./run bench`
// (a few tokens; `chess report` renders its JSON), `./run serve` answering one chat
// completion over HTTP. An altered or missing file fails `./run check`, naming it; two packs
// of the same inputs are the same bytes; nothing beyond the C library is needed (readelf).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, unlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchDefaultModel } from '@chess/assets';
import { makeSparseTestModel } from '@chess/backend-llamacpp';
import { readModelInfo } from '@chess/bench';

const main = join(dirname(fileURLToPath(import.meta.url)), 'main.ts');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(cmd: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 64 << 20, cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeout ?? 0 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const chess = (...args: string[]): Promise<Run> => exec('tsx', [main, ...args], { env: { ...process.env, NO_COLOR: '1' } });
/** The device's environment: no Node.js, no pnpm, nothing from this machine's session. */
const DEVICE_ENV = { PATH: '/usr/bin:/bin' };
const device = (dir: string, ...args: string[]): Promise<Run> => exec('env', ['-i', 'PATH=/usr/bin:/bin', './run', ...args], { cwd: dir, env: DEVICE_ENV });

const sha256 = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

let work: string;
let dense: string;
let sparse: string;
let bundle: string;
let unpacked: string;

async function unpack(archive: string, name: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir);
  expect(await readdir(dir)).toEqual([]);
  const run = await exec('tar', ['-xzf', archive, '-C', dir]);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return dir;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-pack-'));
  const source = await fetchDefaultModel();
  // the sparse SmolLM2 (CHESS+ 25 %, column blocks; synthetic thresholds: at 50 % they garble SmolLM2's text, and llama-server's chat parser refuses garbage) and its dense source, under names of our own
  const sparseCached = await makeSparseTestModel({ method: 'chess+', source, layout: 'column-blocks', sparsity: 0.25 });
  dense = join(work, 'smollm2-dense.gguf');
  sparse = join(work, 'smollm2-chess+25.gguf');
  await symlink(source, dense);
  await symlink(sparseCached, sparse);
  bundle = join(work, 'bundle.tar.gz');
  const run = await chess('pack', '--model', sparse, '--model', dense, '--target', 'linux-x86_64', '--out', bundle);
  if (run.code !== 0) throw new Error(`chess pack failed (${run.code}):\n${run.stderr}`);
  expect(run.stdout.trim().split('\n').at(-1)).toBe(bundle);
  unpacked = await unpack(bundle, 'device');
}, 120 * 60_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('chess pack --target linux-x86_64', { timeout: 20 * 60_000 }, () => {
  it('holds the models, the programs, a manifest whose hashes and model facts are right, and SHA256SUMS', async () => {
    const manifest = JSON.parse(await readFile(join(unpacked, 'manifest.json'), 'utf8'));
    expect(manifest.kind).toBe('chess-bundle');
    expect(manifest.target).toBe('linux-x86_64');
    // the dense model first (the bench's baseline), the sparse one served
    expect(manifest.models.map((m: { file: string }) => m.file)).toEqual(['models/smollm2-dense.gguf', 'models/smollm2-chess+25.gguf']);
    expect(manifest.serveModel).toBe('models/smollm2-chess+25.gguf');
    for (const [m, path] of [[manifest.models[0], dense], [manifest.models[1], sparse]] as const) {
      const info = await readModelInfo(path);
      expect({ method: m.method, sparsity: m.sparsity, architecture: m.architecture, sizeBytes: m.sizeBytes }).toEqual({
        method: info.method,
        sparsity: info.sparsity,
        architecture: info.architecture,
        sizeBytes: info.sizeBytes,
      });
    }
    expect(manifest.models[1].method).toBe('chess+');
    expect(manifest.models[1].layout).toBe('column-blocks');
    expect(manifest.llamaCpp.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(manifest.llamaCpp.patchSeriesHash).toMatch(/^[0-9a-f]{16}$/);
    expect(manifest.llamaCpp.patches).toContain('0003-chess-sparse-build.patch');
    expect(manifest.build.flags.main).toContain('-DGGML_BACKEND_DL=ON');
    // every file of the bundle but the manifest and SHA256SUMS is listed, with its real sha256 and size
    const listed = new Map<string, { sha256: string; bytes: number }>(manifest.files.map((f: { path: string; sha256: string; bytes: number }) => [f.path, f]));
    const onDisk: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) await walk(join(dir, entry.name), `${prefix}${entry.name}/`);
        else onDisk.push(`${prefix}${entry.name}`);
      }
    };
    await walk(unpacked, '');
    expect(onDisk.filter((p) => p !== 'manifest.json' && p !== 'SHA256SUMS').sort()).toEqual([...listed.keys()].sort());
    for (const [path, f] of listed) {
      expect(await sha256(join(unpacked, path)), path).toBe(f.sha256);
      expect((await stat(join(unpacked, path))).size, path).toBe(f.bytes);
    }
    for (const tool of ['llama-completion', 'llama-server', 'llama-bench', 'llama-perplexity']) expect(listed.has(`bin/${tool}`)).toBe(true);
    // one ggml CPU backend per x86 level, chosen at run time
    for (const level of ['avx2', 'avx2vnni', 'avx512']) expect(listed.has(`bin/libggml-cpu-${level}.so`)).toBe(true);
    const sums = (await readFile(join(unpacked, 'SHA256SUMS'), 'utf8')).trim().split('\n');
    expect(sums).toContain(`${await sha256(join(unpacked, 'manifest.json'))}  manifest.json`);
  });

  it('needs nothing beyond the C library: every ELF file asks only for bundled libraries and libc, with run path $ORIGIN', async () => {
    const bin = join(unpacked, 'bin');
    const bundled = new Set(await readdir(bin));
    const system = /^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|ld-linux-x86-64\.so\.2)$/;
    let elves = 0;
    for (const name of bundled) {
      const run = await exec('readelf', ['-d', join(bin, name)]);
      if (run.code !== 0 && /Not an ELF file/.test(run.stderr)) continue;
      elves++;
      const needed = [...run.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
      for (const lib of needed) expect(bundled.has(lib) || system.test(lib), `${name} needs ${lib}`).toBe(true);
      // ours find each other through $ORIGIN (the toolchain's libstdc++/libgcc_s come as they are; ./run also sets LD_LIBRARY_PATH)
      if (!/^(libstdc\+\+\.so\.6|libgcc_s\.so\.1)$/.test(name) && needed.some((lib) => bundled.has(lib))) expect(run.stdout, name).toMatch(/\((RUNPATH|RPATH)\)\s+Library (runpath|rpath): \[\$ORIGIN\]/);
    }
    expect(elves).toBeGreaterThanOrEqual(10);
  });

  it('./run check passes in an environment without Node.js or pnpm and names the CPU variant', async () => {
    const run = await device(unpacked, 'check');
    expect(run.stderr).not.toMatch(/error\[/);
    expect(run.code).toBe(0);
    const manifest = JSON.parse(await readFile(join(unpacked, 'manifest.json'), 'utf8'));
    expect(run.stdout.trim()).toBe(`ok linux-x86_64 ${manifest.id}`);
    expect(run.stderr).toMatch(/files: \d+ verified \(sha256\)/);
    expect(run.stderr).toMatch(/cpu: linux-x86_64 needs avx2 fma f16c bmi2: present; will run ggml CPU backend/);
  });

  it('./run bench measures dense and sparse interleaved, and chess report renders its JSON labelled with the device CPU', async () => {
    const run = await device(unpacked, 'bench', '--tokens', '4', '--rounds', '2', '--threads', '2', '--out', 'result.json');
    expect(run.stderr).not.toMatch(/error\[/);
    expect(run.code).toBe(0);
    const result = JSON.parse(await readFile(join(unpacked, 'result.json'), 'utf8'));
    expect(result.kind).toBe('chess-device-bench');
    expect(result.runs).toHaveLength(4);
    // rotated order per round: dense, sparse, then sparse, dense
    expect(result.runs.map((r: { model: number; round: number }) => `${r.round}:${r.model}`)).toEqual(['0:0', '0:1', '1:1', '1:0']);
    for (const r of result.runs) expect(r.llamaBench[0].n_gen).toBe(4);
    // the patched runtime counted the sparse model's thresholds, not the dense one's
    expect(result.runs.filter((r: { model: number; sparsityReport: unknown }) => r.model === 1 && r.sparsityReport !== null)).toHaveLength(2);
    const report = await chess('report', join(unpacked, 'result.json'), '--md', join(work, 'report.md'));
    expect(report.stderr).not.toMatch(/error\[/);
    expect(report.code).toBe(0);
    const md = await readFile(join(work, 'report.md'), 'utf8');
    expect(md).toContain('smollm2-chess+25.gguf');
    expect(md).toContain('smollm2-dense.gguf');
    expect(md).toContain(`bundle ${result.bundle.id} linux-x86_64`);
    expect(md).toContain(result.device.cpu);
    // the sparse model's achieved sparsity is read from the device's counters
    const sparseRow = md.split('\n').find((l) => l.startsWith('| smollm2-chess+25.gguf'))!;
    expect(sparseRow).toMatch(/\| \d+\.\d% \|/);
  });

  it('./run serve answers a chat completion over HTTP (OpenAI-compatible) on the sparse model', async () => {
    const port = await freePort();
    const server: ChildProcess = spawn('env', ['-i', 'PATH=/usr/bin:/bin', './run', 'serve', '--port', String(port), '-t', '2', '-c', '512'], {
      cwd: unpacked,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    server.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
    try {
      const deadline = Date.now() + 5 * 60_000;
      for (;;) {
        if (server.exitCode !== null) throw new Error(`./run serve exited ${server.exitCode}:\n${log}`);
        const ok = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
        if (ok) break;
        if (Date.now() > deadline) throw new Error(`llama-server not ready after 5 minutes:\n${log}`);
        await new Promise((r) => setTimeout(r, 500));
      }
      const response = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'What is the capital of France?' }], max_tokens: 12, temperature: 0 }),
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { object: string; model: string; choices: { message: { role: string; content: string } }[]; usage: { completion_tokens: number } };
      expect(body.object).toBe('chat.completion');
      expect(body.choices[0]!.message.role).toBe('assistant');
      expect(body.choices[0]!.message.content.trim().length).toBeGreaterThan(0);
      expect(body.usage.completion_tokens).toBeGreaterThan(0);
      expect(log).toContain('serve: models/smollm2-chess+25.gguf');
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => (server.exitCode !== null ? r(null) : server.once('exit', r)));
    }
  });

  it('./run check fails naming an altered file, and a missing one', async () => {
    const copy = await unpack(bundle, 'altered');
    await appendFile(join(copy, 'bin', 'libggml-base.so.0'), Buffer.from([0]));
    const altered = await device(copy, 'check');
    expect(altered.code).toBe(1);
    expect(altered.stderr).toMatch(/error\[BUNDLE_FILE_ALTERED\]: bin\/libggml-base\.so\.0: sha256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}/);
    expect(altered.stderr).toContain('error[BUNDLE_CHECK_FAILED]');
    expect(altered.stdout).toBe('');
    await copyFile(join(unpacked, 'bin', 'libggml-base.so.0'), join(copy, 'bin', 'libggml-base.so.0'));
    await unlink(join(copy, 'models', 'smollm2-dense.gguf'));
    const missing = await device(copy, 'check');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('error[BUNDLE_FILE_MISSING]: models/smollm2-dense.gguf: missing');
    expect(missing.stderr).not.toContain('BUNDLE_FILE_ALTERED');
  });

  it('is reproducible: packing the same inputs again gives the same bytes (made again, and from the cache)', async () => {
    const again = join(work, 'again.tar.gz');
    const remade = await chess('pack', '--model', sparse, '--model', dense, '--target', 'linux-x86_64', '--out', again, '--no-cache');
    expect(remade.code).toBe(0);
    expect(remade.stderr).not.toContain('from the cache');
    // the same inputs: an edit of the kernels or llama-src/ between the two packs (another session's) rebuilds the programs
    const manifestOf = async (archive: string) => JSON.parse((await exec('tar', ['-xzOf', archive, './manifest.json'])).stdout);
    expect((await manifestOf(again)).build.hash, 'the sources changed between the two packs: not the same inputs').toBe((await manifestOf(bundle)).build.hash);
    expect(await sha256(again)).toBe(await sha256(bundle));
    const cached = join(work, 'cached.tar.gz');
    const hit = await chess('pack', '--model', sparse, '--model', dense, '--target', 'linux-x86_64', '--out', cached);
    expect(hit.code).toBe(0);
    expect(hit.stderr).toContain('from the cache');
    expect(await sha256(cached)).toBe(await sha256(bundle));
    // tar entries: sorted, fixed time and owner
    const list = await exec('tar', ['-tvzf', bundle], { env: { ...process.env, TZ: 'UTC' } });
    const names = list.stdout.trim().split('\n').map((l) => l.split(/\s+/).slice(5).join(' '));
    expect(names).toEqual([...names].sort());
    for (const line of list.stdout.trim().split('\n')) expect(line).toMatch(/^\S+ 0\/0 +\d+ 2024-01-01 00:00 /);
  });

  it('refuses a bad target and a model that is not a GGUF, with error codes', async () => {
    const target = await chess('pack', '--model', sparse, '--target', 'linux-riscv64', '--out', join(work, 'x.tar.gz'));
    expect(target.code).toBe(2);
    expect(target.stderr).toContain('error[PACK_BAD_TARGET]');
    const notGguf = join(work, 'notes.gguf');
    await appendFile(notGguf, 'not a model');
    const bad = await chess('pack', '--model', notGguf, '--target', 'linux-x86_64', '--out', join(work, 'y.tar.gz'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/error\[GGUF_[A-Z_]+\]/);
    expect(bad.stderr).toContain('notes.gguf');
  });
});
