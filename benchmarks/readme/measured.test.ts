import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '@chess/core';
import { BEGIN, END, renderMeasured, withMeasured } from './measured.ts';

const results = join(repoRoot(), 'benchmarks', 'results');

describe("README's Measured table", () => {
  it('is what the committed results give (run pnpm -C benchmarks readme-measured after new results)', () => {
    const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8');
    expect(readme.includes(BEGIN) && readme.includes(END)).toBe(true);
    expect(withMeasured(readme, renderMeasured(results))).toBe(readme);
  });

  it('renders a figure of a result file, with its command, machine, date and revision', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chess-measured-'));
    const report = {
      command: 'pnpm -C benchmarks column-blocks --types q4_0',
      date: '2026-01-02T03:04:05.000Z',
      revision: 'abcdef0123456789',
      machine: { cpu: 'Test CPU', cores: 2 },
      windows: { batch: { ctx: 512, chunks: 20 } },
      results: [
        { type: 'q4_0', method: 'teal', route: 'batch', meanKl: 3e-6, maxKl: 1e-4, pplRatio: 1.000123, fileBytes: 101, sizeRatio: 1.01 },
        { type: 'q4_0', method: 'chess+', route: 'batch', meanKl: 0, maxKl: 0, pplRatio: 1, fileBytes: 100, sizeRatio: 1 },
      ],
    };
    writeFileSync(join(dir, 'column-blocks.json'), JSON.stringify(report));
    const table = renderMeasured(dir);
    expect(table).toContain('teal mean KL 3.0e-6, PPL ×1.000123, size +1.00 %');
    expect(table).toContain('chess+ mean KL < 5e-7, PPL ×1.000000, size +0.00 %');
    expect(table).toContain('`pnpm -C benchmarks column-blocks --types q4_0`');
    expect(table).toContain('Test CPU, 2 cores, 2026-01-02, abcdef0');
  });

  it('says which stock build an end-to-end row was measured against', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chess-measured-e2e-'));
    const sp = (median: number) => ({ median, min: median, max: median, n: 1 });
    const row = (variant: string, method: string, ratio: number) => ({
      type: 'q4_0', variant, method, read_ceiling_mode: false, decode_speedup_vs_stock_dense: sp(ratio), prefill_speedup_vs_stock_dense: sp(1), ideal_decode_speedup: 1, read_ceiling_decode_speedup: null, decode_tps: sp(3),
    });
    const report = (stock?: string) => ({
      started: '2026-01-02T03:04:05.000Z',
      git_revision: 'abcdef0123456789',
      machine: { cpu: 'Test CPU', cores: 2 },
      ...(stock ? { llama_bench: { stock, patched: '/cache/patched/bin/llama-bench' } } : {}),
      options: { shape: 'llama2-7b', types: ['q4_0'], sparsity: 0.5, threads: 2, tg: 32, pp: 256, rounds: 1 },
      results: [row('stock dense', 'dense', 1), row('patched teal', 'teal', 1.5)],
    });
    writeFileSync(join(dir, 'e2e-speed-cb-q4_k_m.json'), JSON.stringify(report('/cache/llama.cpp/stock-tools-80fb11ac73e6-native-noamx/build/bin/llama-bench')));
    writeFileSync(join(dir, 'e2e-speed-cb-q4_0.json'), JSON.stringify(report()));
    const [native, old] = renderMeasured(dir).split('\n').slice(2);
    expect(native).toContain('stock: the pristine tree built like the patched build');
    expect(native).toContain('teal: decode **1.50x**');
    expect(old).toContain('stock: a fixed-level static build, not built like the patched build');
  });

  it('refuses a results folder without any of its files', () => {
    expect(() => renderMeasured(mkdtempSync(join(tmpdir(), 'chess-measured-empty-')))).toThrow(/no result file/);
  });
});
