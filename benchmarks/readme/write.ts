/** `pnpm -C benchmarks readme-measured`: rewrite the README's Measured table from results/. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, writeFileAtomic } from '@chess/core';
import { renderMeasured, withMeasured } from './measured.ts';

const readmePath = join(repoRoot(), 'README.md');
const next = withMeasured(readFileSync(readmePath, 'utf8'), renderMeasured(join(repoRoot(), 'benchmarks', 'results')));
await writeFileAtomic(readmePath, next);
process.stderr.write(`[readme-measured] wrote the Measured table of ${readmePath}\n`);
