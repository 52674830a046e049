/** `pnpm -C benchmarks readme-measured`: rewrite the README's headline, Measured and accuracy-per-byte tables from results/. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, writeFileAtomic } from '@chess/core';
import { FRONTIER_BEGIN, renderFrontier, withFrontier } from './frontier.ts';
import { HEADLINE_BEGIN, renderHeadline, withHeadline } from './headline.ts';
import { renderMeasured, withMeasured } from './measured.ts';

const readmePath = join(repoRoot(), 'README.md');
const results = join(repoRoot(), 'benchmarks', 'results');
const measured = withMeasured(readFileSync(readmePath, 'utf8'), renderMeasured(results));
const withTables = measured.includes(FRONTIER_BEGIN) ? withFrontier(measured, renderFrontier(results)) : measured;
const next = withTables.includes(HEADLINE_BEGIN) ? withHeadline(withTables, renderHeadline(results)) : withTables;
await writeFileAtomic(readmePath, next);
process.stderr.write(`[readme-measured] wrote the headline, Measured and accuracy-per-byte tables of ${readmePath}\n`);
