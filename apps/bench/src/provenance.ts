import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { repoRoot } from '@chess/core';

/** The machine a result was measured on (these VMs come up on different CPUs: every speed result names its CPU). */
export function machineInfo(): { cpu: string; cores: number; memoryBytes: number } {
  const cpu = cpus();
  return { cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, memoryBytes: totalmem() };
}

/**
 * The source revision a result was measured with: `git rev-parse HEAD` of this checkout, with
 * `-dirty` when tracked files differ from it; null outside a git checkout.
 */
export function gitRevision(root: string = repoRoot()): string | null {
  try {
    const head = execFileSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty.length > 0 ? `${head}-dirty` : head;
  } catch {
    return null;
  }
}
