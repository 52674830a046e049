import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { DEMO_STEPS, EDGE_SHAPE, edgeSparsePath, type DemoContext } from './demo.ts';
import { registerCommands } from './index.ts';

const ctx: DemoContext = { out: '/o', model: '/m/dense.gguf', sparse: '/o/sparse.gguf', edgeModel: '/c/llama-1b.q4_0.gguf', quick: true };
const commands = DEMO_STEPS.map((s) => s.args(ctx));
const value = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

/** Flags whose value a step writes; every other absolute path in a step is something it reads. */
const OUTPUT_FLAGS = ['--out', '--json', '--md', '--html'];

describe('chess demo steps', () => {
  it('every step is a command of the real CLI, with only options that command declares', () => {
    const program = new Command('chess');
    registerCommands(program);
    for (const args of commands) {
      let command: Command | undefined = program;
      let i = 0;
      while (command && command.commands.length > 0) {
        const name = args[i++];
        command = command.commands.find((c) => c.name() === name);
      }
      expect(command, `chess ${args.slice(0, i).join(' ')}: no such command`).toBeDefined();
      const declared = new Set(command!.options.flatMap((o) => [o.long, o.short]).filter(Boolean));
      for (const flag of args.slice(i).filter((a) => a.startsWith('-'))) expect(declared.has(flag), `chess ${args.slice(0, i).join(' ')} has no option ${flag}`).toBe(true);
    }
  });

  it('each step reads only what the steps before it wrote or printed (a dry run of the data flow)', () => {
    const run: DemoContext = { out: '/o', model: '', sparse: '', edgeModel: '', quick: true };
    const written = new Set<string>();
    for (const [index, step] of DEMO_STEPS.entries()) {
      const args = step.args(run);
      const outputs = args.filter((_, j) => OUTPUT_FLAGS.includes(args[j - 1]!));
      for (const path of args.filter((a, j) => a.startsWith('/') && !OUTPUT_FLAGS.includes(args[j - 1]!))) {
        expect(written.has(path), `step ${index + 1} (chess ${args[0]}) reads ${path}, which no earlier step writes`).toBe(true);
      }
      for (const path of outputs) written.add(path);
      // a captured step prints its result path last: its --out, or a file of its own choosing
      if (step.capture) {
        (run[step.capture] as string) = value(args, '--out') ?? `/captured/${step.capture}.gguf`;
        written.add(run[step.capture] as string);
      }
    }
    // and the report reads every result file the steps wrote
    const report = DEMO_STEPS.at(-1)!.args(run);
    expect(report[0]).toBe('report');
    for (const json of [...written].filter((p) => p.endsWith('.json'))) expect(report, json).toContain(json);
  });

  it('calibrates, transforms with chess+ at 50%, evaluates dense and sparse on the same documents', () => {
    const transform = commands[4]!;
    expect([value(transform, '--method'), value(transform, '--sparsity')]).toEqual(['chess+', '0.5']);
    const [dense, sparse] = [commands[5]!, commands[6]!];
    expect(value(dense, '--model')).toBe(ctx.model);
    expect(value(sparse, '--model')).toBe(ctx.sparse);
    for (const flag of ['--limit', '--ppl', '--ppl-windows']) expect(value(sparse, flag)).toBe(value(dense, flag));
    // No --tasks: all eight.
    expect(dense).not.toContain('--tasks');
    // The sparse model's divergence from the dense one (KL, PPL ratio) on the same held-out windows.
    expect(value(sparse, '--reference')).toBe(ctx.model);
    expect(dense).not.toContain('--reference');
  });

  it('times dense on stock, dense on the patched build and the sparse model, and reports all of it', () => {
    const bench = commands[7]!;
    const pairs: [string | undefined, string | undefined][] = [];
    bench.forEach((a, i) => {
      if (a === '--model') pairs.push([bench[i + 1], bench[i + 3]]);
    });
    expect(pairs).toEqual([
      [ctx.model, 'stock'],
      [ctx.model, 'patched'],
      [ctx.sparse, 'patched'],
    ]);
    const report = commands[11]!;
    expect(report.filter((a) => a.endsWith('.json'))).toEqual(['/o/eval-dense.json', '/o/eval-sparse.json', '/o/bench.json', `/o/llama-bench-${EDGE_SHAPE}.json`]);
    expect(value(report, '--html')).toBe('/o/report.html');
  });

  it('times an edge-size model (llama-1b) with default transform options: stock dense vs patched dense vs patched sparse through llama-bench', () => {
    const [synth, transform, bench] = [commands[8]!, commands[9]!, commands[10]!];
    expect(synth.slice(0, 2)).toEqual(['model', 'synth']);
    expect([value(synth, '--shape'), value(synth, '--type')]).toEqual(['llama-1b', 'q4_0']);
    expect(synth).not.toContain('--out'); // the synthetic-model cache
    expect([value(transform, '--model'), value(transform, '--method'), value(transform, '--sparsity')]).toEqual([ctx.edgeModel, 'chess+', '0.5']);
    // default options: no layout or storage type chosen by the demo
    expect(transform).not.toContain('--layout');
    expect(transform).not.toContain('--transposed-type');
    expect(value(transform, '--out')).toBe(edgeSparsePath(ctx));
    const pairs: [string | undefined, string | undefined][] = [];
    bench.forEach((a, i) => {
      if (a === '--model') pairs.push([bench[i + 1], bench[i + 3]]);
    });
    expect(pairs).toEqual([
      [ctx.edgeModel, 'stock'],
      [ctx.edgeModel, 'patched'],
      [edgeSparsePath(ctx), 'patched'],
    ]);
  });

  it('caches the compiled edge model by its source model and the compiler sources', () => {
    const path = edgeSparsePath(ctx, 'abc');
    expect(path).toMatch(/llama-1b\.q4_0\.chess\+-s0\.5\.cal\d+\.ref\d+\.cabc\.gguf$/);
    expect(edgeSparsePath(ctx, 'abd')).not.toBe(path);
    expect(edgeSparsePath({ edgeModel: '/c/llama-1b.q4_0.seed1.gguf' }, 'abc')).not.toBe(path);
    expect(DEMO_STEPS[9]!.skip!({ ...ctx, edgeModel: '/nonexistent/model.gguf' })).toBeUndefined();
  });
});
