import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ChessError } from '@chess/core';

export type Log = (line: string) => void;

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with every complete output line (stdout and stderr interleaved). */
  onLine?: (line: string) => void;
}

export interface RunResult {
  code: number;
  /** The last 200 output lines, for error messages. */
  tail: string[];
}

/** Run a command, stream its output lines, never throw on a non-zero exit (the caller decides). */
export function runCommand(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const pending = { out: '', err: '' };
    const feed = (key: 'out' | 'err', chunk: Buffer): void => {
      const text = pending[key] + chunk.toString('utf8');
      const lines = text.split(/\r?\n/);
      pending[key] = lines.pop() ?? '';
      for (const line of lines) emit(line);
    };
    const emit = (line: string): void => {
      tail.push(line);
      if (tail.length > 200) tail.shift();
      options.onLine?.(line);
    };
    child.stdout.on('data', (chunk: Buffer) => feed('out', chunk));
    child.stderr.on('data', (chunk: Buffer) => feed('err', chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (pending.out) emit(pending.out);
      if (pending.err) emit(pending.err);
      resolvePromise({ code: code ?? 1, tail });
    });
  });
}

/** Absolute path of an executable found on PATH, or undefined. */
export function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** Throw BACKEND_TOOL_MISSING naming every missing build tool at once. */
export function requireTools(tools: ReadonlyArray<{ names: readonly string[]; purpose: string }>): Record<string, string> {
  const found: Record<string, string> = {};
  const missing: string[] = [];
  for (const tool of tools) {
    const hit = tool.names.map((name) => findOnPath(name)).find((path) => path !== undefined);
    if (hit) found[tool.names[0]!] = hit;
    else missing.push(`${tool.names.join(' or ')} (${tool.purpose})`);
  }
  if (missing.length > 0) {
    throw new ChessError(
      'BACKEND_TOOL_MISSING',
      `cannot build the patched llama.cpp backend: not found on PATH: ${missing.join(', ')}. ` +
        'Install them (Debian/Ubuntu: apt-get install cmake g++ git) and run the build again.',
      { missing },
    );
  }
  return found;
}

/** Progress reporter for ninja/make output: one line per 10% and every error line. */
export function buildProgress(label: string, log: Log): (line: string) => void {
  let lastDecile = -1;
  return (line: string) => {
    const ninja = /^\[(\d+)\/(\d+)\]/.exec(line);
    const make = /^\[\s*(\d+)%\]/.exec(line);
    let percent: number | undefined;
    if (ninja) percent = (100 * Number(ninja[1])) / Number(ninja[2]);
    else if (make) percent = Number(make[1]);
    if (percent !== undefined) {
      const decile = Math.floor(percent / 10);
      if (decile > lastDecile) {
        lastDecile = decile;
        log(`${label}: ${Math.round(percent)}%`);
      }
    } else if (/\berror\b|FAILED/i.test(line)) {
      log(`${label}: ${line}`);
    }
  };
}
