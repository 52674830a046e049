import type { Command } from 'commander';

const collect = (value: string, previous: string[] = []) => [...previous, value];
const log = (line: string) => process.stderr.write(`${line}\n`);

/** A cli-progress bar on stderr (silent when stderr is not a terminal). */
async function progressBar(): Promise<{ update: (label: string, done: number, total: number) => void; stop: () => void }> {
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = new SingleBar(
    { format: ' {label} [{bar}] {value}/{total} | {duration_formatted} elapsed | ETA {eta_formatted}', stream: process.stderr, hideCursor: true, clearOnComplete: true },
    Presets.shades_classic,
  );
  let current = '';
  let started = false;
  return {
    update(label, done, total) {
      if (!started || label !== current) {
        if (started) bar.stop();
        bar.start(total, done, { label });
        started = true;
        current = label;
      } else {
        bar.setTotal(total);
        bar.update(done, { label });
      }
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}

async function defaultModel(): Promise<string> {
  const { fetchDefaultModel } = await import('@chess/assets');
  return fetchDefaultModel({ log });
}

/** The default model's path, fetched or not (an input when no --model is given). */
async function defaultModelPath(): Promise<string> {
  return (await import('@chess/assets')).defaultModelPath();
}

/**
 * The output policy of every command (@chess/core checkOutputPath): each output given, against
 * every input. Models are read first (our reader, the sparse contract): a malformed model is
 * reported before anything about the outputs, as in every command.
 */
async function checkOutputs(outputs: Array<[option: string, path: string | undefined]>, inputs: Array<{ option: string; path: string | undefined }>): Promise<void> {
  if (outputs.every(([, path]) => path === undefined)) return;
  const { checkOutputPath } = await import('@chess/core');
  const { readModelInfo } = await import('./model-info.ts');
  const { existsSync } = await import('node:fs');
  for (const input of inputs) if (input.option === '--model' && input.path !== undefined && existsSync(input.path)) await readModelInfo(input.path);
  for (const [option, path] of outputs) if (path !== undefined) await checkOutputPath(option, path, inputs);
}

/** `chess eval`, `chess bench`, `chess report`. */
export function registerBenchCommands(program: Command): void {
  program
    .command('eval')
    .description('accuracy: zero-shot multiple choice (acc, acc_norm ± stderr) on the eight CHESS tasks, and perplexity on real text')
    .option('--model <gguf>', 'model file (default: the embedded SmolLM2-135M-Instruct Q4_1)')
    .option('--tasks <list>', 'comma-separated tasks (default: arc_challenge,arc_easy,boolq,hellaswag,openbookqa,piqa,sciq,winogrande)')
    .option('--no-tasks', 'skip the multiple-choice tasks (perplexity only)')
    .option('--limit <n>', 'first N documents of each task (deterministic)')
    .option('--ppl <source>', "perplexity on 'lambada' (LAMBADA test passages) or a text FILE")
    .option('--ctx <n>', 'perplexity window in tokens; the second half of each window is scored, as llama-perplexity does', '512')
    .option('--ppl-windows <n|all>', "at most N perplexity windows ('all' for the whole text; about 40 ms per scored token on 2 cores)", '32')
    .option('--threads <n>', 'CPU threads (scoring is per-token work in node-llama-cpp; on a shared 2-core machine 1 thread was several times faster than 2)', '1')
    .option('--runtime <name>', "auto (patched build for a sparse GGUF, stock prebuilt build otherwise) | stock | patched", 'auto')
    .option('--reference <gguf>', "dense model: mean KL of --model's next-token distributions from it (95% interval, 99th percentile), same-top share and perplexity ratio on --ppl's text (default LAMBADA), --ctx windows")
    .option('--scorer <name>', 'native (chess-score: each shared context once, documents batched, only the needed log-probs) | node (node-llama-cpp, one request at a time)', 'native')
    .option('--json <out>', 'write the result file (atomically)')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const { runEval } = await import('./eval.ts');
      const { formatEvalSummary } = await import('./summary.ts');
      const { writeFileAtomic } = await import('@chess/core');
      await checkOutputs(
        [['--json', o.json as string | undefined]],
        [
          { option: '--model', path: (o.model as string | undefined) ?? (await defaultModelPath()) },
          { option: '--ppl', path: o.ppl as string | undefined },
          { option: '--reference', path: o.reference as string | undefined },
        ],
      );
      const modelPath = (o.model as string | undefined) ?? (await defaultModel());
      const bar = await progressBar();
      try {
        const result = await runEval({
          modelPath,
          tasks: typeof o.tasks === 'string' ? o.tasks : undefined,
          noTasks: o.tasks === false,
          limit: o.limit === undefined ? undefined : Number(o.limit),
          ppl: o.ppl as string | undefined,
          ctx: Number(o.ctx),
          pplWindows: o.pplWindows === 'all' ? undefined : Number(o.pplWindows),
          threads: o.threads === undefined ? undefined : Number(o.threads),
          runtime: o.runtime as string,
          reference: o.reference as string | undefined,
          scorer: o.scorer as string,
          log: (line) => {
            bar.stop();
            log(line);
          },
          onProgress: (stage, done, total) => bar.update(stage, done, total),
        });
        bar.stop();
        if (o.json) await writeFileAtomic(o.json as string, `${JSON.stringify(result, null, 2)}\n`);
        process.stdout.write(formatEvalSummary(result));
      } finally {
        bar.stop();
      }
    });

  program
    .command('bench')
    .description('speed: decode and prefill tok/s, time to first token, peak RSS; each measurement in its own process, models interleaved')
    .option('--model <gguf>', 'model file; repeat for several (the first is the baseline of the ratios)', collect)
    .option('--runtime <name>', 'runtime per --model, in order (or one for all): auto (default: patched for a sparse GGUF, stock otherwise) | stock | patched', collect)
    .option('--threads <list>', 'comma-separated thread counts', '1,2')
    .option('--tokens <n>', 'tokens to decode per measurement', '64')
    .option('--prompt-tokens <n>', 'prompt length for prefill', '128')
    .option('--repeat <n>', 'repeats (each runs every model once per thread count)', '3')
    .option('--json <out>', 'write the result file (atomically)')
    .option('--html <out>', 'write a self-contained HTML report of this run')
    .action(async (o: { model?: string[]; runtime?: string[]; threads: string; tokens: string; promptTokens: string; repeat: string; json?: string; html?: string }) => {
      const { runBench } = await import('./speed.ts');
      const { formatBenchSummary } = await import('./summary.ts');
      const { renderHtml } = await import('./report.ts');
      const { writeFileAtomic } = await import('@chess/core');
      const given = o.model && o.model.length > 0 ? o.model : [await defaultModelPath()];
      await checkOutputs(
        [
          ['--json', o.json],
          ['--html', o.html],
        ],
        given.map((path) => ({ option: '--model', path })),
      );
      const models = o.model && o.model.length > 0 ? o.model : [await defaultModel()];
      const bar = await progressBar();
      try {
        const result = await runBench({
          models,
          runtimes: o.runtime,
          threads: o.threads,
          tokens: Number(o.tokens),
          promptTokens: Number(o.promptTokens),
          repeat: Number(o.repeat),
          log: (line) => {
            bar.stop();
            log(line);
          },
          onProgress: (done, total) => bar.update('bench', done, total),
        });
        bar.stop();
        if (o.json) await writeFileAtomic(o.json, `${JSON.stringify(result, null, 2)}\n`);
        if (o.html) await writeFileAtomic(o.html, renderHtml({ evals: [], benches: [{ file: o.json ?? '(this run)', result }] }));
        process.stdout.write(formatBenchSummary(result));
      } finally {
        bar.stop();
      }
    });

  program
    .command('llama-bench')
    .description("speed through llama.cpp's llama-bench: a stock build of the pristine tree vs the patched build, one process per (model, test, round), models interleaved; byte-ideal speedups from the achieved sparsity")
    .option('--model <gguf>', 'model file; repeat for several (the first is the baseline of the ratios)', collect)
    .option('--build <name>', 'llama.cpp build per --model, in order (or one for all): auto (patched for a sparse GGUF, stock otherwise) | stock | patched', collect)
    .option('--threads <n>', 'threads of every run', '2')
    .option('--tg <n>', 'tokens decoded per decode run', '32')
    .option('--pp <n>', 'prompt tokens per prefill run (0: decode only)', '128')
    .option('--rounds <n>', 'interleaved rounds', '3')
    .option('--json <out>', 'write the result file (atomically)')
    .action(async (o: { model?: string[]; build?: string[]; threads: string; tg: string; pp: string; rounds: string; json?: string }) => {
      const { runLlamaBench } = await import('./llama-bench.ts');
      const { formatLlamaBenchSummary } = await import('./summary.ts');
      const { readModelInfo } = await import('./model-info.ts');
      const { positiveInteger } = await import('./eval.ts');
      const { UsageError, writeFileAtomic } = await import('@chess/core');
      const backend = await import('@chess/backend-llamacpp');
      await checkOutputs([['--json', o.json]], (o.model && o.model.length > 0 ? o.model : [await defaultModelPath()]).map((path) => ({ option: '--model', path })));
      const paths = o.model && o.model.length > 0 ? o.model : [await defaultModel()];
      const requested = o.build && o.build.length > 0 ? o.build : ['auto'];
      if (requested.length !== 1 && requested.length !== paths.length) {
        throw new UsageError('BENCH_BAD_OPTION', `--build: give one build, or one per --model (${paths.length})`, {});
      }
      const models = [];
      for (const [i, path] of paths.entries()) {
        const wanted = requested.length === 1 ? requested[0]! : requested[i]!;
        if (wanted !== 'auto' && wanted !== 'stock' && wanted !== 'patched') throw new UsageError('BENCH_BAD_OPTION', `--build ${wanted}: expected auto, stock or patched`, { build: wanted });
        const info = await readModelInfo(path);
        const build = wanted === 'auto' ? (info.method === 'dense' ? 'stock' : 'patched') : wanted;
        if (build === 'stock' && info.method !== 'dense') throw new UsageError('BENCH_BAD_OPTION', `--build stock: ${path} is a sparse GGUF (${info.method}); stock llama.cpp refuses it`, { path });
        models.push({ path, build: build as 'stock' | 'patched' });
      }
      const pp = Number(o.pp);
      if (!Number.isInteger(pp) || pp < 0) throw new UsageError('BENCH_BAD_OPTION', `--pp: expected an integer >= 0, got '${o.pp}'`, { pp: o.pp });
      const binaries: { stock?: string; patched?: string } = {};
      if (models.some((m) => m.build === 'stock')) binaries.stock = await backend.ensureStockTool('llama-bench', log);
      if (models.some((m) => m.build === 'patched')) binaries.patched = `${(await backend.buildBackend({ log })).binDir}/llama-bench`;
      const bar = await progressBar();
      try {
        const result = await runLlamaBench({
          models,
          binaries,
          threads: positiveInteger('--threads', o.threads)!,
          tg: positiveInteger('--tg', o.tg)!,
          pp,
          rounds: positiveInteger('--rounds', o.rounds)!,
          log: (line) => {
            bar.stop();
            log(line);
          },
          onProgress: (done, total, label) => bar.update(label, done, total),
        });
        bar.stop();
        if (o.json) await writeFileAtomic(o.json, `${JSON.stringify(result, null, 2)}\n`);
        process.stdout.write(formatLlamaBenchSummary(result));
      } finally {
        bar.stop();
      }
    });

  program
    .command('report')
    .description('Markdown table and self-contained HTML page (with plots) from eval and bench result files')
    .argument('<results...>', 'result JSON files written by chess eval --json / chess bench --json / chess llama-bench --json')
    .option('--md <out>', 'write Markdown here (default: stdout)')
    .option('--html <out>', 'write the HTML page here')
    .action(async (files: string[], o: { md?: string; html?: string }) => {
      const { loadResults, renderMarkdown, renderHtml } = await import('./report.ts');
      const { writeFileAtomic } = await import('@chess/core');
      const inputs = files.map((path) => ({ option: '<results>', path }));
      await checkOutputs(
        [
          ['--md', o.md],
          ['--html', o.html],
        ],
        inputs,
      );
      const input = loadResults(files);
      const md = renderMarkdown(input);
      if (o.md) await writeFileAtomic(o.md, md);
      else process.stdout.write(md);
      if (o.html) await writeFileAtomic(o.html, renderHtml(input));
    });
}
