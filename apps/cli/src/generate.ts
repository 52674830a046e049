/**
 * `chess generate`: try a model. Streams the answer to stdout through node-llama-cpp with the
 * model's chat template; a sparse GGUF runs on the patched build (the same runtime selection
 * as `chess eval`/`chess bench`: apps/bench runtime.ts), a dense one on the stock build.
 * After each answer a line on stderr gives the tokens, the decode speed (tokens/s from the
 * first streamed token to the last) and, on the patched build, the achieved sparsity: the
 * mean over layers of the runtime's counters (CHESS_SPARSITY_REPORT, written when a context
 * is freed; a 32-token probe context is created and freed to take the reading), over every
 * token evaluated so far (prompt and answer).
 * Greedy by default (temperature 0): the same prompt gives the same text.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { ChessError } from '@chess/core';

export interface GenerateOptions {
  model: string;
  /** One prompt; without it, read prompts from stdin (interactive on a terminal). */
  prompt?: string;
  seed: number;
  maxTokens: number;
  temperature: number;
  threads?: number;
  runtime?: string;
  contextSize?: number;
  write: (text: string) => void;
  status: (line: string) => void;
  input?: NodeJS.ReadableStream;
  interactive?: boolean;
}

export interface TurnStats {
  tokens: number;
  tokensPerSecond: number | null;
  achievedSparsity: number | null;
}

export async function generate(options: GenerateOptions): Promise<TurnStats[]> {
  const { readModelInfo, resolveRuntime, selectRuntime, loadModelOrThrow, layerSparsity, parseSparsityReport } = await import('@chess/bench');
  const layerSparsityOfReport = (text: string, source: string): number | null => {
    const layers = layerSparsity(parseSparsityReport(text, source));
    return layers.length > 0 ? layers.reduce((a, b) => a + b, 0) / layers.length : null;
  };
  const info = await readModelInfo(options.model);
  const runtimeName = resolveRuntime(options.runtime, info);
  const scratch = await mkdtemp(join(tmpdir(), 'chess-generate-'));
  const reportPath = join(scratch, 'sparsity.json');
  const counting = runtimeName !== 'stock';
  // read by the patched runtime when a context is freed (getenv at that moment)
  if (counting) process.env.CHESS_SPARSITY_REPORT = reportPath;
  const stats: TurnStats[] = [];
  try {
    const { llama, runtime, log } = await selectRuntime(runtimeName).load(options.threads ? { maxThreads: options.threads } : {});
    options.status(`${info.fileName} (${info.method}${info.method === 'dense' ? '' : ` ${Math.round(info.sparsity * 100)}%`}) on the ${runtime.name} runtime (${runtime.buildType}, llama.cpp ${runtime.llamaCppRelease})`);
    const model = await loadModelOrThrow(llama, info.path, log);
    const backend = await import('@chess/backend-llamacpp');
    const nlc = runtime.name === 'stock' ? await backend.stockNodeLlamaCppModule() : await backend.patchedNodeLlamaCppModule();
    const contextSize = Math.min(model.trainContextSize || 2048, options.contextSize ?? 2048);
    const context = await model.createContext({ contextSize, sequences: 1, ...(options.threads ? { threads: options.threads } : {}) });
    const session = new nlc.LlamaChatSession({ contextSequence: context.getSequence() });
    const sparsityNow = async (): Promise<number | null> => {
      if (!counting) return null;
      const probe = await model.createContext({ contextSize: 32, batchSize: 32, sequences: 1 });
      await probe.dispose();
      if (!existsSync(reportPath)) return null;
      return layerSparsityOfReport(readFileSync(reportPath, 'utf8'), reportPath);
    };
    const turn = async (prompt: string): Promise<void> => {
      let tokens = 0;
      let first = 0;
      let last = 0;
      await session.prompt(prompt, {
        maxTokens: options.maxTokens,
        temperature: options.temperature,
        ...(options.temperature > 0 ? { seed: options.seed } : {}),
        onTextChunk: (chunk: string) => options.write(chunk),
        onToken: (chunk: readonly unknown[]) => {
          const now = performance.now();
          if (tokens === 0) first = now;
          last = now;
          tokens += chunk.length;
        },
      });
      options.write('\n');
      const tokensPerSecond = tokens > 1 && last > first ? ((tokens - 1) * 1000) / (last - first) : null;
      const achievedSparsity = await sparsityNow();
      stats.push({ tokens, tokensPerSecond, achievedSparsity });
      options.status(
        `[${tokens} tokens, ${tokensPerSecond === null ? '–' : tokensPerSecond.toFixed(1)} tokens/s` +
          (counting ? `, achieved sparsity ${achievedSparsity === null ? '–' : `${(100 * achievedSparsity).toFixed(1)}%`} (mean over layers, every token so far)` : ', dense') +
          ']',
      );
    };
    if (options.prompt !== undefined) {
      await turn(options.prompt);
    } else {
      const rl = createInterface({ input: options.input ?? process.stdin, terminal: false });
      if (options.interactive) options.status('type a message and press Enter; an empty line or end of input ends');
      if (options.interactive) process.stderr.write('> ');
      for await (const line of rl) {
        if (line.trim() === '') break;
        await turn(line);
        if (options.interactive) process.stderr.write('> ');
      }
      rl.close();
    }
    await context.dispose();
    await model.dispose();
    await llama.dispose();
    return stats;
  } catch (error) {
    if (error instanceof ChessError) throw error;
    throw new ChessError('GENERATE_FAILED', `generating with ${options.model} failed: ${(error as Error).message}`, { model: options.model }, { cause: error });
  } finally {
    if (counting) delete process.env.CHESS_SPARSITY_REPORT;
    await rm(scratch, { recursive: true, force: true });
  }
}
