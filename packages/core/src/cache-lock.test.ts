import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCacheDir, lockPathOf, withCacheLock } from './cache-lock.ts';

const run = promisify(execFile);
const CHILD = join(import.meta.dirname, '__fixtures__', 'lock-child.ts');

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-lock-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** One child process running ensureCacheDir (through tsx, as the tools run). */
function child(dir: string, buildLog: string, ms: number) {
  return run(process.execPath, ['--import', 'tsx', CHILD, dir, buildLog, String(ms)], { cwd: import.meta.dirname });
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => p.on('exit', r));
  return p.pid!;
}

describe('cache entries shared by processes', () => {
  it('three processes on an empty cache: one builds, the others wait and get the same entry', async () => {
    const dir = join(work, 'a', 'entry');
    const buildLog = join(work, 'a.log');
    const results = await Promise.all([child(dir, buildLog, 5000), child(dir, buildLog, 5000), child(dir, buildLog, 5000)]);
    for (const r of results) expect(r.stdout.trim()).toBe(dir);
    const builders = (await readFile(buildLog, 'utf8')).trim().split('\n');
    expect(builders).toHaveLength(1);
    expect(await readFile(join(dir, 'done'), 'utf8')).toBe(builders[0]);
    // the waiters said on stderr what they were waiting for
    expect(results.map((r) => r.stderr).join('')).toMatch(/waiting for a test entry: another process \(pid \d+/);
    // no lock, no temporary sibling left behind
    expect(await readdir(join(work, 'a'))).toEqual(['entry']);
  }, 120_000);

  it('a complete entry costs no lock and no build', async () => {
    const dir = join(work, 'b');
    await mkdir(dir);
    await writeFile(join(dir, 'done'), 'x');
    await mkdir(lockPathOf(dir)); // even a held lock does not matter then
    await writeFile(join(lockPathOf(dir), 'owner.json'), JSON.stringify({ pid: process.pid, host: hostname(), what: 't', since: 'now' }));
    const buildLog = join(work, 'b.log');
    expect((await child(dir, buildLog, 0)).stdout.trim()).toBe(dir);
    expect(existsSync(buildLog)).toBe(false);
  }, 60_000);

  it('takes over the lock of a process that died mid-build', async () => {
    const dir = join(work, 'c');
    await mkdir(lockPathOf(dir));
    await writeFile(join(lockPathOf(dir), 'owner.json'), JSON.stringify({ pid: await deadPid(), host: hostname(), what: 't', since: 'then' }));
    const buildLog = join(work, 'c.log');
    const r = await child(dir, buildLog, 0);
    expect(r.stdout.trim()).toBe(dir);
    expect(r.stderr).toMatch(/taking over .*c\.lock: its owner \(pid \d+/);
    expect((await readFile(buildLog, 'utf8')).trim().split('\n')).toHaveLength(1);
    expect(existsSync(lockPathOf(dir))).toBe(false);
  }, 60_000);

  it('a lock in the earlier backend-build format (a bare pid file) is honoured while its owner lives, taken over once it is gone', async () => {
    const dir = join(work, 'f');
    await mkdir(lockPathOf(dir));
    await writeFile(join(lockPathOf(dir), 'pid'), String(process.pid));
    await expect(withCacheLock(dir, { what: 'f', waitMs: 300, pollMs: 50, log: () => undefined }, async () => 'stolen')).rejects.toMatchObject({ code: 'CACHE_LOCK_TIMEOUT' });
    await writeFile(join(lockPathOf(dir), 'pid'), String(await deadPid()));
    expect(await withCacheLock(dir, { what: 'f', waitMs: 5000, pollMs: 50, log: () => undefined }, async () => 'taken')).toBe('taken');
  });

  it('a live holder that never finishes: a bounded wait, reported, ending in CACHE_LOCK_TIMEOUT', async () => {
    const dir = join(work, 'd');
    await mkdir(lockPathOf(dir));
    // this process is alive: the lock is not stale
    await writeFile(join(lockPathOf(dir), 'owner.json'), JSON.stringify({ pid: process.pid, host: hostname(), what: 't', since: 'earlier' }));
    const lines: string[] = [];
    const started = Date.now();
    await expect(withCacheLock(dir, { what: 'a stuck entry', waitMs: 1500, pollMs: 100, log: (l) => lines.push(l) }, async () => 'never')).rejects.toMatchObject({
      code: 'CACHE_LOCK_TIMEOUT',
      message: expect.stringMatching(/a stuck entry .*d\.lock is held by pid \d+ .*remove .*d\.lock/),
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(lines[0]).toMatch(/^waiting for a stuck entry/);
    await rm(lockPathOf(dir), { recursive: true });
  }, 60_000);

  it('a failed build leaves no entry, no temporary and no lock; the next call builds', async () => {
    const dir = join(work, 'e', 'entry');
    await expect(
      ensureCacheDir(dir, {
        what: 'e',
        complete: (d) => existsSync(join(d, 'done')),
        build: async (tmp) => {
          await mkdir(tmp);
          await writeFile(join(tmp, 'half'), '');
          throw new Error('compiler crashed');
        },
      }),
    ).rejects.toThrow('compiler crashed');
    expect(await readdir(join(work, 'e'))).toEqual([]);
    await ensureCacheDir(dir, {
      what: 'e',
      complete: (d) => existsSync(join(d, 'done')),
      build: async (tmp) => {
        await mkdir(tmp);
        await writeFile(join(tmp, 'done'), '');
      },
    });
    expect(await readdir(join(work, 'e'))).toEqual(['entry']);
  });
});
