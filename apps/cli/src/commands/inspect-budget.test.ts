import { describe, expect, it } from 'vitest';
import { type InspectReport, formatInspectReport } from './inspect.ts';

const base: InspectReport = {
  path: 'm.gguf',
  fileSize: 1000,
  version: 3,
  alignment: 32,
  architecture: 'chess',
  baseArchitecture: 'llama',
  hyperparameters: {},
  sparsity: { 'chess.method': 'budget' },
  budget: null,
  general: {},
  tensors: [{ name: 't', type: 'f32', shape: [1], bytes: 4, offset: 0, layout: 'rows' }],
  byType: { f32: { tensors: 1, bytes: 4 } },
  contract: { violations: [] },
};

describe('chess inspect: the budget allocation', () => {
  it('prints the budget, the estimate and one row per layer with a column per site', () => {
    const text = formatInspectReport({ ...base, budget: { budget: Math.fround(0.78), estimate: 0.77981, sites: ['ffn_gate_act', 'attn_q_in'], sparsity: [[0.25, 0.1], [0.5, 0.075]] } });
    expect(text).toContain("budget allocation: 0.78 of the dense model's weight bytes per token (estimate 0.7798); target sparsity per layer and site:");
    expect(text).toMatch(/layer\s+ffn_gate_act\s+attn_q_in\n\s+0\s+0\.250\s+0\.100\n\s+1\s+0\.500\s+0\.075\n/);
  });

  it('says so when the recorded keys are inconsistent, and prints nothing for other files', () => {
    expect(formatInspectReport({ ...base, budget: 'chess.budget.sites must be a non-empty array of site names' })).toContain('budget allocation: unreadable (chess.budget.sites must be');
    expect(formatInspectReport(base)).not.toContain('budget allocation');
  });
});
