// A separate process creating one cache entry (cache-lock.test.ts runs several at once).
// argv: <entry dir> <build log> <build ms>. Prints the entry path on stdout.
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ensureCacheDir } from '../cache-lock.ts';

const [dir, buildLog, ms] = process.argv.slice(2) as [string, string, string];
const out = await ensureCacheDir(dir, {
  what: 'a test entry',
  pollMs: 50,
  complete: (d) => existsSync(join(d, 'done')),
  build: async (tmp) => {
    await appendFile(buildLog, `${process.pid}\n`);
    await mkdir(tmp);
    await new Promise((r) => setTimeout(r, Number(ms)));
    await writeFile(join(tmp, 'done'), String(process.pid));
  },
});
process.stdout.write(`${out}\n`);
