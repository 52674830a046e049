import { existsSync, readFileSync } from 'node:fs';
import { columnBlockReadBytes as contractColumnBlockReadBytes } from '@chess/contract';
import { ChessError } from '@chess/core';
import { GGML_TYPE_TRAITS, GGMLType, openGGUF } from '@chess/gguf';

/**
 * Achieved sparsity and weight bytes read per token, from the patched
 * runtime's counters (`CHESS_SPARSITY_REPORT`, docs/gguf-sparse.md §5) and the
 * GGUF's tensor table.
 */

/** Counter sites of one layer, as the patched runtime names them. */
export const SPARSITY_SITES = ['attn_q_in', 'attn_k_in', 'attn_v_in', 'attn_output_in', 'ffn_gate_in', 'ffn_up_in', 'ffn_down_in', 'ffn_gate_act'] as const;
export type SparsitySite = (typeof SPARSITY_SITES)[number];

export interface SiteCounter {
  seen: number;
  zeroed: number;
}

/** A parsed `chess-sparsity-report/1`: per layer, per site counters (cumulative over the process). */
export interface SparsityCounters {
  nLayer: number;
  layers: Map<number, Partial<Record<SparsitySite, SiteCounter>>>;
}

/** Parse the JSON the patched runtime writes; anything malformed is a BENCH_SPARSITY_REPORT_INVALID error. */
export function parseSparsityReport(text: string, source = 'sparsity report'): SparsityCounters {
  const bad = (why: string): never => {
    throw new ChessError('BENCH_SPARSITY_REPORT_INVALID', `${source}: ${why}`, { source });
  };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return bad(`not valid JSON (${(error as Error).message})`);
  }
  const v = value as { format?: unknown; n_layer?: unknown; layers?: unknown };
  if (v === null || typeof v !== 'object' || v.format !== 'chess-sparsity-report/1') return bad(`format is not chess-sparsity-report/1`);
  if (!Number.isInteger(v.n_layer) || (v.n_layer as number) < 0) return bad('n_layer is not a non-negative integer');
  if (!Array.isArray(v.layers)) return bad('layers is not an array');
  const nLayer = v.n_layer as number;
  const layers = new Map<number, Partial<Record<SparsitySite, SiteCounter>>>();
  for (const entry of v.layers as unknown[]) {
    const e = entry as Record<string, unknown>;
    const layer = e?.layer;
    if (!Number.isInteger(layer) || (layer as number) < 0 || (layer as number) >= nLayer) return bad(`layer index ${JSON.stringify(layer)} outside 0..${nLayer - 1}`);
    const sites: Partial<Record<SparsitySite, SiteCounter>> = {};
    for (const site of SPARSITY_SITES) {
      const c = e[site] as { seen?: unknown; zeroed?: unknown } | undefined;
      if (c === undefined) continue;
      const seen = c?.seen;
      const zeroed = c?.zeroed;
      if (!Number.isSafeInteger(seen) || !Number.isSafeInteger(zeroed) || (zeroed as number) < 0 || (zeroed as number) > (seen as number)) {
        return bad(`layer ${layer as number} site ${site}: seen/zeroed are not integers with 0 <= zeroed <= seen`);
      }
      sites[site] = { seen: seen as number, zeroed: zeroed as number };
    }
    layers.set(layer as number, sites);
  }
  return { nLayer, layers };
}

export function readSparsityReport(path: string): SparsityCounters | null {
  if (!existsSync(path)) return null;
  return parseSparsityReport(readFileSync(path, 'utf8'), path);
}

