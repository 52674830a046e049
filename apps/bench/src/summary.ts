import type { BenchResult, EvalResult, LlamaBenchResult } from './schema.ts';

const pct = (v: number) => (100 * v).toFixed(2);
const err = (v: number | null) => (v === null ? '' : ` ± ${pct(v)}`);

/** Human summary of an eval result (stdout of `chess eval`). */
export function formatEvalSummary(r: EvalResult): string {
  const lines = [
    `model ${r.model.fileName} (${r.model.method}, sparsity ${r.model.sparsity}), runtime ${r.runtime.name} [${r.runtime.buildType} ${r.runtime.binary}]`,
    `documents per task: ${r.settings.limit === null ? 'all' : `first ${r.settings.limit}`}`,
  ];
  const tasks = Object.entries(r.tasks);
  if (tasks.length > 0) {
    const width = Math.max(8, ...tasks.map(([t]) => t.length));
    lines.push(`${'task'.padEnd(width)}  docs   acc              acc_norm         (primary: lm-eval's metric for the task)`);
    for (const [task, t] of tasks) {
      lines.push(`${task.padEnd(width)}  ${String(t.documents).padStart(4)}   ${`${pct(t.acc.value)}${err(t.acc.stderr)}`.padEnd(15)}  ${pct(t.accNorm.value)}${err(t.accNorm.stderr)}`);
    }
    if (r.average) {
      lines.push(`${'average'.padEnd(width)}  ${''.padStart(4)}   ${`${pct(r.average.acc.value)}${err(r.average.acc.stderr)}`.padEnd(15)}  ${pct(r.average.accNorm.value)}${err(r.average.accNorm.stderr)}`);
    }
  }
  if (r.perplexity) {
    const p = r.perplexity;
    lines.push(
      `perplexity ${p.perplexity.toFixed(4)}${p.perplexityStderr === null ? '' : ` ± ${p.perplexityStderr.toFixed(4)}`} on ${p.source} (ctx ${p.ctx}, second half of each window scored, ${p.windows}/${p.windowsAvailable} windows, ${p.scoredTokens} tokens)`,
    );
  }
  if (r.layerSparsity) {
    const mean = r.layerSparsity.reduce((a, b) => a + b, 0) / r.layerSparsity.length;
    lines.push(
      `achieved sparsity (runtime counters, ${r.sparsity?.scope ?? 'every evaluated token'}): mean over ${r.layerSparsity.length} layers ${pct(mean)}%, ` +
        `min ${pct(Math.min(...r.layerSparsity))}%, max ${pct(Math.max(...r.layerSparsity))}%` +
        (r.sparsity ? `; weight bytes read per token ${pct(r.sparsity.weightBytesReadFraction)}% of this file's` : ''),
    );
  }
  if (r.weightBytes) {
    const b = r.weightBytes;
    lines.push(
      `weight bytes read per token: ${(b.perToken / 2 ** 20).toFixed(1)} MiB` +
        (b.referencePerToken ? `, ${(b.perToken / b.referencePerToken).toFixed(3)}x of the dense reference's ${(b.referencePerToken / 2 ** 20).toFixed(1)} MiB` : ''),
    );
  }
  if (r.divergence) {
    const d = r.divergence;
    const iv = (i: { value: number; low: number | null; high: number | null }, digits: number) =>
      `${i.value.toFixed(digits)}${i.low !== null && i.high !== null ? ` [${i.low.toFixed(digits)}, ${i.high.toFixed(digits)}]` : ''}`;
    lines.push(
      `divergence from ${d.reference.fileName} on ${d.source} (${d.windows} windows of ${d.ctx}, ${d.positions} positions, second half of each scored; 95% intervals by bootstrap over windows):`,
      `  mean KL ${iv(d.meanKl, 5)} nats (± ${d.meanKlStderr === null ? 'n/a' : d.meanKlStderr.toFixed(5)} as llama-perplexity prints it), 99th percentile ${d.p99Kl.toFixed(4)}, max ${d.maxKl.toFixed(4)}`,
      `  same top token ${iv({ value: 100 * d.sameTop.value, low: d.sameTop.low === null ? null : 100 * d.sameTop.low, high: d.sameTop.high === null ? null : 100 * d.sameTop.high }, 2)}%, ` +
        `perplexity ratio ${iv(d.pplRatio, 4)} (${d.perplexity.toFixed(3)} vs ${d.referencePerplexity.toFixed(3)})`,
    );
  }
  lines.push(r.note);
  return `${lines.join('\n')}\n`;
}

