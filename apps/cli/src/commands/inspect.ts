import type { Command } from 'commander';
import type { GGUFFile, GGUFValue } from '@chess/gguf';

/** A metadata value for display: long arrays summarised, bigints as strings. */
function displayValue(value: GGUFValue, maxItems = 8): unknown {
  if ('items' in value) {
    const items = Array.from(value.items as ArrayLike<unknown>);
    const shown = items.slice(0, maxItems).map((item) => (typeof item === 'object' && item !== null && 'type' in item ? displayValue(item as GGUFValue, maxItems) : normalise(item)));
    return items.length > maxItems ? { length: items.length, first: shown } : shown;
  }
  return normalise(value.value);
}

function normalise(value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

export interface InspectReport {
  path: string;
  fileSize: number;
  version: number;
  alignment: number;
  architecture: string;
  baseArchitecture: string;
  hyperparameters: Record<string, unknown>;
  sparsity: Record<string, unknown> | null;
  general: Record<string, unknown>;
  /** layout: how the tensor is stored (docs/gguf-sparse.md §3): rows (ggml's own), column-blocks, transposed, or threshold. */
  tensors: { name: string; type: string; shape: number[]; bytes: number; offset: number; layout: string }[];
  byType: Record<string, { tensors: number; bytes: number }>;
  /** The `budget` method's allocation (chess.budget.*): per layer and site the allocated target sparsity; a string when the keys are inconsistent; null when absent. */
  budget: { budget: number; estimate: number; sites: readonly string[]; sparsity: readonly (readonly number[])[] } | string | null;
  /** Sparse GGUF only (null for a dense file): the sparse contract's violations (docs/gguf-sparse.md), [] when it keeps it. */
  contract: { violations: { rule: string; key?: string; tensor?: string; message: string }[] } | null;
}

export async function inspectReport(file: GGUFFile): Promise<InspectReport> {
  const { ggmlTypeName } = await import('@chess/gguf');
  const { recordedBudget, tensorLayout } = await import('@chess/contract');
  const { checkSparseFile, isSparseGGUF } = await import('@chess/gguf');
  const meta = file.metadata;
  const architecture = meta.has('general.architecture') ? meta.getString('general.architecture') : '(none)';
  const baseArchitecture = architecture === 'chess' && meta.has('chess.base_architecture') ? meta.getString('chess.base_architecture') : architecture;
  const pick = (predicate: (key: string) => boolean) =>
    Object.fromEntries([...meta].filter(([key]) => predicate(key)).map(([key, value]) => [key, displayValue(value)]));
  const hyperparameters = pick((key) => key.startsWith(`${baseArchitecture}.`));
  const sparsityEntries = pick((key) => key.startsWith('chess.') && !key.startsWith('chess.synthetic'));
  const raw = (key: string): unknown => {
    const v = meta.get(key);
    if (v === undefined) return undefined;
    if ('items' in v) return Array.from(v.items as ArrayLike<unknown>, (x) => (typeof x === 'object' && x !== null && 'value' in x ? (x as { value: unknown }).value : x));
    return typeof v.value === 'bigint' ? Number(v.value) : v.value;
  };
  const budget = recordedBudget(raw);
  const byType: InspectReport['byType'] = {};
  const tensors = file.tensors.map((t) => {
    const type = ggmlTypeName(t.type);
    const entry = (byType[type] ??= { tensors: 0, bytes: 0 });
    entry.tensors++;
    entry.bytes += t.byteLength;
    return { name: t.name, type, shape: [...t.shape], bytes: t.byteLength, offset: t.fileOffset, layout: tensorLayout(t.name) };
  });
  return {
    path: file.path,
    fileSize: file.fileSize,
    version: file.version,
    alignment: file.alignment,
    architecture,
    baseArchitecture,
    hyperparameters,
    sparsity: Object.keys(sparsityEntries).length > 0 ? sparsityEntries : null,
    budget,
    general: pick((key) => key.startsWith('general.')),
    tensors,
    byType,
    contract: isSparseGGUF(file) ? { violations: await checkSparseFile(file) } : null,
  };
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(2)} MB`;
}

export function formatInspectReport(r: InspectReport): string {
  const lines = [
    `${r.path}`,
    `  GGUF v${r.version}, ${mb(r.fileSize)}, alignment ${r.alignment}, ${r.tensors.length} tensors`,
    `  architecture: ${r.architecture}${r.baseArchitecture !== r.architecture ? ` (base: ${r.baseArchitecture})` : ''}`,
  ];
  if (typeof r.general['general.name'] === 'string') lines.push(`  name: ${r.general['general.name']}`);
  lines.push('', 'hyperparameters:');
  for (const [key, value] of Object.entries(r.hyperparameters)) lines.push(`  ${key.slice(r.baseArchitecture.length + 1)} = ${JSON.stringify(value)}`);
  lines.push('', `sparsity: ${r.sparsity ? '' : 'none (dense model)'}`);
  for (const [key, value] of Object.entries(r.sparsity ?? {})) lines.push(`  ${key} = ${JSON.stringify(value)}`);
  if (typeof r.budget === 'string') lines.push('', `budget allocation: unreadable (${r.budget})`);
  else if (r.budget) {
    const b = r.budget;
    lines.push('', `budget allocation: ${Number(b.budget.toPrecision(6))} of the dense model's weight bytes per token (estimate ${b.estimate.toFixed(4)}); target sparsity per layer and site:`);
    const width = Math.max(...b.sites.map((x) => x.length), 6);
    lines.push(`  ${'layer'.padEnd(5)}  ${b.sites.map((x) => x.padStart(width)).join('  ')}`);
    b.sparsity.forEach((row, il) => lines.push(`  ${String(il).padEnd(5)}  ${row.map((v) => v.toFixed(3).padStart(width)).join('  ')}`));
  }
  if (r.contract) {
    lines.push('', `sparse contract: ${r.contract.violations.length === 0 ? 'kept' : `${r.contract.violations.length} violation(s)`}`);
    for (const v of r.contract.violations) lines.push(`  ${v.message}`);
  }
  lines.push('', 'weights by type:');
  for (const [type, s] of Object.entries(r.byType).sort((a, b) => b[1].bytes - a[1].bytes)) lines.push(`  ${type.padEnd(6)} ${String(s.tensors).padStart(5)} tensors  ${mb(s.bytes).padStart(12)}`);
  lines.push('', 'tensors:');
  const width = Math.max(...r.tensors.map((t) => t.name.length), 4);
  lines.push(`  ${'name'.padEnd(width)}  ${'type'.padEnd(6)}  ${'shape (ne)'.padEnd(16)}  ${'bytes'.padStart(12)}  layout`);
  for (const t of r.tensors) lines.push(`  ${t.name.padEnd(width)}  ${t.type.padEnd(6)}  ${`[${t.shape.join(', ')}]`.padEnd(16)}  ${String(t.bytes).padStart(12)}  ${t.layout}`);
  return `${lines.join('\n')}\n`;
}