/** Counters of `after` minus those of `before` (both cumulative snapshots of one process). */
export function subtractCounters(after: SparsityCounters, before: SparsityCounters | null): SparsityCounters {
  if (!before) return after;
  const layers = new Map<number, Partial<Record<SparsitySite, SiteCounter>>>();
  for (const [layer, sites] of after.layers) {
    const out: Partial<Record<SparsitySite, SiteCounter>> = {};
    for (const site of SPARSITY_SITES) {
      const a = sites[site];
      if (!a) continue;
      const b = before.layers.get(layer)?.[site] ?? { seen: 0, zeroed: 0 };
      out[site] = { seen: a.seen - b.seen, zeroed: a.zeroed - b.zeroed };
    }
    layers.set(layer, out);
  }
  return { nLayer: after.nLayer, layers };
}

/** Sum of the counters of two processes (either may be null). */
export function addCounters(a: SparsityCounters | null, b: SparsityCounters | null): SparsityCounters | null {
  if (!a) return b;
  if (!b) return a;
  const layers = new Map<number, Partial<Record<SparsitySite, SiteCounter>>>();
  for (const l of new Set([...a.layers.keys(), ...b.layers.keys()])) {
    const out: Partial<Record<SparsitySite, SiteCounter>> = {};
    for (const site of SPARSITY_SITES) {
      const x = a.layers.get(l)?.[site];
      const y = b.layers.get(l)?.[site];
      if (x || y) out[site] = { seen: (x?.seen ?? 0) + (y?.seen ?? 0), zeroed: (x?.zeroed ?? 0) + (y?.zeroed ?? 0) };
    }
    layers.set(l, out);
  }
  return { nLayer: Math.max(a.nLayer, b.nLayer), layers };
}

const ratio = (c: SiteCounter | undefined): number | null => (c && c.seen > 0 ? c.zeroed / c.seen : null);

/** Per site, per layer achieved sparsity (null where the layer has no such site or saw nothing). */
export function siteSparsity(counters: SparsityCounters): Partial<Record<SparsitySite, (number | null)[]>> {
  const out: Partial<Record<SparsitySite, (number | null)[]>> = {};
  for (const site of SPARSITY_SITES) {
    const values = Array.from({ length: counters.nLayer }, (_, l) => ratio(counters.layers.get(l)?.[site]));
    if (values.some((v) => v !== null)) out[site] = values;
  }
  return out;
}

/**
 * One number per layer: zeroed / seen summed over the layer's distinct
 * thresholded activations. `ffn_down_in` is left out when `ffn_gate_act` is
 * counted (the down projection's input is the gated product, whose zeros are
 * exactly the dropped gate channels: the same elements). Layers without any
 * site get 0 (they run dense).
 */
export function layerSparsity(counters: SparsityCounters): number[] {
  return Array.from({ length: counters.nLayer }, (_, l) => {
    const sites = counters.layers.get(l) ?? {};
    let seen = 0;
    let zeroed = 0;
    for (const site of SPARSITY_SITES) {
      const c = sites[site];
      if (!c) continue;
      if (site === 'ffn_down_in' && sites.ffn_gate_act) continue;
      seen += c.seen;
      zeroed += c.zeroed;
    }
    return seen > 0 ? zeroed / seen : 0;
  });
}

/** A tensor of the model as far as weight traffic is concerned. */
export interface WeightTensor {
  name: string;
  type: GGMLType;
  shape: number[];
  bytes: number;
}

/** Types the patched runtime's sparse kernels read directly (native/include/chess_sparse.h, chess_type_supported); others run masked-dense. */
export const SPARSE_KERNEL_TYPES: ReadonlySet<GGMLType> = new Set([GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1]);
/** Types the output-sparse product (W_up rows of surviving channels) reads: also Q5_* and the K-quants (chess_out_gated_supported). */
export const OUTPUT_SPARSE_TYPES: ReadonlySet<GGMLType> = new Set([...SPARSE_KERNEL_TYPES, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K]);

function kernelReadable(t: WeightTensor, types: ReadonlySet<GGMLType> = SPARSE_KERNEL_TYPES): boolean {
  const block = GGML_TYPE_TRAITS.get(t.type)?.blockSize;
  return types.has(t.type) && block !== undefined && t.shape[0]! % block === 0;
}

