/**
 * The patched loader refuses what the sparse contract forbids (native/src/chess_contract_check.c,
 * called from llama-src/llama-chess.cpp), naming the key or tensor, and the TypeScript check
 * (@chess/gguf checkSparseFile over @chess/contract checkSparseContract) refuses the same file
 * naming the same key or tensor. Fixed cases (the ones of issue 20: NaN / infinite / negative
 * thresholds, a missing chess.target_sparsity or chess.format_version, layouts inconsistent with
 * the tensors), then a seeded fuzz of the same mutations with random tensors, indices and values
 * (CHESS_CONTRACT_FUZZ_SEED, default fixed; the seed is logged). The unmodified files load.
 * The check function itself is fuzzed under ASan + UBSan by native/tests/test_contract.c
 * (native-kernels.test.ts); this suite runs the normal (release) build of the whole loader.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGMLType, checkSparseFile, ggufValue, openGGUF, writeGGUF, type GGUFValue, type GGUFWriteTensor } from '@chess/gguf';
import { fetchDefaultModel } from '@chess/assets';
import { mulberry32 } from '@chess/core';
import { buildBackend } from './build.ts';
import { evaluateProbabilities } from './eval-runner.ts';
import { makeSparseTestModel } from './test-models.ts';

const MINUTE = 60_000;
const log = (line: string): void => {
  process.stderr.write(`[contract-loader.test] ${line}\n`);
};

let work: string;
/** chess+ in column blocks (format 2: gate and q/o input thresholds, _cb tensors) and teal transposed (format 1). */
let cb: string;
let transposed: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-contract-loader-'));
  const smollm2 = await fetchDefaultModel({ log });
  await buildBackend({ log });
  cb = await makeSparseTestModel({ method: 'chess+', source: smollm2, sparsity: 0.5, layout: 'column-blocks', layers: 2, log });
  transposed = await makeSparseTestModel({ method: 'teal', source: smollm2, sparsity: 0.5, layout: 'transposed', layers: 2, log });
}, 90 * MINUTE);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

type Entries = Array<[string, GGUFValue]>;
interface Mutation {
  title: string;
  base: () => string;
  /** The key or tensor both checks must name. */
  names: string;
  metadata?: (entries: Entries) => Entries;
  tensors?: (tensors: GGUFWriteTensor[]) => GGUFWriteTensor[];
}

let written = 0;
async function variant(m: Mutation): Promise<string> {
  const out = join(work, `v${written++}.gguf`);
  const file = await openGGUF(m.base());
  try {
    const tensors: GGUFWriteTensor[] = file.tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.type, byteLength: t.byteLength, data: () => file.tensorChunks(t) }));
    const metadata = [...file.metadata] as Entries;
    await writeGGUF(out, { metadata: m.metadata ? m.metadata(metadata) : metadata, tensors: m.tensors ? m.tensors(tensors) : tensors });
  } finally {
    await file.close();
  }
  return out;
}

const without = (key: string) => (entries: Entries) => entries.filter(([k]) => k !== key);
const setKey = (key: string, value: GGUFValue) => (entries: Entries) => entries.map(([k, v]): [string, GGUFValue] => [k, k === key ? value : v]);
/** A threshold tensor with one value replaced (the rest: the file's own thresholds). */
const tauValue = (name: string, index: number, value: number) => (tensors: GGUFWriteTensor[]) =>
  tensors.map((t) => {
    if (t.name !== name) return t;
    return {
      ...t,
      data: async () => {
        const bytes = new Uint8Array(t.byteLength!); // every tensor of `variant` has it
        let at = 0;
        for await (const chunk of (await t.data()) as AsyncIterable<Uint8Array>) {
          bytes.set(chunk, at);
          at += chunk.length;
        }
        new DataView(bytes.buffer).setFloat32(4 * index, value, true);
        return bytes;
      },
    };
  });
const tauAsF16 = (name: string) => (tensors: GGUFWriteTensor[]) =>
  tensors.map((t) => (t.name === name ? { name, shape: t.shape, type: GGMLType.F16, byteLength: t.byteLength! / 2, data: async () => new Uint8Array(t.byteLength! / 2) } : t));

const N_FF = 1536;
const FIXED: Mutation[] = [
  { title: 'a NaN gate threshold', base: () => cb, names: 'blk.1.ffn_gate_tau', tensors: tauValue('blk.1.ffn_gate_tau', 7, Number.NaN) },
  { title: 'an infinite input threshold', base: () => cb, names: 'blk.0.attn_q_in_tau', tensors: tauValue('blk.0.attn_q_in_tau', 0, Number.POSITIVE_INFINITY) },
  { title: 'a negative gate threshold', base: () => cb, names: 'blk.0.ffn_gate_tau', tensors: tauValue('blk.0.ffn_gate_tau', N_FF - 1, -0.5) },
  { title: 'no chess.target_sparsity', base: () => cb, names: 'chess.target_sparsity', metadata: without('chess.target_sparsity') },
  { title: 'no chess.format_version', base: () => cb, names: 'chess.format_version', metadata: without('chess.format_version') },
  { title: 'format 2 declared, no column-block tensor', base: () => transposed, names: 'chess.format_version', metadata: setKey('chess.format_version', ggufValue.u32(2)) },
  { title: 'a threshold stored as f16', base: () => cb, names: 'blk.1.ffn_gate_tau', tensors: tauAsF16('blk.1.ffn_gate_tau') },
  {
    title: 'a threshold of a layer the model does not have',
    base: () => cb,
    names: 'blk.2.attn_q_in_tau',
    tensors: (tensors) => [...tensors, { name: 'blk.2.attn_q_in_tau', shape: [1], type: GGMLType.F32, byteLength: 4, data: async () => new Uint8Array(Float32Array.of(0.1).buffer) }],
  },
];