export function registerInspectCommands(program: Command): void {
  program
    .command('inspect')
    .description('show a GGUF file: architecture, hyperparameters, sparsity metadata, tensor table with types and sizes')
    .argument('<file>', 'GGUF file')
    .option('--json', 'print one JSON object instead of text')
    .option('--check', 'exit with SPARSE_CONTRACT_VIOLATION (1) when a sparse GGUF breaks the contract (thresholds, required keys, layouts); the report lists every violation')
    .action(async (path: string, options: { json?: boolean; check?: boolean }) => {
      const { openGGUF } = await import('@chess/gguf');
      const file = await openGGUF(path);
      let report: InspectReport;
      try {
        report = await inspectReport(file);
        process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatInspectReport(report));
      } finally {
        await file.close();
      }
      const violations = report.contract?.violations ?? [];
      if (options.check && violations.length > 0) {
        const { ChessError } = await import('@chess/core');
        throw new ChessError('SPARSE_CONTRACT_VIOLATION', `${path}: breaks the sparse GGUF contract (docs/gguf-sparse.md): ${violations.map((v) => v.message).join('; ')}`, {
          path,
          violations,
        });
      }
    });

  program
    .command('ir')
    .description('import a GGUF model into the graph IR and print its stable text form')
    .argument('<file>', 'GGUF file (architectures: llama, qwen2)')
    .option('--full-arrays', 'print long metadata arrays (tokenizer vocabularies) in full')
    .action(async (path: string, options: { fullArrays?: boolean }) => {
      await (await import('../model-gate.ts')).validateModel(path);
      const { importGGUF } = await import('@chess/import-gguf');
      const { print } = await import('@chess/ir');
      const { module, file } = await importGGUF(path);
      try {
        process.stdout.write(print(module, options.fullArrays ? {} : { elideMetaArrays: 8 }));
      } finally {
        await file.close();
      }
    });

  program
    .command('import')
    .description('import a GGUF or ONNX model into the IR (verified) and emit it as GGUF; a GGUF with no pass applied comes out equal to the input')
    .argument('<file>', 'GGUF file (architectures: llama, qwen2) or ONNX file (Llama-family decoders, README "ONNX")')
    .requiredOption('--out <file>', 'output GGUF (written atomically)')
    .option('--tokenizer <gguf>', 'ONNX input: copy the tokenizer of this GGUF (ONNX files carry none)')
    .option('--context-length <n>', 'ONNX input: llama.context_length of the output (default 2048)')
    .action(async (path: string, options: { out: string; tokenizer?: string; contextLength?: string }) => {
      const { isOnnxInput, importOnnxToGGUF } = await import('./onnx.ts');
      if (await isOnnxInput(path)) {
        await importOnnxToGGUF(path, options);
        process.stdout.write(`${options.out}\n`);
        return;
      }
      const { checkOutputPath } = await import('@chess/core');
      const { validateModel } = await import('../model-gate.ts');
      await validateModel(path); // a malformed model is reported before anything about the output
      await checkOutputPath('--out', options.out, [{ option: '<file>', path }]);
      const { importGGUF } = await import('@chess/import-gguf');
      const { emitGGUF } = await import('@chess/codegen-gguf');
      const { byteProgressBar } = await import('../progress.ts');
      const { module, file } = await importGGUF(path);
      const bar = byteProgressBar('emit');
      try {
        const result = await emitGGUF(module, options.out, { progress: (done, total, name) => bar.update(done, total, name) });
        bar.stop();
        process.stderr.write(`${module.nodes.length} IR nodes verified; wrote ${result.tensors} tensors (${(result.tensorBytes / 1e6).toFixed(1)} MB)\n`);
      } finally {
        bar.stop();
        await file.close();
      }
      process.stdout.write(`${options.out}\n`);
    });
}
