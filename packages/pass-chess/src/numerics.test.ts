/**
 * The rewritten graph computes exactly the masked function. For every method,
 * a small random llama (float64 reference interpreter) is rewritten by the
 * pass; the same module WITHOUT the pass, with masks inserted by hand at the
 * points the method defines (an op `test_mask` registered here, its own kernel),
 * must give the same logits. Thresholds come from an exact calibration of the
 * module on other tokens; the calibration tokens also check that each
 * threshold drops the target fraction there. Both storage layouts: column
 * blocks (the source's values, W [n_out, n_in]) and transposed (f32, exact).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { type Kernel, type Module, type Node, type OpSchema, type Tensor, WeightRef, buildLlamaModule, interpret, memoryWeight, registerKernel, registerOp, withMemoryWeights } from '@chess/ir';
import { mulberry32, randomWeights } from '@chess/ir/testing';
import { LAYOUTS, parseContractTensor } from '@chess/contract';
import { FLT_MAX, UNIFORM_METHODS as METHODS, METHOD_LAYOUTS, type Method, applyChess, computeThresholds, contractNames, parseProjectionWeight, registerSparseOps, transposeMatrix } from './index.ts';
import { exactProfile } from './testing.ts';
import { type ReferenceThresholds, expectThresholdsMatch, referenceThresholdsOfModel } from './__reference__/thresholds.ts';

registerSparseOps();

// --- an independent mask op for the reference ---
const testMask: OpSchema = {
  name: 'test_mask',
  summary: 'reference masking: zero the elements whose magnitude is at most the threshold',
  operands: [
    { name: 'x', role: 'value', doc: 'f32[T,N]' },
    { name: 'tau', role: 'weight', doc: '[N] or [1]' },
  ],
  attrs: {},
  infer: (ctx) => ctx.type(0),
};
const testMaskKernel: Kernel = ({ inputs: [x, tau] }) => {
  const n = x!.shape[1]!;
  const data = new Float64Array(x!.data.length);
  x!.data.forEach((v, k) => {
    const t = tau!.data.length === 1 ? tau!.data[0]! : tau!.data[k % n]!;
    data[k] = Math.abs(v) <= t ? 0 : v;
  });
  return { shape: x!.shape, data };
};
registerOp(testMask);
registerKernel('test_mask', testMaskKernel);

const HP = { n_layer: 2, n_embd: 64, n_ff: 128, n_head: 2, n_head_kv: 1, n_vocab: 48, rms_eps: 1e-5, rope: { freq_base: 10000 } };
const SPARSITY = 0.5;

function tokens(seed: number, n: number): number[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => Math.floor(r() * HP.n_vocab));
}

const dense = buildLlamaModule(HP);
const weights = randomWeights(dense, 7);
const denseResolver = (name: string) => weights.get(name)!;
const calibration = tokens(1, 48);
const heldOut = tokens(2, 24);
const profile = exactProfile(dense, denseResolver, calibration);

// Golden thresholds: numpy's own forward pass and quantiles on the same weights and
// calibration tokens (__reference__/thresholds_ref.py), never the pass's own arithmetic.
const REQUESTS = [
  ...METHODS.flatMap((method) => [SPARSITY, 0.4, 0.3].map((sparsity) => ({ method, statistic: 'rms', sparsity }))),
  ...(['chess', 'chess+'] as const).map((method) => ({ method, statistic: 'mean-abs', sparsity: SPARSITY })),
];
let golden: ReferenceThresholds[];
beforeAll(async () => {
  golden = await referenceThresholdsOfModel(dense, weights, calibration, REQUESTS); // before any test rounds the weights
});

/** Thresholds (per layer: gate vector, input scalars) equal numpy's for that request, to float32 rounding. */
function expectGolden(actual: Parameters<typeof expectThresholdsMatch>[0], method: Method, sparsity: number, statistic = 'rms'): void {
  const want = golden.find((g) => g.method === method && g.sparsity === sparsity && (g.statistic ?? 'rms') === statistic);
  if (!want) throw new Error(`no numpy golden for ${method} ${statistic} ${sparsity}`);
  expectThresholdsMatch(actual, want);
}

/** The thresholds a rewritten module holds, per layer, read back from its weights. */
function storedThresholds(module: Module, method: Method) {
  return Array.from({ length: HP.n_layer }, (_, il) => ({
    gate: METHOD_LAYOUTS[method].gate ? memoryValues(module, contractNames.gateTau(il)) : undefined,
    inputs: Object.fromEntries(METHOD_LAYOUTS[method].inputs.map((p) => [p, memoryValues(module, contractNames.inputTau(il, p))[0]!])),
  }));
}

