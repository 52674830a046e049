/**
 * The sparse-contract check (docs/gguf-sparse.md §2-3), in one place: required
 * keys, thresholds (type, shape, values finite and >= 0), storage layouts
 * consistent with the tensors and with `chess.format_version`. It reads a
 * plain view of a file (no GGUF reader here: @chess/gguf depends on this
 * package and adapts its files to the view, `checkSparseFile`). The patched
 * loader refuses the same things (native/src/chess_contract_check.c).
 */
import { SPARSE_GGUF } from './contract.ts';
import { columnBlockMisfit } from './column-blocks.ts';
import { formatVersionOf, LAYOUTS } from './layouts.ts';
import { parseContractTensor } from './names.ts';
import type { Projection } from './projections.ts';

/** A metadata value as the view gives it: its GGUF type name (`u32`, `f32`, `string`, `array` ...) and value. */
export interface ContractKeyValue {
  readonly type: string;
  readonly value: unknown;
}

export interface ContractTensorInfo {
  readonly name: string;
  /** enum ggml_type */
  readonly ggmlType: number;
  /** ggml `ne`, innermost first. */
  readonly shape: readonly number[];
}

/** What the check needs of a file. */
export interface ContractFileView {
  key(name: string): ContractKeyValue | undefined;
  readonly tensors: readonly ContractTensorInfo[];
}

/** One broken rule: what is wrong, naming the key or the tensor. */
export interface ContractViolation {
  readonly rule: 'key' | 'threshold' | 'layout';
  readonly key?: string;
  readonly tensor?: string;
  readonly message: string;
}

const K = SPARSE_GGUF.keys;
const F32 = 0;
/** Largest format a layout of the table writes: what a current reader reads. */
export const MAX_FORMAT_VERSION = Math.max(SPARSE_GGUF.formatVersion.base, ...LAYOUTS.map((l) => SPARSE_GGUF.layouts[l].formatVersion));

const numeric = (kv: ContractKeyValue | undefined): number | undefined =>
  kv && (typeof kv.value === 'number' || typeof kv.value === 'bigint') && kv.type !== 'bool' ? Number(kv.value) : undefined;

/**
 * Every violation of the contract in a sparse GGUF's metadata and tensor table
 * (threshold values are checked by `checkThresholdValues`, once their data is read).
 * An empty list: the file keeps the contract. Call it on files whose
 * `general.architecture` is `chess` only.
 */
