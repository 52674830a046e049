import { stockRuntime } from './src/runtime.ts';
import { loadTask } from './src/requests.ts';
import { LogLikelihoodScorer } from './src/loglik.ts';
import { scoreDocument, aggregateTask } from './src/metrics.ts';
const { llama, runtime } = await stockRuntime.load();
console.log(runtime);
const model = await llama.loadModel({ modelPath: process.env.HOME + '/.cache/chess-toolchain/models/SmolLM2-135M-Instruct.Q4_1.gguf' });
const ctx = await model.createContext({ contextSize: 2048, sequences: 1 });
const scorer = new LogLikelihoodScorer(model, ctx.getSequence());
const docs = loadTask('/tmp/olmo/x', 'piqa', 20);
const t0 = performance.now();
const scores = [];
for (const d of docs) {
  const ch = [];
  for (const c of d.choices) { const r = await scorer.score(c.context, c.continuation); ch.push({ logLikelihood: r.logLikelihood, continuation: c.continuation }); }
  scores.push(scoreDocument(ch, d.label));
}
const dt = performance.now() - t0;
console.log(aggregateTask(scores), dt / docs.length, 'ms/doc', scorer.evaluatedTokens);