export async function readWeightTable(path: string): Promise<WeightTensor[]> {
  const file = await openGGUF(path);
  try {
    return file.tensors.map((t) => ({ name: t.name, type: t.type, shape: [...t.shape], bytes: t.byteLength }));
  } finally {
    await file.close();
  }
}

export interface WeightTraffic {
  /** Bytes of every tensor in the file. */
  totalBytes: number;
  /** Bytes read to compute one token with the given per-site sparsity. */
  readBytes: number;
  fraction: number;
}

const PROJECTIONS = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'] as const;

/**
 * Expected bytes a token reads from a `_cb` tensor whose input drops a fraction `s` of the
 * channels: the contract's byte model (@chess/contract columnBlockReadBytes: a group is skipped
 * when all its channels are dropped, else its scale section and its kept columns are read).
 */
function columnBlockReadBytes(t: WeightTensor, s: number): number {
  return contractColumnBlockReadBytes(t.type, t.shape[0]!, t.shape[1] ?? 1, s) ?? t.bytes; // not a layout type: the loader refuses it
}

/**
 * Weight bytes read per token (a decode step), from the tensor table and the
 * achieved sparsity of each site (docs/gguf-sparse.md §4):
 *  - a projection stored transposed (`blk.N.<proj>_t.weight`, kernel-readable
 *    type) whose input site drops a fraction s reads (1 - s) of its bytes: the
 *    rows of dropped inputs are skipped;
 *  - a projection in the column-block layout (`blk.N.<proj>_cb.weight`) reads,
 *    per group of input channels with a kept channel, the group's scale section
 *    and the kept channels' columns (columnBlockReadBytes);
 *  - `ffn_up` in its normal layout under an output-sparse gate
 *    (`blk.N.ffn_gate_tau`) reads the rows of surviving channels: (1 - s_gate);
 *  - the token embedding reads one row per token, unless the model ties it to
 *    the output (no `output.weight`): then the LM head reads all of it;
 *  - everything else (dense projections, norms, output, thresholds) is read whole.
 * With no sparsity (dense model or `counters` null) the fraction is that of a
 * dense run: 1, or a bit less when the embedding is untied.
 */
export function weightTraffic(tensors: readonly WeightTensor[], counters: SparsityCounters | null): WeightTraffic {
  const names = new Set(tensors.map((t) => t.name));
  const tied = !names.has('output.weight');
  const s = (layer: number, site: SparsitySite): number => ratio(counters?.layers.get(layer)?.[site]) ?? 0;
  let totalBytes = 0;
  let readBytes = 0;
  for (const t of tensors) {
    totalBytes += t.bytes;
    let read = t.bytes;
    const m = /^blk\.(\d+)\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)(_t|_cb)?\.weight$/.exec(t.name);
    if (t.name === 'token_embd.weight' && !tied) {
      read = t.bytes / (t.shape[1] ?? 1);
    } else if (m && m[3] === '_cb') {
      read = columnBlockReadBytes(t, s(Number(m[1]), `${m[2]}_in` as SparsitySite));
    } else if (m && kernelReadable(t, m[3] === '_t' ? SPARSE_KERNEL_TYPES : OUTPUT_SPARSE_TYPES)) {
      const layer = Number(m[1]);
      const proj = m[2] as (typeof PROJECTIONS)[number];
      if (m[3] === '_t') read = t.bytes * (1 - s(layer, `${proj}_in` as SparsitySite));
      else if (proj === 'ffn_up' && names.has(`blk.${layer}.ffn_gate_tau`) && !names.has(`blk.${layer}.ffn_up_t.weight`) && !names.has(`blk.${layer}.ffn_up_cb.weight`)) {
        read = t.bytes * (1 - s(layer, 'ffn_gate_act'));
      }
    }
    readBytes += read;
  }
  return { totalBytes, readBytes, fraction: totalBytes > 0 ? readBytes / totalBytes : 1 };
}
