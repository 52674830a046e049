import { IrErrorCode, irError } from '../errors.ts';
import type { Kernel } from '../interpreter.ts';

export const input: Kernel = ({ tokens }) => ({ shape: [tokens.length], data: Float64Array.from(tokens) });

/** ggml_get_rows: out[t] = table[ids[t]]. */
export const embedding: Kernel = ({ inputs: [ids, table] }) => {
  const [nVocab, d] = table!.shape as [number, number];
  const t = ids!.shape[0]!;
  const out = new Float64Array(t * d);
  for (let i = 0; i < t; i++) {
    const id = ids!.data[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= nVocab) {
      throw irError(IrErrorCode.INTERP_INPUT, `token id ${id} at position ${i} is outside the vocabulary 0..${nVocab - 1}`, { position: i, id });
    }
    out.set(table!.data.subarray(id * d, (id + 1) * d), i * d);
  }
  return { shape: [t, d], data: out };
};
