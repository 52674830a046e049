import { describe, expect, it } from 'vitest';
import { isChessError } from '@chess/core';
import { GGMLType } from '@chess/gguf';
import { layerSparsity, parseSparsityReport, siteSparsity, subtractCounters, weightTraffic, type WeightTensor } from './sparsity.ts';

/** A report in the exact layout llama-chess.cpp writes (llama_chess_write_report), values chosen by hand. */
const REPORT = `{
  "format": "chess-sparsity-report/1",
  "keep_rule": "|v| > tau",
  "n_layer": 3,
  "layers": [
    {"layer": 0, "attn_q_in": {"seen": 1000, "zeroed": 500, "sparsity": 0.500000}, "ffn_down_in": {"seen": 4000, "zeroed": 1000, "sparsity": 0.250000}, "ffn_gate_act": {"seen": 4000, "zeroed": 1000, "sparsity": 0.250000}},
    {"layer": 2, "attn_q_in": {"seen": 1000, "zeroed": 100, "sparsity": 0.100000}}
  ],
  "totals": {"attn_q_in": {"seen": 2000, "zeroed": 600, "sparsity": 0.300000}}
}
`;

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (error) {
    return isChessError(error) ? error.code : 'not a ChessError';
  }
  return undefined;
}

describe('sparsity report', () => {
  it('parses per-layer per-site counters', () => {
    const c = parseSparsityReport(REPORT);
    expect(c.nLayer).toBe(3);
    expect(c.layers.get(0)).toEqual({ attn_q_in: { seen: 1000, zeroed: 500 }, ffn_down_in: { seen: 4000, zeroed: 1000 }, ffn_gate_act: { seen: 4000, zeroed: 1000 } });
    expect(c.layers.has(1)).toBe(false);
    expect(siteSparsity(c)).toEqual({ attn_q_in: [0.5, null, 0.1], ffn_down_in: [0.25, null, null], ffn_gate_act: [0.25, null, null] });
  });

  it('per layer: zeroed/seen over distinct sites (ffn_down_in counted once with the gate), 0 for dense layers', () => {
    // layer 0: (500 + 1000) / (1000 + 4000) = 0.3; layer 1 has no site; layer 2: 100 / 1000.
    expect(layerSparsity(parseSparsityReport(REPORT))).toEqual([0.3, 0, 0.1]);
  });

  it('subtracts an earlier snapshot (decode-only counters)', () => {
    const before = parseSparsityReport(REPORT.replace('"seen": 1000, "zeroed": 500', '"seen": 600, "zeroed": 400'));
    const d = subtractCounters(parseSparsityReport(REPORT), before);
    expect(d.layers.get(0)!.attn_q_in).toEqual({ seen: 400, zeroed: 100 });
    expect(d.layers.get(0)!.ffn_gate_act).toEqual({ seen: 0, zeroed: 0 });
  });

  it('rejects malformed reports with BENCH_SPARSITY_REPORT_INVALID', () => {
    expect(codeOf(() => parseSparsityReport('{"format":'))).toBe('BENCH_SPARSITY_REPORT_INVALID');
    expect(codeOf(() => parseSparsityReport(REPORT.replace('chess-sparsity-report/1', 'other/2')))).toBe('BENCH_SPARSITY_REPORT_INVALID');
    expect(codeOf(() => parseSparsityReport(REPORT.replace('"zeroed": 500', '"zeroed": 5000')))).toBe('BENCH_SPARSITY_REPORT_INVALID');
    expect(codeOf(() => parseSparsityReport(REPORT.replace('"layer": 2', '"layer": 7')))).toBe('BENCH_SPARSITY_REPORT_INVALID');
  });
});

