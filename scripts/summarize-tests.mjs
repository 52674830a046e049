// Sum the per-package summary lines of a turbo log (written by
// scripts/vitest/summary-reporter.ts, which every package's vitest config
// installs through vitest.shared.ts) into one closing line
// "N passed, N failed, N skipped" (the form CI reads in any language).
// Tests of a suite whose setup (beforeAll) failed count as failed, not skipped.
// A package that ran vitest without printing a summary counts as one failure:
// its config does not use vitest.shared.ts, or vitest crashed.
// Exit code 1 when anything failed, so the caller cannot miss it.
import { readFileSync } from 'node:fs';

const log = readFileSync(process.argv[2], 'utf8').replace(/\x1b\[[0-9;]*m/g, '');
const totals = { passed: 0, failed: 0, skipped: 0 };
const ran = new Set();
const summarized = new Set();
const notes = [];
for (const line of log.split('\n')) {
  const task = /^(\S+):test:\s?(.*)$/.exec(line);
  if (!task) continue;
  const [, pkg, text] = task;
  if (/^\s*RUN\s+v\d/.test(text)) ran.add(pkg);
  const summary = /^chess-test-summary (\{.*\})\s*$/.exec(text);
  if (summary) {
    const counts = JSON.parse(summary[1]);
    summarized.add(pkg);
    totals.passed += counts.passed;
    totals.failed += counts.failed + counts.setupFailed;
    totals.skipped += counts.skipped;
  } else if (/^(FAILED SETUP|FAILED FILE|SKIPPED) /.test(text)) {
    notes.push(`${pkg}: ${text}`);
  }
}
for (const pkg of ran) {
  if (summarized.has(pkg)) continue;
  totals.failed++;
  notes.push(`${pkg}: FAILED  vitest printed no chess-test-summary line (its vitest.config.ts must use chessVitestConfig from vitest.shared.ts, or vitest crashed)`);
}
for (const note of notes) console.log(note);
console.log(`test summary over ${summarized.size} packages:`);
console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exitCode = totals.failed > 0 ? 1 : 0;
