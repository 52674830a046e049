/**
 * The ONNX commands end to end in a child process: `chess export-onnx` of a
 * small synthetic GGUF writes an ONNX file (stdout: its path), `chess import`
 * of a malformed ONNX file prints error[ONNX_PARSE] and writes nothing, and
 * neither command writes over its input. (Agreement of the outputs with
 * onnxruntime and llama.cpp is tested in @chess/codegen-onnx and @chess/import-onnx.)
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGMLType } from '@chess/gguf';
import { parseShape, synthesizeModel } from '@chess/models';

const main = join(dirname(fileURLToPath(import.meta.url)), 'main.ts');
let work: string;
let tiny: string;

function chess(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('tsx', [main, ...args], { maxBuffer: 64 << 20, env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-cli-onnx-'));
  tiny = join(work, 'tiny.gguf');
  await synthesizeModel({ shape: parseShape('{"base":"smollm2","nLayer":2,"nEmbd":64,"nFF":128,"nHead":4,"nHeadKV":2}'), type: GGMLType.Q4_1, out: tiny, seed: 5 });
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('chess export-onnx / chess import (ONNX)', () => {
  it('export-onnx writes an ONNX model and prints its path', async () => {
    const out = join(work, 'tiny.onnx');
    const r = await chess('export-onnx', tiny, '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(out);
    expect(r.stderr).toMatch(/dense llama model: \d+ IR nodes -> \d+ ONNX nodes/);
    const bytes = await readFile(out);
    // an ONNX ModelProto: field 1 (ir_version) first, producer name inside
    expect(bytes[0]).toBe(0x08);
    expect(bytes.includes(Buffer.from('chess-toolchain'))).toBe(true);
  });

  it('never writes over its input', async () => {
    const r = await chess('export-onnx', tiny, '--out', tiny);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error[OUTPUT_IS_INPUT]');
  });

  it('import of a malformed ONNX file: error[ONNX_PARSE] naming the file, exit 1, no output', async () => {
    const bad = join(work, 'bad.onnx');
    await writeFile(bad, Buffer.from('\x0a\xff\xff\xff\xff\x0fnot an onnx model'));
    const out = join(work, 'bad.gguf');
    const r = await chess('import', bad, '--out', out);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^error\\[ONNX_PARSE\\]: ${bad.replace(/[.]/g, '\\.')}: not a valid ONNX protobuf`, 'm'));
    expect(existsSync(out)).toBe(false);
  });
});
