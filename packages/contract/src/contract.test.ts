/**
 * The contract table is consistent with itself (sizes of §3.1, names that
 * parse back, methods that only threshold what they make sparse) and with the
 * runtime that reads it: the tensor names, projection order, counter sites
 * and type numbers written in the patched llama.cpp and in chess_sparse.h.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  COLUMN_BLOCK_TYPES,
  COLUMN_PLANES,
  DEFAULT_LAYOUT,
  GATE_ACT_SITE,
  LAYOUTS,
  METHODS,
  METHOD_LAYOUTS,
  PROJECTIONS,
  SITES,
  SPARSE_GGUF,
  columnBlockMisfit,
  columnBlockType,
  contractNames,
  formatVersionOf,
  keeps,
  parseContractTensor,
  parseProjectionWeight,
  tensorLayout,
  thresholdedSites,
} from './index.ts';

const BACKEND = join(import.meta.dirname, '..', '..', 'backend-llamacpp');
const read = (...path: string[]) => readFileSync(join(BACKEND, ...path), 'utf8');

describe('§3.1 column-block table', () => {
  it.each(COLUMN_BLOCK_TYPES.map((t) => [t.type, t] as const))('%s: the scale section and the column records fill exactly one block per row', (_, t) => {
    const scaleBytes = t.scales.reduce((n, f) => n + f.bytes, 0);
    const columnBits = t.column.reduce((n, p) => n + COLUMN_PLANES[p].bitsPerRow, 0);
    expect(scaleBytes + (t.groupSize * columnBits) / 8).toBe(t.blockBytes);
  });

  it.each(COLUMN_BLOCK_TYPES.map((t) => [t.type, t] as const))('%s: the planes hold the bits of the value once each, from bit 0 up', (_, t) => {
    let next = 0;
    for (const p of t.column) {
      const [lo, hi] = COLUMN_PLANES[p].valueBits;
      expect(lo).toBe(next);
      expect(hi - lo).toBe(COLUMN_PLANES[p].bitsPerRow);
      next = hi;
    }
  });

  it('the sizes the spec states per group: 18R, 20R, 22R, 24R, 34R, 144R, 176R, 210R', () => {
    const perGroup = Object.fromEntries(COLUMN_BLOCK_TYPES.map((t) => [t.type, t.blockBytes]));
    expect(perGroup).toEqual({ f32: 4, f16: 2, bf16: 2, q8_0: 34, q4_0: 18, q4_1: 20, q5_0: 22, q5_1: 24, q4_K: 144, q5_K: 176, q6_K: 210 });
  });

  it('fit rule: a type of the table, n_in whole groups, n_out whole 32-row units for types with scales', () => {
    expect(columnBlockMisfit('q4_1', 1536, 576)).toBeUndefined();
    expect(columnBlockMisfit(3, 1536, 576)).toBeUndefined();
    expect(columnBlockMisfit('q4_1', 1536, 48)).toMatch(/n_out = 48 is not a positive multiple of 32/);
    expect(columnBlockMisfit('q4_K', 576, 64)).toMatch(/n_in = 576 is not a positive multiple of the q4_K group size 256/);
    expect(columnBlockMisfit('q2_K', 256, 64)).toMatch(/type q2_K has no column-block layout/);
    expect(columnBlockMisfit('f16', 7, 3)).toBeUndefined();
    expect(columnBlockType('q6_K')?.ggmlType).toBe(14);
    expect(columnBlockType(30)?.type).toBe('bf16');
  });
});

describe('tensor names', () => {
  it('format and parse back for every layer kind and projection', () => {
    for (const layer of [0, 7, 123]) {
      for (const proj of PROJECTIONS) {
        expect(parseContractTensor(contractNames.weight(layer, proj))).toEqual({ kind: 'weight', layer, proj });
        expect(parseContractTensor(contractNames.columnBlocks(layer, proj))).toEqual({ kind: 'columnBlocks', layer, proj });
        expect(parseContractTensor(contractNames.transposed(layer, proj))).toEqual({ kind: 'transposed', layer, proj });
        expect(parseContractTensor(contractNames.inputTau(layer, proj))).toEqual({ kind: 'inputTau', layer, proj });
      }
      expect(parseContractTensor(contractNames.gateTau(layer))).toEqual({ kind: 'gateTau', layer });
    }
    expect(contractNames.columnBlocks(3, 'ffn_down')).toBe('blk.3.ffn_down_cb.weight');
    expect(contractNames.transposed(3, 'attn_q')).toBe('blk.3.attn_q_t.weight');
    expect(contractNames.inputTau(0, 'attn_output')).toBe('blk.0.attn_output_in_tau');
    expect(contractNames.gateTau(29)).toBe('blk.29.ffn_gate_tau');
  });

  it('other tensors are not contract tensors; a copy is not a projection weight', () => {
    for (const name of ['token_embd.weight', 'blk.0.attn_norm.weight', 'blk.0.ffn_down.bias', 'blk.x.ffn_down.weight', 'blk.0.ffn_downs.weight', 'xblk.0.ffn_down.weight']) {
      expect(parseContractTensor(name), name).toBeUndefined();
    }
    expect(parseProjectionWeight('blk.2.ffn_up.weight')).toEqual({ layer: 2, proj: 'ffn_up' });
    expect(parseProjectionWeight('blk.2.ffn_up_cb.weight')).toBeUndefined();
    expect(parseProjectionWeight('blk.2.ffn_up_t.weight')).toBeUndefined();
  });

  it('layout per tensor and the format version: 2 with a _cb tensor, else 1', () => {
    expect(tensorLayout('blk.1.ffn_down_cb.weight')).toBe('column-blocks');
    expect(tensorLayout('blk.1.ffn_down_t.weight')).toBe('transposed');
    expect(tensorLayout('blk.1.ffn_down.weight')).toBe('rows');
    expect(tensorLayout('output_norm.weight')).toBe('rows');
    expect(tensorLayout('blk.1.ffn_gate_tau')).toBe('threshold');
    expect(tensorLayout('blk.1.attn_q_in_tau')).toBe('threshold');
    expect(formatVersionOf(['token_embd.weight', 'blk.0.ffn_down.weight', 'blk.0.ffn_gate_tau'])).toBe(1);
    expect(formatVersionOf(['blk.0.ffn_down_t.weight', 'blk.0.attn_q_t.weight'])).toBe(1);
    expect(formatVersionOf(['blk.0.ffn_down_t.weight', 'blk.1.ffn_down_cb.weight'])).toBe(2);
    expect(DEFAULT_LAYOUT).toBe('column-blocks');
    expect(LAYOUTS).toEqual(['column-blocks', 'transposed']);
  });
});

describe('methods', () => {
  it('a thresholded input is always read by the input-sparse kernel; a gate threshold makes W_down input-sparse', () => {
    for (const method of METHODS) {
      const layout = METHOD_LAYOUTS[method];
      for (const p of layout.inputs) expect(layout.inputSparse, `${method} ${p}`).toContain(p);
      if (layout.gate) expect(layout.inputSparse).toContain('ffn_down');
    }
    expect(thresholdedSites('chess+')).toEqual(['ffn_gate_act', 'attn_q_in', 'attn_output_in']);
    expect(thresholdedSites('teal')).toEqual(PROJECTIONS.map((p) => `${p}_in`));
    expect(thresholdedSites('cats')).toEqual([GATE_ACT_SITE]);
  });

  it('keep rule: |v| > tau, strict; NaN dropped', () => {
    expect(keeps(0.5, 0.5)).toBe(false);
    expect(keeps(-0.5000001, 0.5)).toBe(true);
    expect(keeps(0, 0)).toBe(false);
    expect(keeps(Number.NaN, 0)).toBe(false);
  });
});

describe('the runtime spells the same contract', () => {
  it('tensor names: llama.cpp LLM_TENSOR_NAMES of the patch series', () => {
    const patch = read('patches', '0001-chess-sparse-gguf-loading.patch');
    const declared = new Set([...patch.matchAll(/\{ LLM_TENSOR_CHESS_\w+,\s*"([^"]+)" \}/g)].map((m) => m[1]!));
    // llama.cpp appends ".weight" itself; the thresholds have no suffix
    const runtime = (pattern: string) => pattern.replace('.weight', '');
    for (const proj of PROJECTIONS) {
      expect(declared).toContain(runtime(SPARSE_GGUF.tensors.transposed.name.replace('%s', proj)));
      expect(declared).toContain(runtime(SPARSE_GGUF.tensors.inputTau.name.replace('%s', proj)));
    }
    expect(declared).toContain(SPARSE_GGUF.tensors.gateTau.name);
    expect(declared).toContain(runtime(SPARSE_GGUF.tensors.upRows.name));
    expect(patch).toContain(SPARSE_GGUF.tensors.upRows.c);
  });

  it('projection order (enum llama_chess_proj) and counter sites (CHESS_SITE_NAMES)', () => {
    const header = read('llama-src', 'llama-chess.h');
    const enumBody = /enum llama_chess_proj \{([^}]*)\}/.exec(header)![1]!;
    const order = [...enumBody.matchAll(/(LLAMA_CHESS_\w+)/g)].map((m) => m[1]!).filter((n) => n !== 'LLAMA_CHESS_N_PROJ');
    expect(order).toEqual(SPARSE_GGUF.projections.map((p) => p.c));
    // the names themselves come from the generated header (c-header.test.ts checks its values)
    const source = read('llama-src', 'llama-chess.cpp');
    expect(/CHESS_SITE_NAMES[^{]*\{([^}]*)\}/.exec(source)![1]!.trim()).toBe('CHESS_CONTRACT_SITE_NAMES');
    expect(/CHESS_PROJ_NAMES[^{]*\{([^}]*)\}/.exec(source)![1]!.trim()).toBe('CHESS_CONTRACT_PROJ_NAMES');
    expect(source).toContain('LLAMA_CHESS_SITES_PER_LAYER == CHESS_CONTRACT_SITES_PER_LAYER');
    expect(SITES).toHaveLength(PROJECTIONS.length + 1);
    expect(header).toMatch(new RegExp(`${SPARSE_GGUF.sites.gateAct.c}\\s*=\\s*LLAMA_CHESS_N_PROJ`));
  });

  it('type numbers and names of the column-block types: enum chess_type of chess_sparse.h', () => {
    const header = read('native', 'include', 'chess_sparse.h');
    const body = /typedef enum chess_type \{([^}]*)\}/.exec(header)![1]!;
    const declared = Object.fromEntries([...body.matchAll(/(CHESS_TYPE_\w+)\s*=\s*(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
    for (const t of COLUMN_BLOCK_TYPES) expect(declared[t.c], t.c).toBe(t.ggmlType);
    expect(header).toMatch(/chess_cb_group_size/);
  });
});
