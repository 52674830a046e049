import { describe, it } from 'vitest';
import { findOnPath } from './process.ts';

/** `CI` set to anything but '', '0' or 'false' (as the fixture runner reads it). */
export function isCI(): boolean {
  const v = process.env.CI;
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

/**
 * A test suite that needs command-line tools (cmake, ctest). In CI a missing tool
 * fails the suite (`.ci/run` installs cmake first): a machine without it must not
 * stay green without running the tests. Elsewhere the suite is skipped and says
 * so on stderr, naming the tools.
 */
export function describeWithTools(tools: readonly string[], title: string, body: () => void): void {
  const missing = tools.filter((tool) => findOnPath(tool) === undefined);
  if (missing.length === 0) {
    describe(title, body);
  } else if (isCI()) {
    describe(title, () => {
      it(`finds ${tools.join(', ')} on PATH`, () => {
        throw new Error(`${title}: ${missing.join(', ')} not found on PATH; CI runs every native suite (install them, e.g. apt-get install cmake)`);
      });
    });
  } else {
    process.stderr.write(`SKIPPED '${title}': ${missing.join(', ')} not found on PATH (in CI this fails; install them to run it)\n`);
    describe.skip(title, body);
  }
}
