/**
 * `chess transform` from the command line: bad options fail with a clear
 * error before any work (no output written), a profile of another model and a
 * model without a gated FFN are refused, and a good run writes a sparse GGUF
 * (column blocks by default, transposed with --layout transposed; projections
 * the column-block layout cannot hold are named in the output), whose layout
 * per tensor `chess inspect` shows. Uses small synthetic models (2 layers) and
 * profiles written here.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CalibrationProfile, ChannelHistograms, DEFAULT_HISTOGRAM_SPEC, Histogram, layerProfile, projectionInputs, sha256OfFile, writeProfile } from '@chess/calibrate';
import { GGMLType, openGGUF, writeGGUF } from '@chess/gguf';
import { parseShape, synthesizeModel } from '@chess/models';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'main.ts');
let work: string;
let model: string;
let ungated: string;
let goodProfile: string;
let otherProfile: string;
/** head_dim 16, one KV head: W_k / W_v have n_out = 16 (no column-block layout). */
let narrow: string;
let narrowProfile: string;

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

const SHAPE = { nLayer: 2, nEmbd: 64, nFF: 128, nHead: 2, nHeadKV: 1 };
const NARROW = { ...SHAPE, nHead: 4 };

async function profileFor(path: string, sha256: string, shape = SHAPE): Promise<string> {
  const hist = () => {
    const h = new Histogram(DEFAULT_HISTOGRAM_SPEC);
    for (let i = 1; i <= 1000; i++) h.add(i / 1000);
    return h;
  };
  const channelSpec = { subBits: 3, minExp: -16, maxExp: 6 };
  const channels = () => {
    const c = new ChannelHistograms(channelSpec, SHAPE.nFF);
    for (let i = 0; i < SHAPE.nFF; i++) for (let k = 1; k <= 100; k++) c.add(i, k / 100);
    return c;
  };
  const profile: CalibrationProfile = {
    format: 2,
    model: { sha256, file: 'tiny.gguf', arch: 'llama', nLayer: shape.nLayer, nEmbd: shape.nEmbd, nFF: shape.nFF, nHead: shape.nHead, nHeadKV: shape.nHeadKV },
    calibration: { source: 'synthetic-cli-test', textSha256: '0'.repeat(64), tokens: 1000, windowTokens: 100, seed: 1, tool: 'test' },
    histogram: { ...DEFAULT_HISTOGRAM_SPEC },
    channelHistogram: channelSpec,
    layers: Array.from({ length: SHAPE.nLayer }, () =>
      layerProfile({
        upMeanAbs: new Float64Array(SHAPE.nFF).fill(0.5),
        upRms: new Float64Array(SHAPE.nFF).fill(0.7),
        gateAbs: hist(),
        gateChannels: channels(),
        inputs: projectionInputs(hist(), hist(), hist(), hist()),
      }),
    ),
  };
  await writeProfile(path, profile);
  return path;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-cli-transform-'));
  model = join(work, 'tiny.gguf');
  await synthesizeModel({ shape: parseShape(JSON.stringify({ base: 'smollm2', ...SHAPE })), type: GGMLType.Q4_1, out: model, seed: 5 });
  // the same model without the FFN gate tensors
  ungated = join(work, 'ungated.gguf');
  const file = await openGGUF(model);
  try {
    const tensors = file.tensors
      .filter((t) => !t.name.endsWith('ffn_gate.weight'))
      .map((t) => ({ name: t.name, shape: t.shape, type: t.type, byteLength: t.byteLength, data: () => file.tensorChunks(t) }));
    await writeGGUF(ungated, { metadata: [...file.metadata], tensors });
  } finally {
    await file.close();
  }
  goodProfile = await profileFor(join(work, 'good.prf'), await sha256OfFile(model));
  otherProfile = await profileFor(join(work, 'other.prf'), 'f'.repeat(64));
  narrow = join(work, 'narrow.gguf');
  await synthesizeModel({ shape: parseShape(JSON.stringify({ base: 'smollm2', ...NARROW })), type: GGMLType.Q4_1, out: narrow, seed: 6 });
  narrowProfile = await profileFor(join(work, 'narrow.prf'), await sha256OfFile(narrow), NARROW);
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('chess transform: errors before any work', () => {
  const cases: Array<{ name: string; args: () => string[]; code: number; error: RegExp }> = [
    { name: 'sparsity 1', args: () => ['--sparsity', '1'], code: 2, error: /error\[CHESS_BAD_SPARSITY\]: --sparsity: expected a number in \[0, 1\), got '1'/ },
    { name: 'negative sparsity', args: () => ['--sparsity', '-0.1'], code: 2, error: /CHESS_BAD_SPARSITY.*got '-0.1'/ },
    { name: 'sparsity not a number', args: () => ['--sparsity', 'half'], code: 2, error: /CHESS_BAD_SPARSITY.*got 'half'/ },
    { name: 'unknown method', args: () => ['--method', 'dejavu'], code: 2, error: /error\[CHESS_UNKNOWN_METHOD\]: --method: unknown method 'dejavu'; valid methods: chess, chess\+, cats, teal/ },
    { name: 'unknown statistic', args: () => ['--statistic', 'median'], code: 2, error: /error\[CHESS_UNKNOWN_STATISTIC\]: --statistic: unknown statistic 'median'; valid statistics: rms, mean-abs/ },
    { name: 'unknown transposed type', args: () => ['--layout', 'transposed', '--transposed-type', 'q4_K'], code: 2, error: /CHESS_BAD_TRANSPOSED_TYPE.*'q4_K'.*valid: f32, f16, bf16, q8_0, q4_0, q4_1/ },
    {
      name: 'transposed type without --layout transposed',
      args: () => ['--transposed-type', 'q8_0'],
      code: 2,
      error: /error\[CHESS_LAYOUT_CONFLICT\]: --transposed-type: a transposed type \('q8_0'\) applies only to the transposed layout, not to 'column-blocks'/,
    },
    { name: '--budget with a sparsity method', args: () => ['--method', 'chess+', '--budget', '0.8'], code: 2, error: /error\[CHESS_BUDGET_METHOD\]: --budget: a byte budget applies only to a budget method \(budget\), not to 'chess\+'/ },
    { name: 'budget method without --budget', args: () => ['--method', 'budget'], code: 2, error: /error\[CHESS_BUDGET_REQUIRED\]: --budget: required by method 'budget'/ },
    { name: 'budget 0', args: () => ['--method', 'budget', '--budget', '0'], code: 2, error: /error\[CHESS_BAD_BUDGET\]: --budget: expected a fraction of the dense model's weight bytes per token in \(0, 1\], got '0'/ },
    {
      name: '--sparsity with the budget method',
      args: () => ['--method', 'budget', '--budget', '0.9', '--sparsity', '0.5'],
      code: 2,
      error: /error\[CHESS_BUDGET_METHOD\]: --sparsity: method 'budget' allocates sparsity per layer and site from --budget; drop --sparsity/,
    },
    { name: 'unknown layout', args: () => ['--layout', 'rows'], code: 2, error: /error\[CHESS_BAD_LAYOUT\]: --layout: unknown layout 'rows'; valid layouts: column-blocks, transposed/ },
    { name: 'missing model', args: () => ['--model', join(work, 'nope.gguf')], code: 2, error: /TRANSFORM_BAD_MODEL.*nope\.gguf does not exist/ },
    { name: 'profile of another model', args: () => ['--profile', otherProfile], code: 1, error: /error\[PROFILE_MODEL_MISMATCH\]: calibration profile was made from model tiny\.gguf/ },
    { name: 'refine tokens not an integer', args: () => ['--refine-tokens', '1.5'], code: 2, error: /error\[TRANSFORM_BAD_OPTION\]: --refine-tokens: expected an integer in \[0, \d+\], got '1\.5'/ },
    { name: 'zero refinement iterations', args: () => ['--refine-iterations', '0'], code: 2, error: /TRANSFORM_BAD_OPTION.*--refine-iterations: expected an integer in \[1, 10\], got '0'/ },
    { name: 'zero calibration tokens', args: () => ['--calibration-tokens', '0'], code: 2, error: /TRANSFORM_BAD_OPTION.*--calibration-tokens/ },
    {
      name: 'refinement with a profile whose text cannot be re-read',
      args: () => [],
      code: 2,
      error: /error\[TRANSFORM_REFINE_UNAVAILABLE\]: --profile .*good\.prf: its calibration text 'synthetic-cli-test' cannot be re-read.*--refine-tokens 0/,
    },
    { name: 'model without a gated FFN', args: () => ['--model', ungated], code: 1, error: /blk\.0\.ffn_gate\.weight.*required/ },
    { name: 'no --out', args: () => ['--no-out'], code: 2, error: /error\[TRANSFORM_BAD_OUT\]: --out: required/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const out = join(work, `${c.name.replace(/\W+/g, '-')}.gguf`);
      const args = c.args();
      const outArgs = args.includes('--no-out') ? [] : ['--out', out];
      const run = await chess('transform', ...(args.includes('--model') ? [] : ['--model', model]), '--profile', goodProfile, ...args.filter((a) => a !== '--no-out'), ...outArgs);
      expect(run.stderr).toMatch(c.error);
      expect(run.code).toBe(c.code);
      expect(existsSync(out)).toBe(false);
    });
  }
});

describe('chess transform --list-passes', () => {
  it("prints the compiler's stages with their passes, every pass and every method, and exits 0 without other options", async () => {
    const run = await chess('transform', '--list-passes');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^stages of chess transform, in order:\n {2}import /);
    expect(run.stdout).toMatch(/^ {2}passes +.*\[passes: sparsify, place-thresholds, input-sparse-layout, sparse-gguf-layout, sparse-gguf-meta\]$/m);
    expect(run.stdout).toMatch(/^ {2}refine +.*\[passes: place-thresholds\]$/m);
    for (const pass of ['check-module', 'sparsify', 'place-thresholds', 'input-sparse-layout', 'sparse-gguf-layout', 'sparse-gguf-meta']) expect(run.stdout).toMatch(new RegExp(`^ {2}${pass} +\\S`, 'm'));
    for (const method of ['chess', 'chess\\+', 'cats', 'teal']) expect(run.stdout).toMatch(new RegExp(`^ {2}${method} +\\S`, 'm'));
  });
});

