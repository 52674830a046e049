import { describe, expect, it } from 'vitest';
import { GGMLType, dequantize, openGGUF, rowsFromColumnBlocks } from '@chess/gguf';
import { fetchDefaultModel } from '@chess/assets';
import { METHOD_LAYOUT, PROJECTIONS, makeDenseTwin, makeSparseTestModel, quantile } from './test-models.ts';

describe('sparse test models', () => {
  it(
    'follow docs/gguf-sparse.md: chess wrapper, thresholds, transposed weights equal to the source transposed',
    async () => {
      const source = await fetchDefaultModel();
      const path = await makeSparseTestModel({ method: 'chess+', source });
      const [dense, sparse] = await Promise.all([openGGUF(source), openGGUF(path)]);
      try {
        expect(sparse.metadata.getString('general.architecture')).toBe('chess');
        expect(sparse.metadata.getString('chess.base_architecture')).toBe('llama');
        expect(sparse.metadata.getString('chess.method')).toBe('chess+');
        expect(sparse.metadata.getNumber('chess.format_version')).toBe(1);
        expect(sparse.metadata.getNumber('llama.block_count')).toBe(dense.metadata.getNumber('llama.block_count'));

        const nLayer = dense.metadata.getNumber('llama.block_count');
        const nFF = dense.metadata.getNumber('llama.feed_forward_length');
        for (let il = 0; il < nLayer; il++) {
          expect(sparse.tensor(`blk.${il}.ffn_gate_tau`)).toMatchObject({ type: GGMLType.F32, shape: [nFF] });
          for (const proj of METHOD_LAYOUT['chess+'].inputTau) expect(sparse.tensor(`blk.${il}.${proj}_in_tau`)?.shape).toEqual([1]);
          for (const proj of METHOD_LAYOUT['chess+'].transposed) {
            expect(sparse.tensor(`blk.${il}.${proj}.weight`)).toBeUndefined();
            expect(sparse.tensor(`blk.${il}.${proj}_t.weight`)?.shape).toEqual([...dense.tensor(`blk.${il}.${proj}.weight`)!.shape].reverse());
          }
        }
        // the transposed F32 weight holds exactly the dequantized source, transposed
        for (const proj of ['ffn_down', 'attn_output'] as const) {
          const t = dense.tensor(`blk.7.${proj}.weight`)!;
          const [nIn, nOut] = t.shape as [number, number];
          const w = dequantize(t.type, await dense.readTensorData(t), t.elementCount);
          const tt = sparse.tensor(`blk.7.${proj}_t.weight`)!;
          const bytes = await sparse.readTensorData(tt);
          const wt = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
          for (let o = 0; o < nOut; o += 7) for (let i = 0; i < nIn; i += 5) expect(wt[i * nOut + o]).toBe(w[o * nIn + i]);
        }
        // every tensor of the source is either copied or replaced by its transposed form
        const names = new Set(sparse.tensors.map((t) => t.name));
        for (const t of dense.tensors) {
          const m = /^blk\.(\d+)\.([a-z_]+)\.weight$/.exec(t.name);
          const replaced = m && (PROJECTIONS as readonly string[]).includes(m[2]!) && METHOD_LAYOUT['chess+'].transposed.includes(m[2] as never);
          expect(names.has(replaced ? `blk.${m![1]}.${m![2]}_t.weight` : t.name)).toBe(true);
        }
      } finally {
        await Promise.all([dense.close(), sparse.close()]);
      }
    },
    10 * 60_000,
  );

  it(
    'column blocks: format 2, the source\'s type and shape, the source\'s rows bit for bit once restored; thresholds 0 at sparsity 0; the twin of all layers is the source',
    async () => {
      const source = await fetchDefaultModel();
      const path = await makeSparseTestModel({ method: 'teal', source, sparsity: 0, layout: 'column-blocks', layers: 3 });
      const [dense, sparse] = await Promise.all([openGGUF(source), openGGUF(path)]);
      try {
        expect(sparse.metadata.getNumber('chess.format_version')).toBe(2);
        expect(sparse.metadata.getNumber('llama.block_count')).toBe(3);
        expect(sparse.tensors.some((t) => t.name.startsWith('blk.3.'))).toBe(false);
        for (let il = 0; il < 3; il++) {
          for (const proj of PROJECTIONS) {
            const rows = dense.tensor(`blk.${il}.${proj}.weight`)!;
            const cb = sparse.tensor(`blk.${il}.${proj}_cb.weight`)!;
            expect(sparse.tensor(`blk.${il}.${proj}.weight`)).toBeUndefined();
            expect({ type: cb.type, shape: cb.shape, bytes: cb.byteLength }).toEqual({ type: rows.type, shape: rows.shape, bytes: rows.byteLength });
            // @chess/gguf's inverse is golden-tested against a numpy construction from the spec
            const [nIn, nOut] = rows.shape as [number, number];
            expect(Buffer.from(rowsFromColumnBlocks(cb.type, await sparse.readTensorData(cb), nIn, nOut)).equals(Buffer.from(await dense.readTensorData(rows)))).toBe(true);
            const tau = await sparse.readTensorData(sparse.tensor(`blk.${il}.${proj}_in_tau`)!);
            expect(new Float32Array(tau.buffer, tau.byteOffset, 1)[0]).toBe(0);
          }
        }
      } finally {
        await Promise.all([dense.close(), sparse.close()]);
      }
      const { readFile } = await import('node:fs/promises');
      expect((await readFile(await makeDenseTwin({ source }))).equals(await readFile(source))).toBe(true);
    },
    10 * 60_000,
  );

  it('quantile interpolates linearly', () => {
    expect(quantile([3, 1, 2, 4], 0)).toBe(1);
    expect(quantile([3, 1, 2, 4], 1)).toBe(4);
    expect(quantile([3, 1, 2, 4], 0.5)).toBe(2.5);
  });
});
