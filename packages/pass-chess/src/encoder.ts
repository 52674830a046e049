/**
 * The bytes of a projection in a storage layout come from outside the pass:
 * re-arranging a quantized tensor (column blocks) or re-quantizing its
 * transpose are codec work (@chess/gguf), which the compiler driver
 * (@chess/compiler) supplies. The pass decides the structure (name, dtype,
 * shape, op); without an encoder the new weights carry no data (IR-level use:
 * golden text, the reference interpreter with its own weights), and writing
 * them fails loudly (WEIGHT_DETACHED).
 */
import type { Layout } from '@chess/contract';
import type { DType, Module, Weight, WeightData } from '@chess/ir';

/**
 * The data of `source` (a projection [n_out, n_in] of `module`) stored in
 * `layout`: column blocks keep its dtype and shape; transposed is
 * [n_in, n_out] re-quantized to `dtype`. Produced lazily, when written.
 */
export type LayoutEncoder = (module: Module, source: Weight, layout: Layout, dtype: DType) => WeightData;
