/** `pnpm -C benchmarks readme-measured`: rewrite the README's Measured table and its accuracy-per-byte table from results/. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, writeFileAtomic } from '@chess/core';
import { FRONTIER_BEGIN, renderFrontier, withFrontier } from './frontier.ts';
import { renderMeasured, withMeasured } from './measured.ts';

const readmePath = join(repoRoot(), 'README.md');
const results = join(repoRoot(), 'benchmarks', 'results');
const measured = withMeasured(readFileSync(readmePath, 'utf8'), renderMeasured(results));
const next = measured.includes(FRONTIER_BEGIN) ? withFrontier(measured, renderFrontier(results)) : measured;
await writeFileAtomic(readmePath, next);
process.stderr.write(`[readme-measured] wrote the Measured and accuracy-per-byte tables of ${readmePath}\n`);
