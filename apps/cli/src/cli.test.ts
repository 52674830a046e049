import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readdir, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL, fetchDefaultModel, sha256File } from '@chess/assets';

const main = join(dirname(fileURLToPath(import.meta.url)), 'main.ts');
let work: string;
let model: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function chess(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile('tsx', [main, ...args], { maxBuffer: 64 << 20, env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-cli-'));
  model = await fetchDefaultModel();
}, 300_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

// Each test starts the CLI in a child process (tsx) and reads the 100 MB model: a loaded
// 2-core machine takes tens of seconds, far beyond vitest's 5 s default.
describe('chess CLI', { timeout: 300_000 }, () => {
  it('model fetch prints the cached model path as its last line', async () => {
    const run = await chess('model', 'fetch');
    expect(run.code).toBe(0);
    expect(run.stdout.trim().split('\n').at(-1)).toBe(model);
  });

  it('inspect --json reports architecture, hyperparameters and the tensor table', async () => {
    const run = await chess('inspect', model, '--json');
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.architecture).toBe('llama');
    expect(report.hyperparameters['llama.block_count']).toBe(30);
    expect(report.tensors).toHaveLength(272);
    expect(report.byType.q4_1.tensors).toBe(210);
    expect(report.sparsity).toBeNull();
    expect(new Set(report.tensors.map((t: { layout: string }) => t.layout))).toEqual(new Set(['rows']));
    expect(report.tensors.reduce((n: number, t: { bytes: number }) => n + t.bytes, 0)).toBeLessThan(report.fileSize);
  });

  it('ir prints the verified IR of the model', async () => {
    const run = await chess('ir', model);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^arch llama$/m);
    expect(run.stdout).toContain('%ffn_gate_par.29 = mul %ffn_silu.29 %ffn_up.29');
  });

  it('import with no pass reproduces the source byte for byte', async () => {
    const out = join(work, 'reimported.gguf');
    const run = await chess('import', model, '--out', out);
    expect(run.code).toBe(0);
    expect(run.stdout.trim().split('\n').at(-1)).toBe(out);
    expect(await sha256File(out)).toBe(DEFAULT_MODEL.sha256);
  });

  it('reports a truncated file with its error code and byte offset, and writes nothing', async () => {
    const broken = join(work, 'truncated.gguf');
    await copyFile(model, broken);
    await truncate(broken, 1000);
    const out = join(work, 'never', 'out.gguf');
    const run = await chess('import', broken, '--out', out);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^error\[GGUF_TRUNCATED\]: .*truncated\.gguf.*byte \d+/m);
    expect(await readdir(work)).not.toContain('never');
  });

  it('names a missing file', async () => {
    const run = await chess('inspect', join(work, 'missing.gguf'));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/error\[GGUF_IO_ERROR\]: .*missing\.gguf/);
  });

  it('rejects bad synth options before any work, with exit code 2', async () => {
    const out = join(work, 'synth.gguf');
    const badType = await chess('model', 'synth', '--shape', 'smollm2', '--type', 'q3_K', '--out', out);
    expect(badType.code).toBe(2);
    expect(badType.stderr).toMatch(/error\[SYNTH_BAD_TYPE\]: --type: 'q3_K'/);
    const badShape = await chess('model', 'synth', '--shape', 'gpt-9', '--type', 'q4_0', '--out', out);
    expect(badShape.code).toBe(2);
    expect(badShape.stderr).toMatch(/error\[SYNTH_BAD_SHAPE\]/);
    expect(await readdir(work)).not.toContain('synth.gguf');
  });

  it('rejects bad quantize options before any work, with exit code 2', async () => {
    const out = join(work, 'quantized.gguf');
    const badType = await chess('model', 'quantize', '--model', model, '--type', 'q3_k_s', '--out', out);
    expect(badType.code).toBe(2);
    expect(badType.stderr).toMatch(/error\[QUANTIZE_BAD_TYPE\]: --type: 'q3_k_s' .*q4_k_m/);
    const missing = await chess('model', 'quantize', '--model', join(work, 'absent.gguf'), '--type', 'q8_0', '--out', out, '--threads', '1');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/error\[QUANTIZE_BAD_INPUT\]: .*absent\.gguf does not exist/);
    expect(await readdir(work)).not.toContain('quantized.gguf');
  });

  it('exits 2 on an unknown command', async () => {
    const run = await chess('frobnicate');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/unknown command 'frobnicate'/);
  });
});
