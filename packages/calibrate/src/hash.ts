import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';

const memo = new Map<string, { key: string; digest: string }>();

/** sha256 (hex) of a file, memoized per (path, size, mtime) within the process. */
export async function sha256OfFile(path: string): Promise<string> {
  const abs = resolve(path);
  const info = await stat(abs);
  const key = `${info.size}:${info.mtimeMs}`;
  const hit = memo.get(abs);
  if (hit && hit.key === key) return hit.digest;
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(abs)) hash.update(chunk as Buffer);
  const digest = hash.digest('hex');
  memo.set(abs, { key, digest });
  return digest;
}

export function sha256OfBytes(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}