/** reproducible fuzz cases */
const rng = mulberry32;

const SEED = Number(process.env.CHESS_CONTRACT_FUZZ_SEED ?? 0x20c0ffee);
const FUZZ_CASES = 16;

function fuzzCases(seed: number): Mutation[] {
  const r = rng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(r() * items.length)]!;
  const cases: Mutation[] = [];
  for (let i = 0; i < FUZZ_CASES; i++) {
    const kind = pick(['tau-value', 'tau-value', 'tau-value', 'tau-type', 'tau-shape', 'key-missing', 'key-type', 'sparsity-value', 'format'] as const);
    const layer = Math.floor(r() * 2);
    if (kind === 'tau-value') {
      const name = pick([`blk.${layer}.ffn_gate_tau`, `blk.${layer}.attn_q_in_tau`, `blk.${layer}.attn_output_in_tau`]);
      const index = name.endsWith('gate_tau') ? Math.floor(r() * N_FF) : 0;
      const value = pick([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -(r() * 10 + 1e-6), -3e-38]);
      cases.push({ title: `${name}[${index}] = ${value}`, base: () => cb, names: name, tensors: tauValue(name, index, value) });
    } else if (kind === 'tau-type') {
      const name = pick([`blk.${layer}.ffn_gate_tau`]);
      cases.push({ title: `${name} as f16`, base: () => cb, names: name, tensors: tauAsF16(name) });
    } else if (kind === 'tau-shape') {
      const name = `blk.${layer}.ffn_gate_tau`;
      const n = pick([N_FF - 32, N_FF / 2, N_FF + 32]);
      cases.push({
        title: `${name} of ${n} elements`,
        base: () => cb,
        names: name,
        tensors: (tensors) => tensors.map((t) => (t.name === name ? { name, shape: [n], type: GGMLType.F32, byteLength: 4 * n, data: async () => new Uint8Array(4 * n) } : t)),
      });
    } else if (kind === 'key-missing') {
      const key = pick(['chess.target_sparsity', 'chess.format_version']);
      cases.push({ title: `no ${key}`, base: () => pick([cb, transposed]), names: key, metadata: without(key) });
    } else if (kind === 'key-type') {
      const [key, value] = pick([
        ['chess.target_sparsity', ggufValue.f64(0.5)],
        ['chess.target_sparsity', ggufValue.u32(0)],
        ['chess.target_sparsity', ggufValue.string('0.5')],
        ['chess.format_version', ggufValue.u64(2n)],
        ['chess.format_version', ggufValue.i32(2)],
      ] as const);
      cases.push({ title: `${key} as ${value.type}`, base: () => cb, names: key, metadata: setKey(key, value) });
    } else if (kind === 'sparsity-value') {
      const value = pick([Number.NaN, 1, 1.5, -0.25, Number.POSITIVE_INFINITY]);
      cases.push({ title: `chess.target_sparsity = ${value}`, base: () => cb, names: 'chess.target_sparsity', metadata: setKey('chess.target_sparsity', ggufValue.f32(value)) });
    } else {
      const [base, version] = pick([
        [() => transposed, 2],
        [() => cb, 1],
        [() => cb, 3],
      ] as const);
      const names = version === 1 ? 'blk.0.attn_q_cb.weight' : 'chess.format_version';
      cases.push({ title: `chess.format_version ${version} on the ${base() === cb ? 'column-block' : 'transposed'} file`, base, names, metadata: setKey('chess.format_version', ggufValue.u32(version)) });
    }
  }
  return cases;
}

async function expectBothRefuse(m: Mutation): Promise<void> {
  const model = await variant(m);
  const file = await openGGUF(model);
  let violations;
  try {
    violations = await checkSparseFile(file);
  } finally {
    await file.close();
  }
  expect(violations.map((v) => v.message).join('\n'), `${m.title}: the TypeScript check`).toContain(m.names);
  const result = await evaluateProbabilities({ flavour: 'patched', model });
  expect(result.binary.flavour).toBe('patched');
  const text = result.log.join('\n');
  log(`${m.title}: TS: ${violations[0]?.message}; C: ${text.split('\n').find((l) => l.includes(m.names)) ?? result.loadError}`);
  expect(result.loadError, `${m.title}: the patched loader loaded it`).toBeDefined();
  expect(text, `${m.title}: the patched loader's reason`).toContain(m.names);
}

describe('the sparse contract: TypeScript check and patched C loader refuse the same files', () => {
  it(
    'the unmodified column-block and transposed files pass both',
    async () => {
      for (const model of [cb, transposed]) {
        const file = await openGGUF(model);
        try {
          expect(await checkSparseFile(file)).toEqual([]);
        } finally {
          await file.close();
        }
        const result = await evaluateProbabilities({ flavour: 'patched', model });
        expect(result.loadError).toBeUndefined();
      }
    },
    10 * MINUTE,
  );

  for (const m of FIXED) it(m.title, () => expectBothRefuse(m), 10 * MINUTE);

  it(
    `seeded fuzz: ${FUZZ_CASES} mutated files (seed ${SEED})`,
    async () => {
      log(`fuzz seed ${SEED} (CHESS_CONTRACT_FUZZ_SEED)`);
      for (const m of fuzzCases(SEED)) await expectBothRefuse(m);
    },
    30 * MINUTE,
  );
});
