/**
 * A GGUF file through the sparse-contract check of @chess/contract: its
 * metadata and tensor table as the contract's view, and the threshold tensors'
 * values read (small: one f32 per channel of a layer). Every TypeScript path
 * that loads a sparse GGUF (chess eval / bench / llama-bench, chess inspect
 * --check) calls this; the patched C loader refuses the same things.
 */
import { ChessError } from '@chess/core';
import { checkSparseContract, checkThresholdValues, isThresholdTensor, SPARSE_GGUF, type ContractViolation } from '@chess/contract';
import type { GGUFFile } from './reader.ts';
import { GGUF_VALUE_TYPE_NAME, GGUFValueType } from './types.ts';

const SHORT_TYPE: Readonly<Record<number, string>> = GGUF_VALUE_TYPE_NAME;

/** True when the file is a sparse GGUF (`general.architecture` = `chess`). */
export function isSparseGGUF(file: GGUFFile): boolean {
  const arch = file.metadata.get('general.architecture');
  return arch?.type === GGUFValueType.STRING && arch.value === SPARSE_GGUF.architecture;
}

/** Every contract violation of a sparse GGUF (metadata, tensor table, threshold values); [] for a dense file. */
export async function checkSparseFile(file: GGUFFile): Promise<ContractViolation[]> {
  if (!isSparseGGUF(file)) return [];
  const violations = checkSparseContract({
    key(name) {
      const v = file.metadata.get(name);
      return v === undefined ? undefined : { type: SHORT_TYPE[v.type] ?? `type ${v.type}`, value: 'value' in v ? v.value : undefined };
    },
    tensors: file.tensors.map((t) => ({ name: t.name, ggmlType: t.type, shape: t.shape })),
  });
  for (const t of file.tensors) {
    if (!isThresholdTensor(t.name) || t.type !== 0) continue; // a wrong type is already a violation
    const bytes = await file.readTensorData(t);
    const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    const bad = checkThresholdValues(t.name, values);
    if (bad) violations.push(bad);
  }
  return violations;
}

/**
 * Throw `SPARSE_CONTRACT_VIOLATION` (naming the file and the first key or
 * tensor at fault; `details.violations` holds them all) unless the file keeps
 * the contract. Dense files pass.
 */
export async function assertSparseContract(file: GGUFFile): Promise<void> {
  const violations = await checkSparseFile(file);
  if (violations.length === 0) return;
  const more = violations.length > 1 ? ` (and ${violations.length - 1} more: chess inspect --check lists them)` : '';
  throw new ChessError('SPARSE_CONTRACT_VIOLATION', `${file.path}: breaks the sparse GGUF contract (docs/gguf-sparse.md): ${violations[0]!.message}${more}`, {
    path: file.path,
    violations,
  });
}
