import type { Command } from 'commander';

export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description(
      'try a model: stream an answer through node-llama-cpp with the model\'s chat template (a sparse GGUF on the patched build, a dense one on the stock build), then tokens/s and the achieved sparsity; without --prompt, one message per line from stdin (interactive on a terminal)',
    )
    .requiredOption('--model <file>', 'a dense or sparse GGUF')
    .option('--prompt <text>', 'one message to answer (else: read messages from stdin)')
    .option('--seed <n>', 'sampling seed (used when --temperature > 0)', '1')
    .option('--max-tokens <n>', 'at most this many tokens per answer', '256')
    .option('--temperature <t>', 'sampling temperature; 0 (the default) is greedy: the same prompt gives the same text', '0')
    .option('--threads <n>', 'CPU threads (default: node-llama-cpp\'s)')
    .option('--runtime <name>', 'auto (default) | stock | patched')
    .action(async (options: { model: string; prompt?: string; seed: string; maxTokens: string; temperature: string; threads?: string; runtime?: string }) => {
      const { UsageError } = await import('@chess/core');
      const { generate } = await import('../generate.ts');
      const int = (value: string, option: string, min: number): number => {
        const n = Number(value);
        if (!Number.isInteger(n) || n < min) throw new UsageError('GENERATE_BAD_OPTION', `${option} ${value}: expected a whole number >= ${min}`, { option, value });
        return n;
      };
      const temperature = Number(options.temperature);
      if (!Number.isFinite(temperature) || temperature < 0) {
        throw new UsageError('GENERATE_BAD_OPTION', `--temperature ${options.temperature}: expected a number >= 0`, { option: '--temperature', value: options.temperature });
      }
      await generate({
        model: options.model,
        ...(options.prompt !== undefined ? { prompt: options.prompt } : {}),
        seed: int(options.seed, '--seed', 0),
        maxTokens: int(options.maxTokens, '--max-tokens', 1),
        temperature,
        ...(options.threads !== undefined ? { threads: int(options.threads, '--threads', 1) } : {}),
        ...(options.runtime !== undefined ? { runtime: options.runtime } : {}),
        write: (text) => process.stdout.write(text),
        status: (line) => process.stderr.write(`${line}\n`),
        interactive: options.prompt === undefined && Boolean(process.stdin.isTTY),
      });
    });
}
