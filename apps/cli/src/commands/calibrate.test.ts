import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'main.ts');

function chess(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('tsx', [main, ...args], { env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('chess calibrate (option errors, before any work)', () => {
  it('is listed with its options', async () => {
    const run = await chess('calibrate', '--help');
    expect(run.code).toBe(0);
    for (const option of ['--model', '--data', '--tokens', '--ctx', '--seed', '--out']) expect(run.stdout).toContain(option);
  });

  it('rejects bad options with usage errors (exit 2)', async () => {
    const self = fileURLToPath(import.meta.url); // any readable file: the options fail first
    const cases: Array<[string[], string]> = [
      [['--tokens', '0'], 'CALIBRATE_BAD_OPTION'],
      [['--tokens', 'many'], 'CALIBRATE_BAD_OPTION'],
      [['--ctx', '-3'], 'CALIBRATE_BAD_OPTION'],
      [['--seed', '1.5'], 'CALIBRATE_BAD_OPTION'],
    ];
    for (const [args, code] of cases) {
      const run = await chess('calibrate', '--model', self, '--out', '/tmp/never.prof', ...args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toContain(`error[${code}]`);
    }
    const missing = await chess('calibrate', '--model', '/nonexistent/model.gguf', '--out', '/tmp/never.prof');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('error[CALIBRATE_MODEL_UNREADABLE]');
    const noOut = await chess('calibrate', '--model', self);
    expect(noOut.code).toBe(2);
    expect(noOut.stderr).toMatch(/--out/);
  }, 120_000);
});
