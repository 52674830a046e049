import { transformModel, PROJECTIONS } from './src/index.ts';
const model = '/root/.cache/chess-toolchain/models/SmolLM2-135M-Instruct.Q4_1.gguf';
const q = { quantile: () => 1 };
const m = new Float64Array(1536).fill(1);
const layer = { upMeanAbs: m, upRms: m, gateAbs: q, score: { rms: q, 'mean-abs': q }, inputs: Object.fromEntries(PROJECTIONS.map((p) => [p, q])) as any };
const profile = { model: { arch: 'llama', nLayer: 30, nEmbd: 576, nFF: 1536 }, calibration: { source: 'none', tokens: 0, seed: 0 }, layers: Array.from({ length: 30 }, () => layer) };
for (const [method, type] of [['chess+', 'q8_0'], ['teal', 'q8_0']] as const) {
  const t0 = Date.now();
  const r = await transformModel({ model, out: `/tmp/pc/${method}-${type}-s0.gguf`, method, sparsity: 0, transposedType: type, profile });
  console.log(method, type, (Date.now() - t0) / 1000, 's', r.emit.tensors, r.emit.tensorBytes);
}