export function checkSparseContract(view: ContractFileView): ContractViolation[] {
  const out: ContractViolation[] = [];
  const keyViolation = (key: string, message: string) => out.push({ rule: 'key', key, message: `${key}: ${message}` });

  const base = view.key(K.baseArchitecture);
  if (base === undefined) keyViolation(K.baseArchitecture, 'missing (required: the base architecture, a string)');
  else if (base.type !== 'string') keyViolation(K.baseArchitecture, `has type ${base.type}, expected string`);

  const fv = view.key(K.formatVersion);
  let declared: number | undefined;
  if (fv === undefined) keyViolation(K.formatVersion, `missing (required: u32, 1 to ${MAX_FORMAT_VERSION})`);
  else if (fv.type !== 'u32') keyViolation(K.formatVersion, `has type ${fv.type}, expected u32`);
  else {
    declared = numeric(fv)!;
    if (declared < 1 || declared > MAX_FORMAT_VERSION) keyViolation(K.formatVersion, `${declared} is not a format this toolchain reads (1 to ${MAX_FORMAT_VERSION})`);
  }

  const ts = view.key(K.targetSparsity);
  if (ts === undefined) keyViolation(K.targetSparsity, 'missing (required: f32 in [0, 1))');
  else if (ts.type !== 'f32') keyViolation(K.targetSparsity, `has type ${ts.type}, expected f32`);
  else {
    const s = numeric(ts)!;
    if (!(s >= 0 && s < 1)) keyViolation(K.targetSparsity, `is ${s}, expected a number in [0, 1)`);
  }

  // hyperparameters of the base architecture (absent or not numbers: the shape checks that need them are skipped)
  const baseArch = base?.type === 'string' ? String(base.value) : undefined;
  const nLayer = baseArch ? numeric(view.key(`${baseArch}.block_count`)) : undefined;
  const nFF = baseArch ? numeric(view.key(`${baseArch}.feed_forward_length`)) : undefined;

  // tensors of the contract, by (layer, projection): which layouts hold each projection
  const stored = new Map<string, string[]>();
  for (const t of view.tensors) {
    const c = parseContractTensor(t.name);
    if (!c) continue;
    const tensorViolation = (rule: ContractViolation['rule'], message: string) => out.push({ rule, tensor: t.name, message: `${t.name}: ${message}` });
    if (nLayer !== undefined && c.layer >= nLayer) tensorViolation('layout', `layer ${c.layer} does not exist (${baseArch}.block_count = ${nLayer})`);
    const dims = trimmed(t.shape);
    if (c.kind === 'inputTau' || c.kind === 'gateTau') {
      if (t.ggmlType !== F32) tensorViolation('threshold', `ggml type ${t.ggmlType}, expected f32 (0): thresholds are read as floats`);
      const n = c.kind === 'inputTau' ? 1 : nFF;
      if (dims.length > 1 || (n !== undefined && (dims[0] ?? 1) !== n)) {
        tensorViolation('threshold', `shape [${t.shape.join(', ')}], expected [${n ?? 'n_ff'}]${c.kind === 'gateTau' ? ` (${baseArch}.feed_forward_length)` : ''}`);
      }
      continue;
    }
    const id = `${c.layer}.${c.proj}`;
    stored.set(id, [...(stored.get(id) ?? []), t.name]);
    if (c.kind === 'columnBlocks' || c.kind === 'transposed') {
      if (dims.length !== 2) tensorViolation('layout', `shape [${t.shape.join(', ')}], expected 2 dimensions`);
      else if (c.kind === 'columnBlocks') {
        const misfit = columnBlockMisfit(t.ggmlType, dims[0]!, dims[1]!);
        if (misfit) tensorViolation('layout', `cannot be in column-block layout: ${misfit}`);
      }
    }
  }
  for (const [id, names] of stored) {
    if (names.length > 1) {
      const [layer, proj] = id.split('.') as [string, Projection];
      out.push({ rule: 'layout', tensor: names[1], message: `blk.${layer}.${proj} is stored ${names.length} times (${names.join(', ')}); a sparse GGUF stores one of them` });
    }
  }

  // the declared format is the largest of the layouts present (a reader of format 1 would misread a _cb tensor)
  if (declared !== undefined && declared >= 1 && declared <= MAX_FORMAT_VERSION) {
    const names = view.tensors.map((t) => t.name);
    const expected = formatVersionOf(names);
    if (declared !== expected) {
      const culprit = names.find((n) => formatVersionOf([n]) > declared!);
      keyViolation(
        K.formatVersion,
        culprit
          ? `${declared}, but ${culprit} needs format ${expected}`
          : `${declared}, but the tensors' layouts are format ${expected} (the largest of the layouts present)`,
      );
    }
  }
  return out;
}

/** Shape without trailing 1s (ggml pads `ne` with 1s). */
function trimmed(shape: readonly number[]): number[] {
  const dims = [...shape];
  while (dims.length > 1 && dims[dims.length - 1] === 1) dims.pop();
  return dims;
}

/** Threshold tensors of a file (their values go through `checkThresholdValues`). */
export function isThresholdTensor(name: string): boolean {
  const kind = parseContractTensor(name)?.kind;
  return kind === 'inputTau' || kind === 'gateTau';
}

/** The first threshold that is not finite and >= 0 (keep rule |v| > tau: NaN drops everything, a negative keeps everything), or undefined. */
export function checkThresholdValues(tensor: string, values: Float32Array): ContractViolation | undefined {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v) || v < 0) {
      return { rule: 'threshold', tensor, message: `${tensor}[${i}] = ${v}: a threshold must be finite and >= 0` };
    }
  }
  return undefined;
}
