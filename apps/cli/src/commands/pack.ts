import type { Command } from 'commander';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerPackCommand(program: Command): void {
  program
    .command('pack')
    .description(
      'a self-contained bundle for a device: the model file(s), the patched llama.cpp programs built for the target (nothing needed beyond the C library), a manifest and a POSIX-sh `run` entry point (check, bench, serve); reproducible, cached by its inputs',
    )
    .requiredOption('--model <file>', 'a GGUF to ship (repeat: the sparse model and its dense source for `run bench`)', collect, [])
    .requiredOption('--target <target>', 'linux-x86_64 | linux-aarch64')
    .requiredOption('--out <file>', 'the bundle (.tar.gz), written atomically')
    .option('--no-cache', 'make the bundle again even if the cache holds one for these inputs (the programs stay cached)')
    .action(async (options: { model: string[]; target: string; out: string; cache: boolean }) => {
      const { checkOutputPath } = await import('@chess/core');
      const { parseDeviceTarget } = await import('@chess/backend-llamacpp');
      const { packBundle } = await import('../pack/pack.ts');
      const target = parseDeviceTarget(options.target);
      await checkOutputPath('--out', options.out, options.model.map((path) => ({ option: '--model', path })));
      const result = await packBundle({
        models: options.model,
        target,
        out: options.out,
        noCache: !options.cache,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      process.stderr.write(
        `bundle ${result.id} (${target}${result.cached ? ', from the cache' : ''}): ${result.manifest.models.map((m) => `${m.file} ${m.method}${m.role === 'sparse' ? ` ${Math.round(m.sparsity * 100)}%` : ''}`).join(', ')}\n` +
          `on the device: tar xzf ${options.out.replace(/.*\//, '')} && ./run check && ./run bench --out result.json && ./run serve\n`,
      );
      process.stdout.write(`${options.out}\n`);
    });
}
