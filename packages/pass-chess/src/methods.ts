/**
 * The methods, as data (one table, no switches elsewhere): what each one
 * thresholds and which projections it stores transposed. The layouts are the
 * compiler's default layout of docs/gguf-sparse.md §3.
 */

/** The seven projections of a Llama block, in the contract's order. */
export const PROJECTIONS = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'] as const;
export type Projection = (typeof PROJECTIONS)[number];

export const METHODS = ['chess', 'chess+', 'cats', 'teal'] as const;
export type Method = (typeof METHODS)[number];

export const STATISTICS = ['rms', 'mean-abs'] as const;
export type Statistic = (typeof STATISTICS)[number];

export interface MethodLayout {
  /** One line for `--help` and error messages. */
  readonly summary: string;
  /**
   * Threshold on the gate after its activation (`blk.N.ffn_gate_tau`):
   * `channel` = CHESS per-channel `t / m_i`; `layer` = CATS, one value per layer.
   */
  readonly gate: 'channel' | 'layer' | undefined;
  /** Projections whose input gets one tensor-wise threshold (`blk.N.<proj>_in_tau`). */
  readonly inputs: readonly Projection[];
  /** Projections stored transposed for the input-sparse kernel (`blk.N.<proj>_t.weight`). */
  readonly transposed: readonly Projection[];
}

export const METHOD_LAYOUTS: Readonly<Record<Method, MethodLayout>> = {
  chess: {
    summary: 'CHESS w/o: per-channel FFN gate thresholds t/m_i',
    gate: 'channel',
    inputs: [],
    transposed: ['ffn_down'],
  },
  'chess+': {
    summary: 'CHESS w/: per-channel FFN gate thresholds + one threshold each on the inputs of W_q and W_o',
    gate: 'channel',
    inputs: ['attn_q', 'attn_output'],
    transposed: ['attn_q', 'attn_output', 'ffn_down'],
  },
  cats: {
    summary: 'CATS: one gate threshold per layer',
    gate: 'layer',
    inputs: [],
    transposed: ['ffn_down'],
  },
  teal: {
    summary: 'TEAL: one threshold on the input of each of the seven projections',
    gate: undefined,
    inputs: PROJECTIONS,
    transposed: PROJECTIONS,
  },
};

export function isMethod(name: string): name is Method {
  return (METHODS as readonly string[]).includes(name);
}

export function isStatistic(name: string): name is Statistic {
  return (STATISTICS as readonly string[]).includes(name);
}

/** Whether the method uses a per-channel statistic m_i (the others record `none`). */
export function usesStatistic(method: Method): boolean {
  return METHOD_LAYOUTS[method].gate === 'channel';
}

const PROJECTION_WEIGHT = /^blk\.(\d+)\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight$/;

/** `blk.3.ffn_down.weight` -> { layer: 3, proj: 'ffn_down' }; anything else -> undefined. */
export function parseProjectionWeight(name: string): { layer: number; proj: Projection } | undefined {
  const m = PROJECTION_WEIGHT.exec(name);
  return m ? { layer: Number(m[1]), proj: m[2] as Projection } : undefined;
}

/** Tensor names of the contract (docs/gguf-sparse.md §3). */
export const contractNames = {
  weight: (layer: number, proj: Projection) => `blk.${layer}.${proj}.weight`,
  transposed: (layer: number, proj: Projection) => `blk.${layer}.${proj}_t.weight`,
  gateTau: (layer: number) => `blk.${layer}.ffn_gate_tau`,
  inputTau: (layer: number, proj: Projection) => `blk.${layer}.${proj}_in_tau`,
};
