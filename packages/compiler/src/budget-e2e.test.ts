/**
 * The `budget` method on the real SmolLM2 with the patched llama.cpp: the file
 * `chess transform --method budget --budget B` makes by default (dense
 * calibration, allocation, one refinement) reads, on held-out text (LAMBADA,
 * never the Brown calibration text), the fraction of the dense model's weight
 * bytes per token it was given, within TOLERANCE: the runtime's own counters
 * (CHESS_SPARSITY_REPORT of llama-perplexity) through @chess/bench's
 * weightTraffic on the written file, against the dense source's table.
 *
 * Uses the calibration profile every SmolLM2 end-to-end test shares (testing/smollm2-e2e.ts).
 * Developer override: CHESS_BACKEND_BIN_DIR=<dir of llama-perplexity>.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSparsityReport, readWeightTable, weightTraffic } from '@chess/bench';
import { type CalibrationProfile } from '@chess/calibrate';
import { fixedCalibrator } from './calibrator.ts';
import { compile } from './compile.ts';
import { E2E_REFINE_TOKENS, smollm2E2e } from './testing/smollm2-e2e.ts';

const run = promisify(execFile);
const MINUTE = 60_000;
const BUDGET = 0.78;
/** Achieved bytes per token vs the budget, fractions of the dense model's. */
const TOLERANCE = 0.03;
const CTX = 512;
const CHUNKS = 4;
const REFINE_TOKENS = E2E_REFINE_TOKENS;

const log = (line: string): void => {
  process.stderr.write(`[budget e2e] ${line}\n`);
};

let binDir: string;
let model: string;
let profile: CalibrationProfile;
let refine: (sparseModel: string, iteration: number) => Promise<CalibrationProfile>;
let work: string;
let text: string;

beforeAll(async () => {
  ({ work, model, binDir, profile, refine, lambada: text } = await smollm2E2e('budget-e2e', log));
}, 120 * MINUTE); // a cold backend build, or a wait for another package's, then calibration

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('budget method on SmolLM2 through the patched llama.cpp', () => {
  it(
    `--budget ${BUDGET}: the bytes a token reads on held-out text are within ${TOLERANCE} of the budget; the allocation is recorded`,
    async () => {
      const out = join(work, 'budget.gguf');
      const started = performance.now();
      const result = await compile({ model, out, method: 'budget', budget: BUDGET, refineTokens: REFINE_TOKENS, refineIterations: 1 }, { calibrator: fixedCalibrator(profile, refine) });
      const seconds = (performance.now() - started) / 1000;
      const allocation = result.thresholds.allocation!;
      expect(allocation.estimate).toBeLessThanOrEqual(BUDGET);
      expect(allocation.sparsity).toHaveLength(profile.model.nLayer);

      const reportPath = join(work, 'sparsity.json');
      const { stdout, stderr } = await run(join(binDir, 'llama-perplexity'), ['-m', out, '-f', text, '-c', String(CTX), '-b', String(CTX), '--chunks', String(CHUNKS), '-t', '2'], {
        env: { ...process.env, LD_LIBRARY_PATH: binDir, CHESS_SPARSITY_REPORT: reportPath },
        maxBuffer: 64 << 20,
      });
      const ppl = /Final estimate: PPL = ([\d.]+)/.exec(stdout + stderr);
      expect(ppl, (stdout + stderr).slice(-2000)).not.toBeNull();
      const counters = readSparsityReport(reportPath);
      expect(counters).not.toBeNull();
      const table = await readWeightTable(out);
      const tauBytes = table.filter((t) => t.name.endsWith('_tau')).reduce((a, t) => a + t.bytes, 0);
      const achieved = (weightTraffic(table, counters).readBytes - tauBytes) / weightTraffic(await readWeightTable(model), null).readBytes;
      log(`budget ${BUDGET}: estimate ${allocation.estimate.toFixed(4)}, achieved on LAMBADA ${achieved.toFixed(4)} of the dense bytes per token; PPL ${ppl![1]}; transform ${seconds.toFixed(0)} s`);
      expect(Math.abs(achieved - BUDGET)).toBeLessThanOrEqual(TOLERANCE);
    },
    30 * MINUTE,
  );
});
