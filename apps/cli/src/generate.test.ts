// `chess generate` on the sparse SmolLM2 (CHESS+ 25 %, column blocks, synthetic thresholds: coherent text):
// runs on the patched build through node-llama-cpp with the model's chat template, streams
// the answer to stdout, and prints tokens/s and the achieved sparsity on stderr. Greedy
// decoding (the default, temperature 0) gives the same text twice.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { fetchDefaultModel } from '@chess/assets';
import { makeSparseTestModel } from '@chess/backend-llamacpp';

const main = join(dirname(fileURLToPath(import.meta.url)), 'main.ts');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function chess(args: readonly string[], stdin?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('tsx', [main, ...args], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

// tokens/s is '–' for an answer of fewer than two tokens (no interval to time)
const STATS = /\[(\d+) tokens, ([\d.]+|–) tokens\/s, achieved sparsity ([\d.]+)% \(mean over layers, every token so far\)\]/g;

let sparse: string;

beforeAll(async () => {
  sparse = await makeSparseTestModel({ method: 'chess+', source: await fetchDefaultModel(), layout: 'column-blocks', sparsity: 0.25 });
}, 600_000);

describe('chess generate', { timeout: 60 * 60_000 }, () => {
  it('answers a prompt on the sparse SmolLM2 with streamed text, tokens/s and achieved sparsity; greedy gives the same text twice', async () => {
    const args = ['generate', '--model', sparse, '--prompt', 'What is the capital of France?', '--max-tokens', '16', '--seed', '7', '--threads', '2'];
    const first = await chess(args);
    expect(first.stderr).not.toMatch(/error\[/);
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/on the patched runtime \(localBuild/);
    const stats = [...first.stderr.matchAll(STATS)];
    expect(stats).toHaveLength(1);
    const [, tokens, tps, sparsity] = stats[0]!;
    expect(Number(tokens)).toBeGreaterThan(0);
    expect(Number(tokens)).toBeLessThanOrEqual(16);
    expect(Number(tps)).toBeGreaterThan(0);
    // synthetic thresholds at 25 %: a real share of the activations is dropped
    expect(Number(sparsity)).toBeGreaterThan(10);
    expect(Number(sparsity)).toBeLessThan(90);
    expect(first.stdout.trim().length).toBeGreaterThan(0);
    const second = await chess(args);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(first.stdout);
  });

  it('without --prompt answers one message per line of stdin', async () => {
    const run = await chess(['generate', '--model', sparse, '--max-tokens', '6', '--threads', '2'], 'Hello!\nName a colour.\n');
    expect(run.stderr).not.toMatch(/error\[/);
    expect(run.code).toBe(0);
    expect([...run.stderr.matchAll(STATS)]).toHaveLength(2);
  });

  it('refuses bad options with GENERATE_BAD_OPTION', async () => {
    const run = await chess(['generate', '--model', sparse, '--prompt', 'x', '--max-tokens', '0']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('error[GENERATE_BAD_OPTION]: --max-tokens 0');
  });
});
