/**
 * Golden test of the column-block movers against an independent construction
 * from the spec (docs/gguf-sparse.md §3.1) in numpy + gguf-py
 * (__reference__/column_blocks_ref.py), on real SmolLM2 tensors (Q4_1) and on
 * synthetic tensors of every other type of the table (gguf-py's quantizers
 * where it has one; random blocks with finite scales for the K-quants):
 *   1. our column-block bytes equal the reference's, byte for byte;
 *   2. every value (row, channel) decoded straight from OUR bytes by the
 *      reference's spec reader equals gguf-py's dequantization of the source
 *      (float32 bits);
 *   3. the inverse gives the source back.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fetchDefaultModel } from '@chess/assets';
import { COLUMN_BLOCK_TYPES } from '@chess/contract';
import { ensurePythonEnv } from '@chess/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GGMLType, ggmlTypeName } from '../types.ts';
import { columnBlocksFromRows, rowsFromColumnBlocks } from './column-blocks.ts';

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, '__reference__', 'column_blocks_ref.py');

interface Job {
  readonly label: string;
  readonly type: GGMLType;
  readonly n_in: number;
  readonly n_out: number;
  readonly source: string;
  readonly tensor?: string;
  readonly seed?: number;
}

interface Result {
  readonly rows: Uint8Array;
  readonly golden: Uint8Array;
  readonly ours: Uint8Array;
  readonly reference: Uint32Array;
  readonly readBack: Uint32Array;
}

/** SmolLM2 (source filled in once the model is fetched): W_down (n_in 1536, n_out 576) and W_o (576 x 576), Q4_1 (ggml type 3). */
const MODEL = '<default model>';
const jobs: Job[] = [
  { label: 'SmolLM2 blk.0.ffn_down.weight', type: 3, n_in: 1536, n_out: 576, source: MODEL, tensor: 'blk.0.ffn_down.weight' },
  { label: 'SmolLM2 blk.17.attn_output.weight', type: 3, n_in: 576, n_out: 576, source: MODEL, tensor: 'blk.17.attn_output.weight' },
  // two groups, three 32-row units (float types: an odd row count, they have no planes)
  ...COLUMN_BLOCK_TYPES.map((t): Job => {
    const [nIn, nOut] = t.groupSize === 1 ? [5, 7] : [2 * t.groupSize, 96];
    return { label: `synthetic ${t.type}`, type: t.ggmlType as GGMLType, n_in: nIn, n_out: nOut, source: 'synth', seed: 11 + t.ggmlType };
  }),
];
let work: string;
const results = new Map<string, Result>();

function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): string | undefined {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `at ${i}: ${a[i]} vs ${b[i]}`;
  return undefined;
}

const u32 = (bytes: Uint8Array) => new Uint32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-cb-golden-'));
  const model = await fetchDefaultModel();
  const python = await ensurePythonEnv();
  const paths = (i: number) => ({ rows: join(work, `${i}.rows`), cb: join(work, `${i}.cb`), values: join(work, `${i}.ref.f32`) });
  const buildJobs = join(work, 'build.json');
  await writeFile(buildJobs, JSON.stringify(jobs.map((j, i) => ({ ...j, source: j.source === MODEL ? model : j.source, ...paths(i) }))));
  await run(python, [SCRIPT, 'build', buildJobs], { maxBuffer: 16 << 20 });
  const ours: Uint8Array[] = [];
  for (const [i, j] of jobs.entries()) {
    const rows = new Uint8Array(await readFile(paths(i).rows));
    const cb = columnBlocksFromRows(j.type, rows, j.n_in, j.n_out, { name: j.label });
    ours.push(cb);
    await writeFile(join(work, `${i}.ours.cb`), cb);
  }
  const readJobs = join(work, 'read.json');
  await writeFile(readJobs, JSON.stringify(jobs.map((j, i) => ({ type: j.type, n_in: j.n_in, n_out: j.n_out, cb: join(work, `${i}.ours.cb`), values: join(work, `${i}.ours.f32`) }))));
  await run(python, [SCRIPT, 'read', readJobs], { maxBuffer: 16 << 20 });
  for (const [i, j] of jobs.entries()) {
    results.set(j.label, {
      rows: new Uint8Array(await readFile(paths(i).rows)),
      golden: new Uint8Array(await readFile(paths(i).cb)),
      ours: ours[i]!,
      reference: u32(new Uint8Array(await readFile(paths(i).values))),
      readBack: u32(new Uint8Array(await readFile(join(work, `${i}.ours.f32`)))),
    });
  }
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('column blocks vs the spec built in numpy + gguf-py', () => {
  it('covers every type of the table and the real model', () => {
    expect(new Set(jobs.map((j) => ggmlTypeName(j.type)))).toEqual(new Set(COLUMN_BLOCK_TYPES.map((t) => t.type)));
    expect(results.size).toBe(jobs.length);
  });

  it.each(jobs.map((j) => [j.label] as const))('%s', (label) => {
    const r = results.get(label)!;
    const job = jobs.find((j) => j.label === label)!;
    expect(r.golden.length).toBe(r.rows.length);
    expect(firstDifference(r.ours, r.golden), 'column-block bytes (ours vs reference)').toBeUndefined();
    expect(r.reference.length).toBe(job.n_in * job.n_out);
    expect(firstDifference(r.readBack, r.reference), 'values read from our layout vs gguf-py dequantize of the source (f32 bits, row-major)').toBeUndefined();
    expect(firstDifference(rowsFromColumnBlocks(job.type, r.ours, job.n_in, job.n_out), r.rows), 'inverse').toBeUndefined();
  });
});
