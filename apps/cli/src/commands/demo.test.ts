import { describe, expect, it } from 'vitest';
import { DEMO_STEPS, type DemoContext } from './demo.ts';

const ctx: DemoContext = { out: '/o', model: '/m/dense.gguf', sparse: '/o/sparse.gguf', quick: true };
const commands = DEMO_STEPS.map((s) => s.args(ctx));
const value = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

describe('chess demo steps', () => {
  it('calibrates, transforms with chess+ at 50%, evaluates dense and sparse on the same documents', () => {
    expect(commands.map((c) => c[0])).toEqual(['model', 'inspect', 'import', 'calibrate', 'transform', 'eval', 'eval', 'bench', 'report']);
    const transform = commands[4]!;
    expect([value(transform, '--method'), value(transform, '--sparsity')]).toEqual(['chess+', '0.5']);
    const [dense, sparse] = [commands[5]!, commands[6]!];
    expect(value(dense, '--model')).toBe(ctx.model);
    expect(value(sparse, '--model')).toBe(ctx.sparse);
    for (const flag of ['--limit', '--ppl', '--ppl-windows']) expect(value(sparse, flag)).toBe(value(dense, flag));
    // No --tasks: all eight.
    expect(dense).not.toContain('--tasks');
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
    const report = commands[8]!;
    expect(report.filter((a) => a.endsWith('.json'))).toEqual(['/o/eval-dense.json', '/o/eval-sparse.json', '/o/bench.json']);
    expect(value(report, '--html')).toBe('/o/report.html');
  });
});
