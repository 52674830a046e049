import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withAtomicOutput, writeFileAtomic } from './atomic-write.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'chess-core-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('atomic output', () => {
  it('writes the whole file and leaves no temporary sibling', async () => {
    const path = join(work, 'a', 'out.json');
    await writeFileAtomic(path, '{"ok":true}');
    expect(await readFile(path, 'utf8')).toBe('{"ok":true}');
    expect(await readdir(join(work, 'a'))).toEqual(['out.json']);
  });

  it('keeps the previous content when the producer fails half way', async () => {
    const dir = join(work, 'b');
    const path = join(dir, 'out.bin');
    await writeFileAtomic(path, 'previous');
    await expect(
      withAtomicOutput(path, async (out) => {
        await out.write(new Uint8Array(10_000_000));
        throw new Error('interrupted');
      }),
    ).rejects.toThrow('interrupted');
    expect(await readFile(path, 'utf8')).toBe('previous');
    expect(await readdir(dir)).toEqual(['out.bin']);
  });

  it('streams chunks larger and smaller than its buffer in order', async () => {
    const path = join(work, 'c.bin');
    const chunks = [new Uint8Array([1, 2, 3]), new Uint8Array(9 << 20).fill(7), new Uint8Array([4])];
    const position = await withAtomicOutput(path, async (out) => {
      for (const chunk of chunks) await out.write(chunk);
      return out.position;
    });
    const data = await readFile(path);
    expect(position).toBe(3 + (9 << 20) + 1);
    expect(data.length).toBe(position);
    expect([...data.subarray(0, 4)]).toEqual([1, 2, 3, 7]);
    expect(data[data.length - 1]).toBe(4);
  });

  it('replaces an existing file that a reader still has open (POSIX rename)', async () => {
    const path = join(work, 'd.txt');
    await writeFile(path, 'old');
    await writeFileAtomic(path, 'new');
    expect(await readFile(path, 'utf8')).toBe('new');
  });
});
