/**
 * `chess transform`: a dense GGUF in, a sparse GGUF out (docs/gguf-sparse.md).
 * Every option, the model (llama, gated FFN in every layer, transposed type
 * fits) and a given profile (same model file) are checked before any work;
 * without --profile the model is calibrated first.
 */
import type { Command } from 'commander';

interface TransformCliOptions {
  model?: string;
  method: string;
  sparsity: string;
  statistic: string;
  profile?: string;
  transposedType: string;
  out: string;
}

export function registerTransformCommand(program: Command): void {
  program
    .command('transform')
    .description('compile a dense GGUF into a sparse GGUF: thresholds from a calibration profile, transposed projections, the chess wrapper')
    .option('--model <file>', 'dense source GGUF (default: the embedded SmolLM2-135M-Instruct Q4_1)')
    .option('--method <method>', 'chess (CHESS w/o) | chess+ (CHESS w/: + W_q/W_o inputs) | cats | teal', 'chess+')
    .option('--sparsity <s>', 'target fraction of dropped elements in every thresholded tensor, in [0, 1)', '0.5')
    .option('--statistic <stat>', 'per-channel statistic m_i of chess / chess+: rms | mean-abs (cats and teal record none)', 'rms')
    .option('--profile <file>', 'calibration profile of this model (chess calibrate); default: calibrate now')
    .option('--transposed-type <type>', 'storage type of the transposed projections: f32 | f16 | bf16 | q8_0 | q4_0 | q4_1 | q5_0 | q5_1', 'q8_0')
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
      if (!(pass.TRANSPOSED_TYPES as readonly string[]).includes(options.transposedType)) {
        throw new UsageError('CHESS_BAD_TRANSPOSED_TYPE', `--transposed-type: '${options.transposedType}' is not supported; valid: ${pass.TRANSPOSED_TYPES.join(', ')}`, {
          type: options.transposedType,
        });
      }
      const method = options.method as import('@chess/pass-chess').Method;
      const statistic = options.statistic as import('@chess/pass-chess').Statistic;
      const transposedType = options.transposedType as import('@chess/ir').DType;
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

      // 2. the model is checked by transformModel (llama, gated FFN in every layer, transposed type fits);
      //    only then the profile is read and matched against the model file, or calibrated (the expensive part)
      const cal = await import('@chess/calibrate');
      const { byteProgressBar } = await import('../progress.ts');
      const profilePath = options.profile;
      const profile = async (): Promise<import('@chess/pass-chess').ThresholdProfile> => {
        if (profilePath !== undefined) {
          const given = await cal.readProfile(profilePath);
          await cal.checkProfileMatchesModel(given, modelPath);
          return given;
        }
        log(`no --profile: calibrating ${modelPath} first (${cal.DEFAULT_CALIBRATION_TOKENS} tokens of the Brown corpus, seed ${cal.DEFAULT_SEED})`);
        const cliProgress = (await import('cli-progress')).default;
        const calBar = new cliProgress.SingleBar(
          { format: 'calibrate |{bar}| {percentage}% {value}/{total} tokens (two passes)', stream: process.stderr, hideCursor: true, noTTYOutput: false, notTTYSchedule: 5000 },
          cliProgress.Presets.shades_classic,
        );
        let started = false;
        try {
          return await cal.calibrate({
            model: modelPath,
            log,
            progress: (p) => {
              if (!started) calBar.start(p.total, p.done), (started = true);
              else calBar.update(p.done);
            },
          });
        } finally {
          if (started) calBar.stop();
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
          transposedType,
          profile,
          progress: (done, total, tensor) => bar.update(done, total, tensor),
        });
        bar.stop();
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        log(
          `wrote ${result.emit.tensors} tensors (${(result.emit.tensorBytes / 2 ** 20).toFixed(1)} MiB): ${method}` +
            `${result.thresholds.statistic === 'none' ? '' : `/${result.thresholds.statistic}`} at sparsity ${sparsity}, transposed ${transposedType}, in ${seconds} s`,
        );
      } finally {
        bar.stop();
      }
      process.stdout.write(`${out}\n`);
    });
}
