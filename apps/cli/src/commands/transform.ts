/**
 * `chess transform`: the command line of the compiler driver (@chess/compiler).
 * It parses flags, hands them to `compile` (which validates every option once,
 * naming the flag in its errors, and checks the model before calibrating),
 * draws the driver's progress events on stderr, and prints the output path.
 */
import type { Command } from 'commander';
import type { CompileInput, CompileOptions, CompileResult } from '@chess/compiler';
import { COMPILE_DEFAULTS as D } from '@chess/compiler/defaults';

type TransformCliOptions = Omit<CompileInput, 'out'> & { out?: string; listPasses?: boolean };

/** `refineTokens` -> `--refine-tokens`. */
const flag = (key: keyof CompileOptions): string => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

export function registerTransformCommand(program: Command): void {
  program
    .command('transform')
    .description('compile a dense GGUF into a sparse GGUF: thresholds from a calibration profile, input-sparse projections in column blocks (or transposed), the chess wrapper')
    .option('--model <file>', 'dense source GGUF (default: the embedded SmolLM2-135M-Instruct Q4_1)')
    .option('--method <method>', `chess (CHESS w/o) | chess+ (CHESS w/: + W_q/W_o inputs) | cats | teal | budget (a byte budget allocated per layer and site: --budget) (default: ${D.method})`)
    .option('--sparsity <s>', `target fraction of dropped elements in every thresholded tensor, in [0, 1) (default: ${D.sparsity}; not with --method budget)`)
    .option(
      '--budget <fraction>',
      "--method budget only: fraction of the dense model's weight bytes a decoded token may read (tied output head included), in (0, 1]; thresholds allocated per layer and site by estimated divergence per byte saved",
    )
    .option('--statistic <stat>', `per-channel statistic m_i of chess / chess+: rms | mean-abs (cats and teal record none; default: ${D.statistic})`)
    .option('--profile <file>', 'calibration profile of this model (chess calibrate); default: calibrate now')
    .option('--calibration-tokens <n>', `without --profile: tokens of the on-the-fly calibration (Brown corpus, seed 0; default: ${D.calibrationTokens})`)
    .option(
      '--refine-tokens <n>',
      `re-calibrate every threshold on the partially sparsified model: tokens of calibration text evaluated on the sparse model per iteration (0: off; default: ${D.refineTokens})`,
    )
    .option('--refine-iterations <n>', `refinement iterations (each: write, measure the sparse model, recompute the thresholds; default: ${D.refineIterations})`)
    .option(
      '--layout <layout>',
      `storage of the input-sparse projections: column-blocks (the source's blocks re-arranged per input channel: same type and bytes, nothing re-rounded) | transposed (re-quantized to --transposed-type) (default: ${D.layout})`,
    )
    .option('--transposed-type <type>', `with --layout transposed: storage type of the transposed projections: f32 | f16 | bf16 | q8_0 | q4_0 | q4_1 | q5_0 | q5_1 (default: ${D.transposedType})`)
    .option('--out <file>', 'output sparse GGUF (required; written atomically)')
    .option('--list-passes', "print the compiler's stages, its passes and the methods, then exit")
    .action(async (options: TransformCliOptions) => {
      if (options.listPasses) {
        process.stdout.write(await listing());
        return;
      }
      const { checkOutputPath } = await import('@chess/core');
      const { defaultModelPath, validateModel } = await import('../model-gate.ts');
      // a malformed model is reported before anything about the output
      if (options.model !== undefined) await validateModel(options.model);
      if (options.out !== undefined) {
        await checkOutputPath('--out', options.out, [
          { option: '--model', path: options.model ?? (await defaultModelPath()) },
          { option: '--profile', path: options.profile },
        ]);
      }
      const compiler = await import('@chess/compiler');
      const { listPasses: _, ...input } = options;
      const { compileEventRenderer } = await import('../compile-events.ts');
      const renderer = compileEventRenderer();
      const started = Date.now();
      let result: CompileResult;
      try {
        result = await compiler.compile(input, { optionName: flag, events: (e) => renderer.render(e) });
      } finally {
        renderer.stop();
      }
      summarize(result, (Date.now() - started) / 1000);
      process.stdout.write(`${result.path}\n`);
    });
}

function summarize(result: CompileResult, seconds: number): void {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const { method, sparsity, layout, transposedType } = result.options;
  const stored = layout === 'transposed' ? `transposed ${transposedType}` : layout;
  const placed = result.placements.filter((p) => p.layout !== 'rows').length;
  const allocation = result.thresholds.allocation;
  log(
    `wrote ${result.emit.tensors} tensors (${(result.emit.tensorBytes / 2 ** 20).toFixed(1)} MiB): ${method}` +
      `${result.thresholds.statistic === 'none' ? '' : `/${result.thresholds.statistic}`} ${allocation ? `within a budget of ${allocation.budget} of the dense bytes per token (allocation's estimate ${allocation.estimate.toFixed(4)}, mean target sparsity ${result.thresholds.sparsity.toFixed(3)})` : `at sparsity ${sparsity}`}, ${placed} input-sparse projections ${stored}, in ${seconds.toFixed(1)} s`,
  );
  // the runtime runs these on its masked-dense route: the same function, without the input-sparse kernel's savings
  for (const p of result.placements.filter((x) => x.layout === 'rows')) log(`kept in row layout (masked-dense route): ${p.weight}: ${p.reason}`);
}

async function listing(): Promise<string> {
  const { stages, passes, methods } = (await import('@chess/compiler')).compilerListing();
  const lines = ['stages of chess transform, in order:'];
  for (const s of stages) lines.push(`  ${s.name.padEnd(12)} ${s.summary}${s.passes.length > 0 ? ` [passes: ${s.passes.join(', ')}]` : ''}`);
  lines.push('passes:');
  for (const p of passes) lines.push(`  ${p.name.padEnd(20)} ${p.summary}`);
  lines.push('methods:');
  for (const m of methods) lines.push(`  ${m.name.padEnd(8)} ${m.summary}`);
  return `${lines.join('\n')}\n`;
}
