import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { ChessError } from './errors.ts';

/**
 * Shared cache entries (the Python reference environment, downloads, native
 * builds) are created by whichever process needs them first, and several
 * processes (test packages run in parallel, a CLI next to a test run) may need
 * them at once. One process builds; the others wait for it, with progress on
 * stderr and a bounded wait that ends in CACHE_LOCK_TIMEOUT, never a hang.
 *
 * The lock is a directory `<entry>.lock` (mkdir is atomic) holding the
 * owner's pid, host and process start time; a lock whose owner is gone (killed
 * mid-build) is taken over.
 */
export interface CacheLockOptions {
  /** What the entry is, for messages ("the Python reference environment"). */
  what: string;
  /** Longest wait for another process's lock (default 30 minutes). */
  waitMs?: number;
  /** Progress lines while waiting (default: stderr). */
  log?: (line: string) => void;
  /** Poll interval while waiting (default 1 s). */
  pollMs?: number;
}

const DEFAULT_WAIT_MS = 30 * 60_000;
const REPORT_EVERY_MS = 30_000;
/**
 * A lock directory without an owner file older than this was left by a crash
 * between mkdir and write (a moment); generous, so that a lock written by some
 * other tool is waited for rather than broken.
 */
const OWNERLESS_GRACE_MS = 10 * 60_000;

interface LockOwner {
  pid: number;
  host: string;
  /** Process start time from /proc (clock ticks since boot): tells a reused pid from the owner. */
  start?: string;
  what: string;
  since: string;
}

export function lockPathOf(entry: string): string {
  return `${entry}.lock`;
}

/** Run `fn` holding the lock of cache entry `entry` (a file or directory path). */
export async function withCacheLock<T>(entry: string, options: CacheLockOptions, fn: () => Promise<T>): Promise<T> {
  const lockDir = lockPathOf(entry);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const waitMs = options.waitMs ?? DEFAULT_WAIT_MS;
  const pollMs = options.pollMs ?? 1000;
  await mkdir(dirname(lockDir), { recursive: true });
  const started = Date.now();
  let lastReport = -Infinity;
  for (;;) {
    try {
      await mkdir(lockDir);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = readOwner(lockDir);
    if (isStale(lockDir, owner)) {
      await takeOver(lockDir, owner, log);
      continue;
    }
    const waited = Date.now() - started;
    const holder = owner ? `pid ${owner.pid} on ${owner.host} since ${owner.since}` : 'a process that has not written its owner file yet';
    if (waited >= waitMs) {
      throw new ChessError(
        'CACHE_LOCK_TIMEOUT',
        `gave up after ${Math.round(waited / 1000)} s waiting for ${options.what} (${entry}): ${lockDir} is held by ${holder}. ` +
          `If that process is no longer building it, remove ${lockDir} and retry.`,
        { entry, lockDir, owner, waitedMs: waited },
      );
    }
    if (waited - lastReport >= REPORT_EVERY_MS) {
      lastReport = waited;
      log(`waiting for ${options.what}: another process (${holder}) is creating ${entry} (${Math.round(waited / 1000)} s so far, giving up after ${Math.round(waitMs / 1000)} s)`);
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, Math.min(pollMs, Math.max(1, waitMs - waited))));
  }
  const owner: LockOwner = { pid: process.pid, host: hostname(), start: processStart(process.pid), what: options.what, since: new Date().toISOString() };
  await writeFile(join(lockDir, 'owner.json'), JSON.stringify(owner));
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

export interface CacheDirOptions extends CacheLockOptions {
  /** True when `dir` holds a complete entry (checked before and after taking the lock). */
  complete: (dir: string) => boolean;
  /**
   * Create the entry at `tmp` (a fresh sibling path that does not exist yet). On
   * success it is renamed to `dir` in one step; on failure it is removed.
   */
  build: (tmp: string) => Promise<void>;
}

/**
 * A cache directory created atomically: built in a temporary sibling under
 * the entry's lock, then renamed into place. Concurrent callers wait for the
 * first; a complete entry costs one check. Returns `dir`.
 */
export async function ensureCacheDir(dir: string, options: CacheDirOptions): Promise<string> {
  if (options.complete(dir)) return dir;
  return withCacheLock(dir, options, async () => {
    if (options.complete(dir)) return dir; // built by the process we waited for
    const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await options.build(tmp);
      await rm(dir, { recursive: true, force: true }); // an incomplete leftover
      await rename(tmp, dir);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    return dir;
  });
}

function readOwner(lockDir: string): LockOwner | undefined {
  try {
    return JSON.parse(readFileSync(join(lockDir, 'owner.json'), 'utf8')) as LockOwner;
  } catch {
    // the backend build's earlier lock format: a bare pid (a running build of an older checkout)
    try {
      const pid = Number.parseInt(readFileSync(join(lockDir, 'pid'), 'utf8'), 10);
      if (Number.isFinite(pid)) return { pid, host: hostname(), what: 'an earlier version of this lock', since: statSync(lockDir).mtime.toISOString() };
    } catch {
      // no owner file yet
    }
    return undefined;
  }
}

/** Start time of a process (field 22 of /proc/<pid>/stat), undefined where /proc is absent. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isStale(lockDir: string, owner: LockOwner | undefined): boolean {
  if (!owner) {
    try {
      return Date.now() - statSync(lockDir).mtimeMs > OWNERLESS_GRACE_MS;
    } catch {
      return false; // released meanwhile: the next mkdir decides
    }
  }
  if (owner.host !== hostname()) return false; // cannot see that host's processes: wait
  if (!processAlive(owner.pid)) return true;
  return owner.start !== undefined && processStart(owner.pid) !== undefined && processStart(owner.pid) !== owner.start;
}

/**
 * Remove a stale lock. Renamed aside first (atomic): if two waiters take over
 * at once, only one rename finds it, and a lock re-created meanwhile by a live
 * process is put back rather than removed.
 */
async function takeOver(lockDir: string, seen: LockOwner | undefined, log: (line: string) => void): Promise<void> {
  const aside = `${lockDir}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(lockDir, aside);
  } catch {
    return; // someone else took it over or it was released
  }
  if (!isStale(aside, readOwner(aside))) {
    // we moved a fresh lock (another waiter replaced the stale one first): put it back
    await rename(aside, lockDir).catch(() => log(`warning: could not restore ${lockDir} after a concurrent takeover`));
    if (existsSync(aside)) await rm(aside, { recursive: true, force: true });
    return;
  }
  log(`taking over ${lockDir}: its owner${seen ? ` (pid ${seen.pid} on ${seen.host}, since ${seen.since})` : ''} is gone`);
  await rm(aside, { recursive: true, force: true });
}
