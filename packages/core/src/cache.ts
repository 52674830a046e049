import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Root of everything the toolchain downloads or builds (models, data, Python
 * reference environment, llama.cpp builds). `CHESS_CACHE_DIR` overrides it;
 * otherwise the XDG cache directory is used.
 */
export function cacheRoot(): string {
  const explicit = process.env.CHESS_CACHE_DIR;
  if (explicit && explicit.length > 0) return resolve(explicit);
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.cache'), 'chess-toolchain');
}

export function cachePath(...parts: string[]): string {
  return join(cacheRoot(), ...parts);
}