describe('chess transform: a run', () => {
  it('writes a sparse GGUF with column-block projections and prints its path; inspect shows the layout per tensor', async () => {
    const out = join(work, 'sparse.gguf');
    const run = await chess('transform', '--model', model, '--profile', goodProfile, '--refine-tokens', '0', '--method', 'chess', '--statistic', 'mean-abs', '--sparsity', '0.3', '--out', out);
    expect(run.stderr).toMatch(/wrote \d+ tensors .*chess\/mean-abs at sparsity 0\.3, 2 input-sparse projections column-blocks/);
    expect(run.stderr).not.toMatch(/kept in row layout/);
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe(out);
    const file = await openGGUF(out);
    try {
      expect(file.metadata.getString('general.architecture')).toBe('chess');
      expect(file.metadata.getNumber('chess.format_version')).toBe(2);
      expect(file.metadata.getString('chess.calibration.source')).toBe('synthetic-cli-test');
      expect(file.tensor('blk.1.ffn_down_cb.weight')?.type).toBe(GGMLType.Q4_1);
      expect(file.tensor('blk.1.ffn_down.weight')).toBeUndefined();
    } finally {
      await file.close();
    }
    const inspect = await chess('inspect', out, '--json');
    expect(inspect.code).toBe(0);
    const layouts = Object.fromEntries((JSON.parse(inspect.stdout) as { tensors: { name: string; layout: string }[] }).tensors.map((t) => [t.name, t.layout]));
    expect(layouts['blk.1.ffn_down_cb.weight']).toBe('column-blocks');
    expect(layouts['blk.1.ffn_gate_tau']).toBe('threshold');
    expect(layouts['blk.1.ffn_up.weight']).toBe('rows');
    const text = await chess('inspect', out);
    expect(text.stdout).toMatch(/^ {2}blk\.0\.ffn_down_cb\.weight +q4_1 +\[128, 64\] +\d+ +column-blocks$/m);
  });

  it('--layout transposed writes re-quantized transposed projections (format 1)', async () => {
    const out = join(work, 'sparse-t.gguf');
    const run = await chess('transform', '--model', model, '--profile', goodProfile, '--refine-tokens', '0', '--method', 'chess', '--layout', 'transposed', '--out', out);
    expect(run.stderr).toMatch(/2 input-sparse projections transposed q8_0/);
    expect(run.code).toBe(0);
    const file = await openGGUF(out);
    try {
      expect(file.metadata.getNumber('chess.format_version')).toBe(1);
      expect(file.tensor('blk.1.ffn_down_t.weight')?.type).toBe(GGMLType.Q8_0);
    } finally {
      await file.close();
    }
  });

  it('names the projections the column-block layout cannot hold (kept in row layout, masked-dense route)', async () => {
    const out = join(work, 'narrow-teal.gguf');
    const run = await chess('transform', '--model', narrow, '--profile', narrowProfile, '--refine-tokens', '0', '--method', 'teal', '--out', out);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/10 input-sparse projections column-blocks/);
    for (const name of ['blk.0.attn_k.weight', 'blk.0.attn_v.weight', 'blk.1.attn_k.weight', 'blk.1.attn_v.weight']) {
      expect(run.stderr).toContain(`kept in row layout (masked-dense route): ${name}: n_out = 16 is not a positive multiple of 32`);
    }
  });
});
