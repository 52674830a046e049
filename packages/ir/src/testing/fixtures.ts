/**
 * Fixture-folder tests (Babel style). A suite is a directory; each case is a
 * sub-directory with `input.ir` (optional for generators) and either
 * `output.ir`, or `options.json` with a `throws` field for an expected error.
 * `options.json` cascades: the suite root's options apply to every case, a
 * case's own override them.
 *
 *  - a missing output is written on the first run (review it by hand before
 *    committing: a golden file is only as good as the eye that checked it);
 *  - `UPDATE=1` rewrites outputs that differ;
 *  - with `CI` set, nothing is written and a missing output fails the case.
 *
 * `throws`: an error code (`"IR_VERIFY_TYPE"`), a message substring, or
 * `{ "code": ..., "message": ... }`.
 */
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

export type FixtureOptions = Record<string, unknown> & { throws?: string | { code?: string; message?: string } };

export interface FixtureCase {
  readonly name: string;
  readonly dir: string;
  /** Content of input.ir, if present. */
  readonly input: string | undefined;
  readonly options: FixtureOptions;
}

export interface FixtureSuite {
  /** Turns a case into the text compared with its output file. */
  transform(fixture: FixtureCase): string | Promise<string>;
  /** Output file name. Default `output.ir`. */
  readonly output?: string;
  /** Extra checks on a passing case (e.g. that the output parses back identically). */
  readonly check?: (actual: string, fixture: FixtureCase) => void | Promise<void>;
}

const CODE_RE = /^[A-Z][A-Z0-9_]+$/;

function envFlag(name: string): boolean {
  const v = process.env[name];
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

function readOptions(dir: string): FixtureOptions {
  const file = join(dir, 'options.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as FixtureOptions) : {};
}

/** Register one vitest case per fixture directory under `root`. */
export function runFixtures(title: string, root: string, suite: FixtureSuite): void {
  const outputName = suite.output ?? 'output.ir';
  const rootOptions = readOptions(root);
  const cases = readdirSync(root)
    .filter((name) => statSync(join(root, name)).isDirectory())
    .sort();
  describe(title, () => {
    if (cases.length === 0) {
      it('has fixtures', () => {
        throw new Error(`no fixture directories in ${root}`);
      });
    }
    for (const name of cases) {
      const dir = join(root, name);
      it(name, async () => {
        const inputFile = join(dir, 'input.ir');
        const fixture: FixtureCase = {
          name,
          dir,
          input: existsSync(inputFile) ? readFileSync(inputFile, 'utf8') : undefined,
          options: { ...rootOptions, ...readOptions(dir) },
        };
        const outputFile = join(dir, outputName);
        const { throws } = fixture.options;
        if (throws !== undefined) {
          expect(existsSync(outputFile), `${name}: a case with 'throws' must not have ${outputName}`).toBe(false);
          const expected = typeof throws === 'string' ? (CODE_RE.test(throws) ? { code: throws } : { message: throws }) : throws;
          let error: unknown;
          try {
            await suite.transform(fixture);
          } catch (e) {
            error = e;
          }
          expect(error, `${name}: expected an error ${JSON.stringify(expected)}`).toBeInstanceOf(Error);
          if (expected.code !== undefined) expect((error as { code?: string }).code, (error as Error).message).toBe(expected.code);
          if (expected.message !== undefined) expect((error as Error).message).toContain(expected.message);
          return;
        }
        const actual = await suite.transform(fixture);
        if (!existsSync(outputFile)) {
          if (envFlag('CI')) throw new Error(`${name}: ${outputFile} is missing; run the tests locally (not in CI) to write it, then review it by hand`);
          writeFileSync(outputFile, actual);
        } else if (envFlag('UPDATE') && !envFlag('CI')) {
          if (readFileSync(outputFile, 'utf8') !== actual) writeFileSync(outputFile, actual);
        } else {
          expect(actual).toBe(readFileSync(outputFile, 'utf8'));
        }
        await suite.check?.(actual, fixture);
      });
    }
  });
}
