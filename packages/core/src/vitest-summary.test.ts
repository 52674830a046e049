// The repository's test accounting (vitest.shared.ts's summary reporter and
// scripts/summarize-tests.mjs) on a project with known outcomes: a failed
// setup or an unloadable file counts as failed, a deliberate skip as skipped.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { repoRoot } from './python.ts';

const run = promisify(execFile);
const PROJECT = join(import.meta.dirname, '__fixtures__', 'vitest-summary');
const VITEST = join(repoRoot(), 'node_modules', 'vitest', 'vitest.mjs');

let work: string;
let output: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-summary-'));
  output = await run(process.execPath, [VITEST, 'run', '--root', PROJECT], { env: { ...process.env, NO_COLOR: '1', CI: '' } }).then(
    () => {
      throw new Error('the fixture project has failing tests: vitest must exit non-zero');
    },
    (error: { stdout: string; stderr: string }) => error.stdout + error.stderr,
  );
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

it('the reporter counts a failed setup and an unloadable file as failures and lists what did not run', () => {
  expect(output).toContain('chess-test-summary {"passed":1,"failed":2,"skipped":1,"setupFailed":3}');
  expect(output).toMatch(/FAILED SETUP {2}setup-fails\.case\.ts: 2 test\(s\) not run \(the reference environment could not be created\)/);
  expect(output).toMatch(/FAILED SETUP {2}mixed\.case\.ts > slow setup: 1 test\(s\) not run \(Hook timed out in 50ms/);
  expect(output).toMatch(/FAILED FILE {2}broken-import\.case\.ts/);
  expect(output).toMatch(/SKIPPED {2}mixed\.case\.ts > is skipped on purpose/);
});

it('summarize-tests.mjs adds packages up, exits 1 on failures, and fails a package that printed no summary', async () => {
  const prefixed = (pkg: string, text: string) => text.split('\n').map((line) => `${pkg}:test: ${line}`).join('\n');
  const log = join(work, 'turbo.log');
  const clean = ' RUN  v4.1.12 /x\nchess-test-summary {"passed":5,"failed":0,"skipped":2,"setupFailed":0}';
  await writeFile(log, `${prefixed('@t/fixture', output)}\n${prefixed('@t/clean', clean)}\n`);
  const failing = await run(process.execPath, [join(repoRoot(), 'scripts', 'summarize-tests.mjs'), log]).then(
    () => undefined,
    (error: { code: number; stdout: string }) => error,
  );
  expect(failing?.code).toBe(1);
  expect(failing?.stdout).toContain('6 passed, 5 failed, 3 skipped');
  expect(failing?.stdout).toMatch(/@t\/fixture: FAILED SETUP {2}setup-fails\.case\.ts/);

  await writeFile(log, `${prefixed('@t/clean', clean)}\n`);
  expect((await run(process.execPath, [join(repoRoot(), 'scripts', 'summarize-tests.mjs'), log])).stdout).toContain('5 passed, 0 failed, 2 skipped');

  await writeFile(log, `${prefixed('@t/clean', clean)}\n${prefixed('@t/crashed', ' RUN  v4.1.12 /y\nError: out of memory')}\n`);
  const crashed = await run(process.execPath, [join(repoRoot(), 'scripts', 'summarize-tests.mjs'), log]).then(
    () => undefined,
    (error: { code: number; stdout: string }) => error,
  );
  expect(crashed?.code).toBe(1);
  expect(crashed?.stdout).toMatch(/@t\/crashed: FAILED {2}vitest printed no chess-test-summary line/);
  expect(crashed?.stdout).toContain('5 passed, 1 failed, 2 skipped');
});