describe('weight bytes read per token', () => {
  // Byte sizes by hand from the ggml block layouts: Q4_1 = 20 bytes per 32 values, Q8_0 = 34, Q5_0 = 22, F32 = 4 per value.
  const tensors: WeightTensor[] = [
    { name: 'token_embd.weight', type: GGMLType.Q4_1, shape: [64, 100], bytes: 100 * 2 * 20 }, // 4000
    { name: 'blk.0.attn_q_t.weight', type: GGMLType.Q8_0, shape: [64, 64], bytes: 64 * 2 * 34 }, // 4352
    { name: 'blk.0.attn_output_t.weight', type: GGMLType.Q5_0, shape: [64, 64], bytes: 64 * 2 * 22 }, // 2816, no sparse kernel for q5_0
    { name: 'blk.0.ffn_gate.weight', type: GGMLType.Q4_1, shape: [64, 128], bytes: 128 * 2 * 20 }, // 5120
    { name: 'blk.0.ffn_up.weight', type: GGMLType.Q4_1, shape: [64, 128], bytes: 128 * 2 * 20 }, // 5120
    { name: 'blk.0.ffn_down_t.weight', type: GGMLType.Q8_0, shape: [64, 128], bytes: 128 * 2 * 34 }, // 8704
    { name: 'blk.0.ffn_gate_tau', type: GGMLType.F32, shape: [128], bytes: 512 },
  ];
  const counters = parseSparsityReport(`{"format": "chess-sparsity-report/1", "n_layer": 1, "layers": [
    {"layer": 0, "attn_q_in": {"seen": 10, "zeroed": 5}, "attn_output_in": {"seen": 10, "zeroed": 4}, "ffn_down_in": {"seen": 100, "zeroed": 25}, "ffn_gate_act": {"seen": 100, "zeroed": 25}}]}`);

  it('transposed rows of dropped inputs and up rows of dead channels are skipped; the tied embedding is read whole', () => {
    const t = weightTraffic(tensors, counters);
    expect(t.totalBytes).toBe(30624);
    // 4000 (tied: LM head) + 4352*0.5 + 2816 (masked dense) + 5120 + 5120*0.75 + 8704*0.75 + 512
    expect(t.readBytes).toBe(4000 + 2176 + 2816 + 5120 + 3840 + 6528 + 512);
    expect(t.fraction).toBeCloseTo(24992 / 30624, 12);
  });

  it('column blocks (docs/gguf-sparse.md §3.1): per group with a kept channel, the scale section and the kept columns; K-quant up rows skipped', () => {
    // Q4_0 [64 inputs, 32 rows]: 2 groups x 32 rows x (2 scale + 16 column) bytes = 1152; input sparsity 0.5.
    // Q4_K [256, 32]: 1 group x 32 rows x (16 scale + 128 column) = 4608; input sparsity 0.25.
    // Q6_K [256, 32] whose every input is dropped: no group has a kept channel, nothing is read.
    const cb: WeightTensor[] = [
      { name: 'blk.0.attn_q_cb.weight', type: GGMLType.Q4_0, shape: [64, 32], bytes: 1152 },
      { name: 'blk.0.ffn_down_cb.weight', type: GGMLType.Q4_K, shape: [256, 32], bytes: 4608 },
      { name: 'blk.0.attn_output_cb.weight', type: GGMLType.Q6_K, shape: [256, 32], bytes: 32 * 210 },
      { name: 'blk.0.ffn_up.weight', type: GGMLType.Q4_0, shape: [64, 256], bytes: 256 * 2 * 18 }, // 9216, rows of dead channels skipped
      // the output-sparse product reads K-quant rows too: Q4_K [256, 64] = 64 rows x 144 bytes, gate sparsity 0.25 in layer 1
      { name: 'blk.1.ffn_up.weight', type: GGMLType.Q4_K, shape: [256, 64], bytes: 64 * 144 },
      { name: 'blk.1.ffn_gate_tau', type: GGMLType.F32, shape: [64], bytes: 256 },
      { name: 'blk.0.ffn_gate_tau', type: GGMLType.F32, shape: [256], bytes: 1024 },
    ];
    const c = parseSparsityReport(`{"format": "chess-sparsity-report/1", "n_layer": 2, "layers": [
      {"layer": 0, "attn_q_in": {"seen": 10, "zeroed": 5}, "attn_output_in": {"seen": 10, "zeroed": 10}, "ffn_down_in": {"seen": 100, "zeroed": 25}, "ffn_gate_act": {"seen": 100, "zeroed": 25}},
      {"layer": 1, "ffn_gate_act": {"seen": 100, "zeroed": 25}}]}`);
    const t = weightTraffic(cb, c);
    expect(t.totalBytes).toBe(1152 + 4608 + 6720 + 9216 + 1024 + 9216 + 256);
    // a group of 32 (256) channels all dropped: probability 0.5^32 (0.25^256), which skips its scales too
    const q40 = 2 * 32 * (2 * (1 - 0.5 ** 32) + 16 * 0.5);
    const q4k = 32 * (16 * (1 - 0.25 ** 256) + 128 * 0.75);
    expect(q40).toBeCloseTo(640, 6);
    expect(q4k).toBe(3584);
    expect(t.readBytes).toBeCloseTo(q40 + q4k + 0 + 9216 * 0.75 + 1024 + 9216 * 0.75 + 256, 9);
  });

  it('an untied embedding reads one row per token; no counters = dense traffic', () => {
    const untied = [...tensors, { name: 'output.weight', type: GGMLType.Q4_1, shape: [64, 100], bytes: 4000 }];
    const t = weightTraffic(untied, null);
    expect(t.totalBytes).toBe(34624);
    expect(t.readBytes).toBe(34624 - 4000 + 40);
    expect(weightTraffic(tensors, null).fraction).toBe(1);
  });
});
