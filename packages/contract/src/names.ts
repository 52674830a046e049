/**
 * Tensor names of the contract (docs/gguf-sparse.md §3): formatted from and
 * parsed with the printf patterns of the contract table (`%d` layer, `%s`
 * projection).
 */
import { SPARSE_GGUF } from './contract.ts';
import { PROJECTIONS, type Projection } from './projections.ts';

export type TensorKind = keyof typeof SPARSE_GGUF.tensors;

function format(kind: TensorKind, layer: number, proj?: Projection): string {
  const name = SPARSE_GGUF.tensors[kind].name.replace('%d', String(layer));
  return proj === undefined ? name : name.replace('%s', proj);
}

/** Tensor names of the contract. */
export const contractNames = {
  /** `blk.N.<proj>.weight`: the row layout (the source's). */
  weight: (layer: number, proj: Projection) => format('weight', layer, proj),
  /** `blk.N.<proj>_cb.weight`: the column-block layout. */
  columnBlocks: (layer: number, proj: Projection) => format('columnBlocks', layer, proj),
  /** `blk.N.<proj>_t.weight`: the transposed layout. */
  transposed: (layer: number, proj: Projection) => format('transposed', layer, proj),
  /** `blk.N.ffn_gate_tau` */
  gateTau: (layer: number) => format('gateTau', layer),
  /** `blk.N.<proj>_in_tau` */
  inputTau: (layer: number, proj: Projection) => format('inputTau', layer, proj),
};

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const pattern = (kind: TensorKind) =>
  new RegExp(`^${escape(SPARSE_GGUF.tensors[kind].name).replace('%d', '(\\d+)').replace('%s', `(${PROJECTIONS.join('|')})`)}$`);

/**
 * Kinds in the order a name is matched: `upRows` is the same name as the weight
 * of ffn_up, so it is never the parse of a name (it names a role, not a tensor).
 */
const PARSED_KINDS = ['weight', 'columnBlocks', 'transposed', 'inputTau', 'gateTau'] as const satisfies readonly TensorKind[];
const PATTERNS = PARSED_KINDS.map((kind) => [kind, pattern(kind)] as const);

export interface ContractTensor {
  readonly kind: (typeof PARSED_KINDS)[number];
  readonly layer: number;
  /** The projection (absent for `gateTau`). */
  readonly proj?: Projection;
}

/** What a tensor name is in the contract, or undefined for any other tensor (norms, embeddings ...). */
export function parseContractTensor(name: string): ContractTensor | undefined {
  for (const [kind, re] of PATTERNS) {
    const m = re.exec(name);
    if (!m) continue;
    return kind === 'gateTau' ? { kind, layer: Number(m[1]) } : { kind, layer: Number(m[1]), proj: m[2] as Projection };
  }
  return undefined;
}

/** `blk.3.ffn_down.weight` -> { layer: 3, proj: 'ffn_down' }; anything else (a `_cb` or `_t` copy too) -> undefined. */
export function parseProjectionWeight(name: string): { layer: number; proj: Projection } | undefined {
  const t = parseContractTensor(name);
  return t?.kind === 'weight' ? { layer: t.layer, proj: t.proj! } : undefined;
}