/** Float values of a memory weight of the rewritten module. */
function memoryValues(module: Module, name: string): Float32Array {
  const source = module.weight(name)?.source;
  if (source?.kind !== 'memory' || !(source.data instanceof Float32Array)) throw new Error(`@${name} is not an in-memory f32 weight`);
  return source.data;
}

/** The original module with `test_mask` inserted where `method` thresholds, using the rewritten module's thresholds. */
function maskedReference(method: Method, rewritten: Module): Module {
  const ref = dense.clone();
  const layout = METHOD_LAYOUTS[method];
  const byName = new Map(ref.nodes.map((n) => [n.name, n]));
  const insertBefore = (at: Node, operandIndex: number, tauName: string, shape: number[]) => {
    ref.addWeight(memoryWeight(`ref.${tauName}`, 'f32', shape, memoryValues(rewritten, tauName)));
    const mask = ref.create('test_mask', [at.operands[operandIndex]!, `ref.${tauName}`], { layer: at.layer! });
    ref.nodes.splice(ref.nodes.indexOf(at), 0, mask);
    at.operands[operandIndex] = mask;
  };
  for (let il = 0; il < HP.n_layer; il++) {
    if (layout.gate) {
      // h = mask(act(g)) * u: the dead channels' products are exactly zero
      const par = byName.get(`ffn_gate_par.${il}`)!;
      insertBefore(par, par.operands.indexOf(byName.get(`ffn_silu.${il}`)!), contractNames.gateTau(il), [HP.n_ff]);
    }
    for (const node of [...ref.nodes]) {
      const w = node.op === 'linear' && node.operands[1] instanceof WeightRef ? parseProjectionWeight(node.operands[1].name) : undefined;
      if (w?.layer === il && layout.inputs.includes(w.proj)) insertBefore(node, 0, contractNames.inputTau(il, w.proj), [1]);
    }
  }
  return ref;
}

/**
 * Serves the copies of the input-sparse projections from the random dense
 * weights: a column-block copy holds the source's values in the source's shape
 * (its bytes are only re-arranged), a transposed copy their transpose.
 */
function rewrittenResolver(module: Module) {
  const others = withMemoryWeights(module, (name) => weights.get(name)!);
  return (name: string) => {
    const t = parseContractTensor(name);
    if (t?.kind !== 'columnBlocks' && t?.kind !== 'transposed') return others(name);
    const src = dense.weight(contractNames.weight(t.layer, t.proj!))!;
    if (t.kind === 'columnBlocks') return weights.get(src.name)!;
    const [nOut, nIn] = src.shape as [number, number];
    return Float64Array.from(transposeMatrix(Float32Array.from(weights.get(src.name)!), nOut, nIn));
  };
}

function maxAbsDiff(a: Tensor, b: Tensor): number {
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i]! - b.data[i]!));
  return m;
}

describe('the rewritten graph computes the masked function', () => {
  for (const method of METHODS) for (const layout of LAYOUTS) {
    it(`${method}, ${layout}`, () => {
      // the transposed weights hold f32-rounded values: round the dense ones the same way
      for (const [k, v] of weights) weights.set(k, Float64Array.from(v, Math.fround));
      const rewritten = dense.clone();
      applyChess(rewritten, profile, { method, statistic: 'rms', sparsity: SPARSITY, layout, ...(layout === 'transposed' && { transposedType: 'f32' as const }), pipeline: { debug: {} } });
      expectGolden(storedThresholds(rewritten, method), method, SPARSITY);
      const ops = new Set(rewritten.nodes.map((n) => n.op));
      const inputSparse = rewritten.nodes.filter((n) => n.op === 'sparse_linear_in');
      expect(inputSparse.length).toBe(HP.n_layer * METHOD_LAYOUTS[method].inputSparse.length);
      for (const n of inputSparse) expect(n.attrs.layout).toBe(layout);
      expect(ops.has(method === 'teal' ? 'threshold' : 'sparse_linear_out')).toBe(true);

      const sparse = interpret(rewritten, { tokens: heldOut, weights: rewrittenResolver(rewritten), keepValues: true });
      const masked = maskedReference(method, rewritten);
      const reference = interpret(masked, { tokens: heldOut, weights: withMemoryWeights(masked, denseResolver) });
      const dense0 = interpret(dense, { tokens: heldOut, weights: denseResolver });
      expect(maxAbsDiff(sparse.logits, reference.logits)).toBeLessThanOrEqual(1e-12);
      // ... and the masks are not vacuous: the sparse model differs from the dense one
      expect(maxAbsDiff(sparse.logits, dense0.logits)).toBeGreaterThan(1e-3);

      // a real fraction of the masked elements is zero on held-out tokens
      for (const node of rewritten.nodes) {
        if (node.op !== 'sparse_linear_out' && node.op !== 'threshold') continue;
        const v = sparse.values!.get(node)!.data;
        const zeros = v.reduce((n, x) => n + (x === 0 ? 1 : 0), 0) / v.length;
        expect(zeros, `${node.op} of layer ${node.layer}`).toBeGreaterThan(0.2);
        expect(zeros, `${node.op} of layer ${node.layer}`).toBeLessThan(0.8);
      }
    });
  }
});

