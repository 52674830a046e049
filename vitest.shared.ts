/**
 * The vitest settings every package shares (each package's vitest.config.ts
 * calls chessVitestConfig with its own additions).
 *
 * - Timeouts: the machines are 2 cores and often loaded; work that scales with
 *   load (child processes, file I/O, builds) must not fail on vitest's 5 s
 *   default. Tests that build or run models set their own, longer timeouts.
 * - Reporters: vitest's default one, and the summary line that
 *   scripts/summarize-tests.mjs counts (failed setup counts as failed).
 */
import { defineConfig } from 'vitest/config';
import type { InlineConfig } from 'vitest/node';
import { SummaryReporter } from './scripts/vitest/summary-reporter.ts';

export const TEST_TIMEOUT_MS = 120_000;
export const HOOK_TIMEOUT_MS = 600_000;

export function chessVitestConfig(test: InlineConfig = {}) {
  return defineConfig({
    test: {
      testTimeout: TEST_TIMEOUT_MS,
      hookTimeout: HOOK_TIMEOUT_MS,
      reporters: ['default', new SummaryReporter()],
      ...test,
    },
  });
}
