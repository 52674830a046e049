/**
 * A vitest reporter (next to the default one) that makes a test run countable
 * without reading vitest's prose: one closing line per package,
 *
 *   chess-test-summary {"passed":N,"failed":N,"skipped":N,"setupFailed":N}
 *
 * read by scripts/summarize-tests.mjs. Vitest reports the tests of a suite
 * whose beforeAll failed as "skipped"; here they count as failed (a suite that
 * could not set up did not pass), and are listed. A file that failed to load
 * counts as one failure, an unhandled error as one more. Skips are listed by
 * name so a skip is never silent.
 */
import type { Reporter, TestCase, TestModule, TestSuite } from 'vitest/node';

type Counts = { passed: number; failed: number; skipped: number; setupFailed: number };

/** The suite (or file) whose own hook failed above a test that did not run; none for a deliberate skip. */
function failedAncestor(test: TestCase): TestSuite | TestModule | undefined {
  if (test.options.mode === 'skip' || test.options.mode === 'todo') return undefined;
  for (let p: TestSuite | TestModule = test.parent; ; p = (p as TestSuite).parent) {
    if (p.errors().length > 0) return p;
    if (p.type === 'module') return undefined;
  }
}

function nameOf(entity: TestSuite | TestModule): string {
  return entity.type === 'module' ? entity.relativeModuleId : `${entity.module.relativeModuleId} > ${entity.fullName}`;
}

export class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    const counts: Counts = { passed: 0, failed: 0, skipped: 0, setupFailed: 0 };
    const lines: string[] = [];
    for (const module of testModules) {
      let failedHere = 0;
      const notRun = new Map<TestSuite | TestModule, number>();
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') counts.passed++;
        else if (state === 'failed' || state === 'pending') {
          counts.failed++;
          failedHere++;
        } else {
          const broken = failedAncestor(test);
          if (broken) {
            counts.setupFailed++;
            failedHere++;
            notRun.set(broken, (notRun.get(broken) ?? 0) + 1);
          } else {
            counts.skipped++;
            lines.push(`SKIPPED  ${module.relativeModuleId} > ${test.fullName}`);
          }
        }
      }
      for (const [entity, n] of notRun) {
        const why = entity.errors()[0]?.message ?? 'its setup failed';
        lines.push(`FAILED SETUP  ${nameOf(entity)}: ${n} test(s) not run (${why.split('\n')[0]})`);
      }
      if (failedHere === 0 && (module.state() === 'failed' || module.errors().length > 0)) {
        counts.failed++; // failed to load or collect: its tests never existed
        lines.push(`FAILED FILE  ${module.relativeModuleId}: ${module.errors()[0]?.message?.split('\n')[0] ?? 'failed'}`);
      }
    }
    counts.failed += unhandledErrors.length;
    for (const line of lines) process.stdout.write(`${line}\n`);
    process.stdout.write(`chess-test-summary ${JSON.stringify(counts)}\n`);
  }
}
