/**
 * evaluator-speed: the native scorer (chess eval's default) against the node-llama-cpp scorer
 * it replaces (`--scorer node`: one request at a time, the whole vocabulary's probabilities per
 * scored position), on the same documents, interleaved, in one run.
 *
 *   pnpm -C benchmarks evaluator-speed [--limit N] [--tasks a,b] [--rounds R] [--threads T]
 *
 * Documents per second from each task's scoring wall time (the native scorer's includes its
 * process start and model load); scores must be identical per document (acc and acc_norm of
 * every document, hence every acc digit). Writes results/evaluator-speed.json.
 */
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fetchDefaultModel } from '@chess/assets';
import { gitRevision, runEval, type EvalResult } from '@chess/bench';
import { UsageError, repoRoot, writeFileAtomic } from '@chess/core';

function args(argv: string[]) {
  const o = { limit: 24, tasks: 'arc_easy,boolq,hellaswag,piqa,winogrande', rounds: 2, threads: 2 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i]!, argv[i + 1]];
    if (value === undefined) throw new UsageError('BENCH_BAD_ARGUMENT', `${flag} needs a value`, { flag });
    if (flag === '--tasks') o.tasks = value;
    else if (flag === '--limit' || flag === '--rounds' || flag === '--threads') o[flag.slice(2) as 'limit' | 'rounds' | 'threads'] = Number(value);
    else throw new UsageError('BENCH_BAD_ARGUMENT', `unknown option ${flag}`, { flag });
  }
  return o;
}

const o = args(process.argv.slice(2));
const model = await fetchDefaultModel();
const log = (line: string) => process.stderr.write(`[evaluator-speed] ${line}\n`);
const load = [loadavg()[0]!];
const runs: { round: number; scorer: 'native' | 'node'; result: EvalResult }[] = [];
for (let round = 0; round < o.rounds; round++) {
  // alternate which scorer goes first, so a load change hits both
  const order: ('native' | 'node')[] = round % 2 === 0 ? ['node', 'native'] : ['native', 'node'];
  for (const scorer of order) {
    log(`round ${round + 1}/${o.rounds}: ${scorer} (load ${loadavg()[0]!.toFixed(2)})`);
    const result = await runEval({ modelPath: model, tasks: o.tasks, limit: o.limit, threads: o.threads, scorer, runtime: 'stock', log });
    runs.push({ round, scorer, result });
    load.push(loadavg()[0]!);
  }
}
const tasks = Object.keys(runs[0]!.result.tasks);
const perTask = tasks.map((task) => {
  const of = (scorer: 'native' | 'node') => runs.filter((r) => r.scorer === scorer).map((r) => r.result.tasks[task]!);
  const docsPerSecond = (ts: EvalResult['tasks'][string][]) => ts.map((t) => t.documents / t.seconds);
  const native = docsPerSecond(of('native'));
  const node = docsPerSecond(of('node'));
  // per-document equality across every run of either scorer
  const ref = of('node')[0]!.perDocument!;
  const identical = [...of('native'), ...of('node')].every(
    (t) => JSON.stringify([t.perDocument!.acc, t.perDocument!.accNorm, t.perDocument!.pred, t.perDocument!.predNorm]) === JSON.stringify([ref.acc, ref.accNorm, ref.pred, ref.predNorm]),
  );
  return {
    task,
    documents: ref.docId.length,
    nodeDocsPerSecond: node,
    nativeDocsPerSecond: native,
    speedupPerRound: native.map((v, i) => v / node[i]!),
    acc: { node: of('node')[0]!.acc.value, native: of('native')[0]!.acc.value },
    accNorm: { node: of('node')[0]!.accNorm.value, native: of('native')[0]!.accNorm.value },
    identicalPerDocument: identical,
  };
});
const total = (scorer: 'native' | 'node') =>
  runs.filter((r) => r.scorer === scorer).map((r) => Object.values(r.result.tasks).reduce((n, t) => n + t.documents, 0) / Object.values(r.result.tasks).reduce((s, t) => s + t.seconds, 0));
const native = total('native');
const node = total('node');
const out = {
  benchmark: 'evaluator-speed',
  command: `pnpm -C benchmarks evaluator-speed --limit ${o.limit} --tasks ${o.tasks} --rounds ${o.rounds} --threads ${o.threads}`,
  date: new Date().toISOString(),
  gitRevision: gitRevision(),
  machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, loadAverage: load },
  model,
  settings: o,
  overall: { nodeDocsPerSecond: node, nativeDocsPerSecond: native, speedupPerRound: native.map((v, i) => v / node[i]!) },
  tasks: perTask,
};
await writeFileAtomic(join(repoRoot(), 'benchmarks', 'results', 'evaluator-speed.json'), `${JSON.stringify(out, null, 2)}\n`);
log(`native ${native.map((v) => v.toFixed(3)).join(', ')} docs/s vs node ${node.map((v) => v.toFixed(3)).join(', ')} docs/s: ${out.overall.speedupPerRound.map((v) => v.toFixed(2)).join(', ')}x; identical per document: ${perTask.every((t) => t.identicalPerDocument)}`);
