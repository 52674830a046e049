import type { Command } from 'commander';

export function registerBackendCommands(program: Command): void {
  const backend = program.command('backend').description('the patched llama.cpp (our patch series + sparse kernels), built offline from node-llama-cpp\'s bundled source');

  backend
    .command('build')
    .description('build the patched addon and llama-bench/llama-perplexity/llama-completion/llama-imatrix (cached by the patch series hash)')
    .action(async () => {
      const { buildBackend } = await import('@chess/backend-llamacpp');
      const info = await buildBackend({ log: (line) => process.stderr.write(`${line}\n`) });
      process.stdout.write(`${info.binDir}\n`);
    });

  backend
    .command('path')
    .description('print the directory of the patched binaries as the last line (builds them first if needed)')
    .action(async () => {
      const { backendStatus, buildBackend } = await import('@chess/backend-llamacpp');
      const status = backendStatus();
      if (!status.built) await buildBackend({ log: (line) => process.stderr.write(`${line}\n`) });
      process.stdout.write(`${backendStatus().binDir}\n`);
    });
}