describe('thresholds', () => {
  it('CHESS: tau_i = t / m_i with t the s-quantile of the layer scores (numpy golden); the scores above t are exactly the kept ones', () => {
    for (const statistic of ['rms', 'mean-abs'] as const) {
      for (const method of ['chess', 'chess+'] as const) {
        const th = computeThresholds(profile, { method, statistic, sparsity: SPARSITY });
        expect(th.statistic).toBe(statistic);
        expectGolden(th.layers, method, SPARSITY, statistic);
      }
      for (const [, lp] of profile.layers.entries()) {
        const t = lp.score[statistic].quantile(SPARSITY);
        // on the calibration data, the fraction of gate values with |g_i| <= tau_i is the target
        const g = lp.gateAbs.sorted.length; // same count as the scores
        const dropped = lp.score[statistic].fractionAtMost(t);
        expect(dropped).toBeGreaterThanOrEqual(SPARSITY);
        expect(dropped).toBeLessThan(SPARSITY + 2 / g);
      }
    }
  });

  it('CATS: one threshold per layer, the s-quantile of |g|, as n_ff copies (numpy golden)', () => {
    for (const sparsity of [SPARSITY, 0.3]) {
      const th = computeThresholds(profile, { method: 'cats', sparsity });
      expect(th.statistic).toBe('none');
      expectGolden(th.layers, 'cats', sparsity);
      for (const l of th.layers) expect(new Set(l.gate).size).toBe(1);
    }
  });

  it('tensor-wise thresholds are the s-quantiles of |x| (chess+: q and o inputs; teal: all seven; numpy golden)', () => {
    for (const sparsity of [0.4, 0.3]) {
      expectGolden(computeThresholds(profile, { method: 'chess+', sparsity }).layers, 'chess+', sparsity);
      expectGolden(computeThresholds(profile, { method: 'teal', sparsity }).layers, 'teal', sparsity);
    }
  });

  it('sparsity 0 gives all-zero thresholds (only exact zeros are dropped: the dense function)', () => {
    for (const method of METHODS) {
      const th = computeThresholds(profile, { method, sparsity: 0 });
      for (const l of th.layers) {
        if (l.gate) expect(l.gate.every((v) => v === 0)).toBe(true);
        for (const v of Object.values(l.inputs)) expect(v).toBe(0);
      }
    }
  });

  it('a channel with m_i = 0 is never kept: tau_i = FLT_MAX (finite)', () => {
    const zeroed = { ...profile, layers: profile.layers.map((l) => ({ ...l, upRms: Float64Array.from(l.upRms, (v, i) => (i === 3 ? 0 : v)) })) };
    const th = computeThresholds(zeroed, { method: 'chess', statistic: 'rms', sparsity: 0.5 });
    expect(th.layers[0]!.gate![3]).toBe(Math.fround(FLT_MAX));
    expect(Number.isFinite(th.layers[0]!.gate![3]!)).toBe(true);
  });

  it('rejects bad options with the valid values', () => {
    expect(() => computeThresholds(profile, { method: 'chess++' as Method, sparsity: 0.5 })).toThrow(/unknown method 'chess\+\+'; valid methods: chess, chess\+, cats, teal/);
    expect(() => computeThresholds(profile, { method: 'chess', statistic: 'median' as 'rms', sparsity: 0.5 })).toThrow(/valid statistics: rms, mean-abs/);
    for (const s of [1, -0.1, Number.NaN, 1.5]) expect(() => computeThresholds(profile, { method: 'chess', sparsity: s })).toThrow(/outside \[0, 1\)/);
  });
});