/** Human summary of a bench result (stdout of `chess bench`). */
export function formatBenchSummary(r: BenchResult): string {
  const lines = [`${r.machine.cpu}, ${r.machine.cores} cores; prompt ${r.settings.promptTokens} tokens, decode ${r.settings.tokens} tokens, ${r.settings.repeat} repeats`];
  lines.push('model                                     runtime  thr  decode tok/s (min-max)   prefill tok/s (min-max)   TTFT ms  peak RSS   bytes/tok  speedup decode (min-max)');
  for (const s of r.summary) {
    const m = r.models[s.model]!;
    const d = s.decodeTokPerSec;
    const p = s.prefillTokPerSec;
    const sp = s.decodeSpeedup ? `${s.decodeSpeedup.median.toFixed(2)}x (${s.decodeSpeedup.min.toFixed(2)}-${s.decodeSpeedup.max.toFixed(2)})` : 'baseline';
    lines.push(
      `${m.fileName.slice(0, 40).padEnd(40)}  ${m.runtime.name.padEnd(7)}  ${String(s.threads).padStart(3)}  ${`${d.median.toFixed(1)} (${d.min.toFixed(1)}-${d.max.toFixed(1)})`.padEnd(23)}  ${`${p.median.toFixed(1)} (${p.min.toFixed(1)}-${p.max.toFixed(1)})`.padEnd(24)}  ${s.timeToFirstTokenMs.median.toFixed(0).padStart(7)}  ${`${(s.peakRssBytes / 2 ** 20).toFixed(0)} MiB`.padStart(8)}   ${(s.weightBytesReadFraction === null ? 'n/a' : `${pct(s.weightBytesReadFraction)}%`).padStart(8)}  ${sp}`,
    );
  }
  lines.push('bytes/tok: fraction of the GGUF\'s weight bytes read per decoded token, from the achieved sparsity (runtime counters) and the tensor sizes.');
  for (const [i, m] of r.models.entries()) lines.push(`model ${i}: ${m.path} (${m.method}, sparsity ${m.sparsity}), runtime ${m.runtime.name}: ${m.runtime.buildType} ${m.runtime.binary}`);
  return `${lines.join('\n')}\n`;
}

/** Human summary of a llama-bench comparison (stdout of `chess llama-bench`). */
export function formatLlamaBenchSummary(r: LlamaBenchResult): string {
  const x = (v: { median: number; min: number; max: number } | null, digits: number, unit = '') =>
    v === null ? '–' : `${v.median.toFixed(digits)}${unit} (${v.min.toFixed(digits)}-${v.max.toFixed(digits)})`;
  const lines = [
    `${r.machine.cpu}, ${r.machine.cores} cores; llama-bench tg${r.settings.tg}${r.settings.pp > 0 ? ` / pp${r.settings.pp}` : ''}, ${r.settings.threads} threads, ${r.settings.rounds} interleaved rounds; revision ${r.gitRevision ?? 'unknown'}`,
    'model                                     build    layout          decode tok/s (min-max)   decode speedup       prefill speedup      byte-ideal  size',
  ];
  for (const s of r.summary) {
    const m = r.models[s.model]!;
    lines.push(
      `${m.fileName.slice(0, 40).padEnd(40)}  ${m.build.padEnd(7)}  ${m.layout.padEnd(14)}  ${x(s.decodeTokPerSec, 1).padEnd(23)}  ${(s.model === 0 ? 'baseline' : x(s.decodeSpeedup, 2, 'x')).padEnd(19)}  ${(s.model === 0 ? 'baseline' : x(s.prefillSpeedup, 2, 'x')).padEnd(19)}  ${`${m.byteIdealSpeedup.toFixed(2)}x`.padStart(10)}  ${(m.sizeBytes / 2 ** 20).toFixed(0)} MiB`,
    );
  }
  lines.push("byte-ideal: the first model's weight bytes per decoded token over this model's, at the achieved sparsity of its decode runs.");
  for (const [build, binary] of Object.entries(r.binaries)) if (binary) lines.push(`${build} llama-bench: ${binary}`);
  return `${lines.join('\n')}\n`;
}
