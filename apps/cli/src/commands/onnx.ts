/**
 * ONNX at the CLI: `chess import model.onnx --out model.gguf` (ONNX -> IR ->
 * GGUF, the branch of `chess import` for ONNX inputs) and `chess export-onnx
 * F.gguf --out model.onnx` (a dense or sparse GGUF -> IR -> ONNX). Outputs are
 * written atomically; an output that names an input is refused.
 */
import { open, stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { UsageError } from '@chess/core';

/**
 * Whether `chess import` reads `path` as ONNX: by its extension, or, for another name, by the
 * first byte of an ONNX ModelProto (field 1, ir_version, a varint: 0x08). Anything else, and
 * anything that is not a regular file (a FIFO would block the read), goes to the GGUF reader,
 * which names the problem with the same codes as `chess inspect`.
 */
export async function isOnnxInput(path: string): Promise<boolean> {
  if (path.toLowerCase().endsWith('.onnx')) return true;
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile() || info.size < 1) return false;
  const handle = await open(path, 'r').catch(() => undefined);
  if (!handle) return false;
  try {
    const head = Buffer.alloc(1);
    await handle.read(head, 0, 1, 0);
    return head[0] === 0x08;
  } finally {
    await handle.close();
  }
}

export async function importOnnxToGGUF(path: string, options: { out: string; tokenizer?: string; contextLength?: string }): Promise<void> {
  const { importOnnx } = await import('@chess/import-onnx');
  const { emitGGUF } = await import('@chess/codegen-gguf');
  const { byteProgressBar } = await import('../progress.ts');
  const { checkOutputPath } = await import('@chess/core');
  const inputs = [{ option: '<file>', path }, ...(options.tokenizer ? [{ option: '--tokenizer', path: options.tokenizer }] : [])];
  await checkOutputPath('--out', options.out, inputs);
  const contextLength = options.contextLength === undefined ? undefined : Number(options.contextLength);
  if (contextLength !== undefined && !(Number.isInteger(contextLength) && contextLength > 0)) {
    throw new UsageError('CLI_BAD_OPTION', `--context-length: expected a positive integer, got '${options.contextLength}'`, { option: 'context-length' });
  }
  const { module, match, file } = await importOnnx(path, { tokenizerFrom: options.tokenizer, contextLength });
  // external data files are inputs too
  await checkOutputPath('--out', options.out, [...module.sources.values()].map((source) => ({ option: '<file> (its data)', path: source })));
  const bar = byteProgressBar('emit');
  try {
    const result = await emitGGUF(module, options.out, { progress: (done, total, name) => bar.update(done, total, name) });
    bar.stop();
    process.stderr.write(
      `${file.path}: opset ${file.opset}, ${match.layers.length} layers, ${match.nHead}/${match.nHeadKv} heads, RoPE ${match.ropeMode} base ${match.ropeFreqBase}, ` +
        `${match.head ? 'separate' : 'tied'} head; ${module.nodes.length} IR nodes verified; wrote ${result.tensors} tensors (${(result.tensorBytes / 1e6).toFixed(1)} MB)` +
        `${options.tokenizer ? '' : ' (no tokenizer: tokenizer.ggml.model = none; pass --tokenizer F.gguf to carry one)'}\n`,
    );
  } finally {
    bar.stop();
  }
}

export function registerExportOnnxCommand(program: Command): void {
  program
    .command('export-onnx')
    .description('export a dense or sparse GGUF to ONNX (prefill graph, weights dequantized to float32, thresholds as Abs/Greater/Where) that onnxruntime runs')
    .argument('<file>', 'GGUF file, dense (llama, qwen2) or sparse (chess)')
    .requiredOption('--out <file>', 'output ONNX file (written atomically; weights over 1.8 GB go to <out>.data)')
    .option('--external-data', 'always write the weights to <out>.data (ONNX external data)')
    .option('--mask-outputs', 'also output every threshold keep mask (bool) as mask.<value>: for cross-checks')
    .action(async (path: string, options: { out: string; externalData?: boolean; maskOutputs?: boolean }) => {
      const { importDenseOrSparseGGUF, exportOnnx } = await import('@chess/codegen-onnx');
      const { countProgressBar } = await import('../progress.ts');
      const { checkOutputPath } = await import('@chess/core');
      const { validateModel } = await import('../model-gate.ts');
      await validateModel(path); // a malformed model is reported before anything about the output
      await checkOutputPath('--out', options.out, [{ option: '<file>', path }]);
      await checkOutputPath('--out (its .data file)', `${options.out}.data`, [{ option: '<file>', path }]);
      const { module, file, sparse } = await importDenseOrSparseGGUF(path);
      const bar = countProgressBar('dequantize', 'weights');
      try {
        const result = await exportOnnx(module, options.out, {
          externalData: options.externalData ? true : 'auto',
          maskOutputs: options.maskOutputs ?? false,
          progress: (done, total, name) => bar.update(done, total, name),
        });
        bar.stop();
        process.stderr.write(
          `${sparse ? 'sparse' : 'dense'} ${module.arch} model: ${module.nodes.length} IR nodes -> ${result.nodes} ONNX nodes, ${result.initializers} initializers, ` +
            `${(result.weightBytes / 1e6).toFixed(1)} MB of float32 weights${result.externalDataPath ? ` in ${result.externalDataPath}` : ''}\n`,
        );
      } finally {
        bar.stop();
        await file.close();
      }
      process.stdout.write(`${options.out}\n`);
    });
}
