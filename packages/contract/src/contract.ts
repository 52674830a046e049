/**
 * The sparse GGUF contract (docs/gguf-sparse.md) as ONE data table: what the
 * compiler writes and the patched llama.cpp reads. Every other file of this
 * package derives from it; no other package spells these facts again.
 *
 * Plain data only (strings, numbers, booleans, arrays and records, no
 * functions), so that a generator can write it out as a C header: tensor names
 * are printf patterns (`%d` the layer, `%s` the projection), every enumerated
 * entry carries its C identifier, ggml types carry their `enum ggml_type`
 * number, and the keep rule carries its C expression.
 */
export const SPARSE_GGUF = {
  /** §1: `general.architecture` of every sparse GGUF (stock llama.cpp refuses it). */
  architecture: 'chess',

  /** §2: metadata keys. */
  keys: {
    baseArchitecture: 'chess.base_architecture',
    formatVersion: 'chess.format_version',
    method: 'chess.method',
    statistic: 'chess.statistic',
    targetSparsity: 'chess.target_sparsity',
    calibrationSource: 'chess.calibration.source',
    calibrationTokens: 'chess.calibration.tokens',
    calibrationSeed: 'chess.calibration.seed',
    tool: 'chess.tool',
    /** `budget` method: the byte budget, a fraction of the dense model's weight bytes per decoded token (f32). */
    budget: 'chess.budget.fraction',
    /** `budget` method: the fraction the allocation's byte model expects at the allocated sparsities (f32). */
    budgetEstimate: 'chess.budget.estimate',
    /** `budget` method: the thresholded sites of a layer, in the order of `chess.budget.sparsity` (array of strings). */
    budgetSites: 'chess.budget.sites',
    /** `budget` method: the allocated target sparsity of every layer and site, layer-major (array of f32, n_layer x sites). */
    budgetSparsity: 'chess.budget.sparsity',
  },

  /**
   * `chess.format_version`: the largest `formatVersion` of the storage layouts
   * present in the file (below), at least `base`. So: 2 when any `_cb` tensor is
   * present, else 1 (a reader of format 1 would misread a `_cb` tensor).
   */
  formatVersion: { base: 1 },

  /** The keep rule, everywhere (thresholds, kernels, counters). */
  keepRule: {
    doc: 'an activation element v with threshold tau survives iff |v| > tau (strict); dropped elements are exactly zero; with no threshold, v survives iff v != 0',
    c: '(fabsf(v) > (tau))',
    /** The rule as reports and the runtime's sparsity report print it. */
    text: '|v| > tau',
  },

  /** §3: the seven projections of a Llama block, in the runtime's order (enum llama_chess_proj). */
  projections: [
    { name: 'attn_q', c: 'LLAMA_CHESS_Q', block: 'attention', doc: 'W_q: reads the normed hidden state; CHESS thresholds its own copy of it (W_k and W_v read the dense one)' },
    { name: 'attn_k', c: 'LLAMA_CHESS_K', block: 'attention', doc: 'W_k: reads the normed hidden state (dense in CHESS; TEAL thresholds its input)' },
    { name: 'attn_v', c: 'LLAMA_CHESS_V', block: 'attention', doc: 'W_v: reads the normed hidden state (dense in CHESS; TEAL thresholds its input)' },
    { name: 'attn_output', c: 'LLAMA_CHESS_O', block: 'attention', doc: 'W_o: reads the concatenated head outputs' },
    { name: 'ffn_gate', c: 'LLAMA_CHESS_GATE', block: 'ffn', doc: 'W_gate: dense in CHESS; ffn_gate_tau thresholds its activation act(W_gate x)' },
    { name: 'ffn_up', c: 'LLAMA_CHESS_UP', block: 'ffn', doc: 'W_up: with ffn_gate_tau, the output-sparse product reads the rows of the surviving channels (row layout, fused with the gate)' },
    { name: 'ffn_down', c: 'LLAMA_CHESS_DOWN', block: 'ffn', doc: 'W_down: reads the gated product act(g) * u; input-sparse (its dead channels are exactly zero)' },
  ],

  /**
   * §5: counter sites of the runtime's sparsity report, per layer: the input of
   * each projection (`%s` = projection, in projection order), then the gate after
   * its activation (enum: LLAMA_CHESS_SITE_GATE_ACT = the projection count).
   */
  sites: {
    projectionInput: { name: '%s_in', doc: 'the input of the projection, after its threshold if it has one (zeros are counted either way)' },
    gateAct: { name: 'ffn_gate_act', c: 'LLAMA_CHESS_SITE_GATE_ACT', doc: 'the gate after its activation, after ffn_gate_tau' },
  },

  /**
   * Graph node names (llama.cpp's `cb(tensor, name, il)`; the node is named
   * `<name>-<layer>`) that the profile collector (packages/calibrate/native/
   * chess-profile.cpp) reads through the eval callback. `stock`: names of
   * llama.cpp's own Llama graph; `sparse`: names the CHESS routes of
   * llama-chess.cpp give their nodes.
   */
  graphNodes: {
    stock: {
      attnNorm: { name: 'attn_norm', doc: 'the normed hidden state: input of W_q, W_k, W_v' },
      kqvOut: { name: 'kqv_out', doc: 'the concatenated head outputs: input of W_o' },
      ffnNorm: { name: 'ffn_norm', doc: 'the normed hidden state: input of W_gate, W_up' },
      ffnUp: { name: 'ffn_up', doc: 'u = W_up x (dense graph only)' },
      ffnGate: { name: 'ffn_gate', doc: 'W_gate x before the activation (dense graph)' },
      ffnSwiglu: { name: 'ffn_swiglu', doc: 'act(W_gate x) * u, the input of W_down (dense graph, SiLU)' },
      ffnGeglu: { name: 'ffn_geglu', doc: 'the same with GELU' },
    },
    sparse: {
      gateAct: { name: 'ffn_gate_act', doc: 'act(W_gate x), before ffn_gate_tau' },
      upGated: { name: 'chess_up_gated', doc: 'the fused output-sparse W_up product times the thresholded gate: the input of W_down' },
      gatePar: { name: 'ffn_gate_par', doc: 'the thresholded gate times u (unfused route): the input of W_down' },
    },
  },

  /** §3: tensor names (ggml `ne` shapes: innermost first). */
  tensors: {
    weight: { name: 'blk.%d.%s.weight', doc: 'a projection in its row layout (the source tensor: ne = [n_in, n_out])' },
    columnBlocks: { name: 'blk.%d.%s_cb.weight', doc: 'a projection in the column-block layout (§3.1): the source type, shape and byte count; replaces blk.N.<proj>.weight' },
    transposed: { name: 'blk.%d.%s_t.weight', doc: 'a projection stored transposed and re-quantized (§3.2): ne = [n_out, n_in]; replaces blk.N.<proj>.weight' },
    inputTau: { name: 'blk.%d.%s_in_tau', type: 'f32', ne: '[1]', doc: 'one threshold on the input of the projection' },
    gateTau: { name: 'blk.%d.ffn_gate_tau', type: 'f32', ne: '[n_ff]', doc: 'per-channel thresholds on the gate after its activation (CATS: n_ff copies of one value)' },
    upRows: {
      name: 'blk.%d.ffn_up.weight',
      c: 'LLM_TENSOR_CHESS_FFN_UP_ROWS',
      doc: 'W_up of a layer with ffn_gate_tau: the same tensor as its weight, loaded for row reads by the fused output-sparse product (kept out of repacking buffer types)',
    },
  },

  /** §2 `chess.statistic`: the per-channel statistic m_i of chess / chess+; `none` for the others. */
  statistics: {
    rms: { doc: 'first release: m_i = sqrt(E[u_i^2]) (t taken on squared scores)' },
    'mean-abs': { doc: 'refactor: m_i = E[abs(u_i)]' },
  },
  noStatistic: 'none',

  /**
   * §2 `chess.method`: what each method thresholds and which projections it
   * makes input-sparse (stored in the compiler's storage layout, below).
   * gate: `channel` = per-channel t / m_i (CHESS), `layer` = one value per layer (CATS), null = none.
   */
  methods: {
    chess: {
      summary: 'CHESS w/o: per-channel FFN gate thresholds t/m_i',
      gate: 'channel',
      inputs: [],
      inputSparse: ['ffn_down'],
    },
    'chess+': {
      summary: 'CHESS w/: per-channel FFN gate thresholds + one threshold each on the inputs of W_q and W_o',
      gate: 'channel',
      inputs: ['attn_q', 'attn_output'],
      inputSparse: ['attn_q', 'attn_output', 'ffn_down'],
    },
    cats: {
      summary: 'CATS: one gate threshold per layer',
      gate: 'layer',
      inputs: [],
      inputSparse: ['ffn_down'],
    },
    teal: {
      summary: 'TEAL: one threshold on the input of each of the seven projections',
      gate: null,
      inputs: ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'],
      inputSparse: ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'],
    },
    budget: {
      summary: 'byte budget (--budget): per-layer, per-site sparsity allocated by estimated divergence per byte saved; weight-aware per-channel FFN gate thresholds t / (m_i |W_down col i|), one threshold each on the inputs of W_q, W_k, W_v, W_o, W_gate',
      allocation: 'budget',
      gate: 'channel',
      inputs: ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate'],
      inputSparse: ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_down'],
    },
  },

  /**
   * Storage layouts of the input-sparse projections. A projection that the
   * chosen layout cannot hold keeps its row layout (`tensors.weight`) and runs
   * on the runtime's masked-dense route (same function, not faster).
   */
  layouts: {
    'column-blocks': {
      tensor: 'columnBlocks',
      formatVersion: 2,
      default: true,
      doc: 'the source blocks, bit for bit, re-arranged per input channel (§3.1): same type, shape and bytes',
    },
    transposed: {
      tensor: 'transposed',
      formatVersion: 1,
      default: false,
      /** Types a transposed projection may be re-quantized to (the fast kernels read f32, f16, bf16, q8_0, q4_0, q4_1). */
      types: ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1'],
      /** Re-quantizing a Q4_1 weight to 4 bits along the other axis rounds it twice; Q8_0 keeps the dense perplexity (docs/transposed-weights.md). */
      defaultType: 'q8_0',
      doc: 'transposed and re-quantized along the output axis (§3.2)',
    },
  },

  /**
   * §3.1, the column-block layout. The data is n_in / groupSize group records of
   * n_out * blockBytes bytes: the scale section (each field an array over the
   * rows, `bytes` per row, in this order), then one column record per channel of
   * the group (its planes in this order). Types whose blocks hold scales need
   * n_out % rowMultiple == 0 (planes come in units of `rowUnit` rows).
   */
  columnBlocks: {
    rowUnit: 32,
    planes: {
      nibble: { bitsPerRow: 4, valueBits: [0, 4], doc: 'R/2 bytes: byte b (0..15) of unit u is (v[32u+b] & 15) | (v[32u+16+b] & 15) << 4' },
      bit: { bitsPerRow: 1, valueBits: [4, 5], doc: 'R/8 bytes: unit u is a little-endian u32 whose bit b is bit 4 of v[32u+b]' },
      crumb: { bitsPerRow: 2, valueBits: [4, 6], doc: 'R/4 bytes: byte b (0..7) of unit u holds, in bits 2k..2k+1 (k = 0..3), bits 4..5 of v[32u+8k+b]' },
      raw8: { bitsPerRow: 8, valueBits: [0, 8], doc: 'the R stored bytes (Q8_0: int8 qs), row order' },
      raw16: { bitsPerRow: 16, valueBits: [0, 16], doc: 'the R stored 16-bit values, little-endian, row order' },
      raw32: { bitsPerRow: 32, valueBits: [0, 32], doc: 'the R stored 32-bit values, little-endian, row order' },
    },
    types: [
      { type: 'f32', ggmlType: 0, c: 'CHESS_TYPE_F32', groupSize: 1, blockBytes: 4, rowMultiple: 1, scales: [], column: ['raw32'] },
      { type: 'f16', ggmlType: 1, c: 'CHESS_TYPE_F16', groupSize: 1, blockBytes: 2, rowMultiple: 1, scales: [], column: ['raw16'] },
      { type: 'bf16', ggmlType: 30, c: 'CHESS_TYPE_BF16', groupSize: 1, blockBytes: 2, rowMultiple: 1, scales: [], column: ['raw16'] },
      { type: 'q8_0', ggmlType: 8, c: 'CHESS_TYPE_Q8_0', groupSize: 32, blockBytes: 34, rowMultiple: 32, scales: [{ name: 'd', bytes: 2, kind: 'f16' }], column: ['raw8'] },
      { type: 'q4_0', ggmlType: 2, c: 'CHESS_TYPE_Q4_0', groupSize: 32, blockBytes: 18, rowMultiple: 32, scales: [{ name: 'd', bytes: 2, kind: 'f16' }], column: ['nibble'] },
      {
        type: 'q4_1',
        ggmlType: 3,
        c: 'CHESS_TYPE_Q4_1',
        groupSize: 32,
        blockBytes: 20,
        rowMultiple: 32,
        scales: [
          { name: 'd', bytes: 2, kind: 'f16' },
          { name: 'm', bytes: 2, kind: 'f16' },
        ],
        column: ['nibble'],
      },
      { type: 'q5_0', ggmlType: 6, c: 'CHESS_TYPE_Q5_0', groupSize: 32, blockBytes: 22, rowMultiple: 32, scales: [{ name: 'd', bytes: 2, kind: 'f16' }], column: ['nibble', 'bit'] },
      {
        type: 'q5_1',
        ggmlType: 7,
        c: 'CHESS_TYPE_Q5_1',
        groupSize: 32,
        blockBytes: 24,
        rowMultiple: 32,
        scales: [
          { name: 'd', bytes: 2, kind: 'f16' },
          { name: 'm', bytes: 2, kind: 'f16' },
        ],
        column: ['nibble', 'bit'],
      },
      {
        type: 'q4_K',
        ggmlType: 12,
        c: 'CHESS_TYPE_Q4_K',
        groupSize: 256,
        blockBytes: 144,
        rowMultiple: 32,
        scales: [
          { name: 'd', bytes: 2, kind: 'f16' },
          { name: 'dmin', bytes: 2, kind: 'f16' },
          { name: 'scales', bytes: 12, kind: 'u8' },
        ],
        column: ['nibble'],
      },
      {
        type: 'q5_K',
        ggmlType: 13,
        c: 'CHESS_TYPE_Q5_K',
        groupSize: 256,
        blockBytes: 176,
        rowMultiple: 32,
        scales: [
          { name: 'd', bytes: 2, kind: 'f16' },
          { name: 'dmin', bytes: 2, kind: 'f16' },
          { name: 'scales', bytes: 12, kind: 'u8' },
        ],
        column: ['nibble', 'bit'],
      },
      {
        type: 'q6_K',
        ggmlType: 14,
        c: 'CHESS_TYPE_Q6_K',
        groupSize: 256,
        blockBytes: 210,
        rowMultiple: 32,
        scales: [
          { name: 'd', bytes: 2, kind: 'f16' },
          { name: 'scales', bytes: 16, kind: 'i8' },
        ],
        column: ['nibble', 'crumb'],
      },
    ],
  },
} as const;

export type SparseGgufContract = typeof SPARSE_GGUF;
