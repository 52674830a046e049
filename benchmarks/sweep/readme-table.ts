/** `pnpm -C benchmarks sweep-table`: rewrite the README's SmolLM2 table from benchmarks/results/sweep/. */
import { join } from 'node:path';
import { repoRoot } from '@chess/core';
import { updateReadmeTable } from './table.ts';

const resultsDir = process.argv[2] ?? join(repoRoot(), 'benchmarks', 'results', 'sweep');
await updateReadmeTable({ resultsDir, readme: join(repoRoot(), 'README.md') });
process.stderr.write(`README.md table rewritten from ${resultsDir}\n`);
