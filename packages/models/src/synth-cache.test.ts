import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchDefaultModel } from '@chess/assets';
import { parseShape } from './shapes.ts';
import { ensureSynthModel, synthCacheName, synthUpToDate } from './synth-cache.ts';
import { parseSynthTarget } from './synth-target.ts';

const TINY = parseShape('{"base": "smollm2", "nLayer": 1, "name": "tiny"}');
const Q4_0 = parseSynthTarget('q4_0');
let work: string;
let tokenizer: string;
let savedCacheDir: string | undefined;

beforeAll(async () => {
  tokenizer = await fetchDefaultModel();
  work = await mkdtemp(join(tmpdir(), 'chess-synth-cache-'));
  // a cache of our own: the test must neither find nor leave models in the user's
  savedCacheDir = process.env.CHESS_CACHE_DIR;
  process.env.CHESS_CACHE_DIR = join(work, 'cache');
}, 300_000);

afterAll(async () => {
  if (savedCacheDir === undefined) delete process.env.CHESS_CACHE_DIR;
  else process.env.CHESS_CACHE_DIR = savedCacheDir;
  await rm(work, { recursive: true, force: true });
});

describe('synthetic model cache', () => {
  it('names an entry by every input that changes the bytes', () => {
    const base = synthCacheName(TINY, Q4_0, 0);
    expect(synthCacheName({ ...TINY, name: 'renamed' }, Q4_0, 0).split('-').slice(1).join('-')).toBe(base.split('-').slice(1).join('-'));
    expect(synthCacheName(TINY, Q4_0, 1)).not.toBe(base);
    expect(synthCacheName(TINY, parseSynthTarget('q4_1'), 0)).not.toBe(base);
    expect(synthCacheName({ ...TINY, nFF: 1024 }, Q4_0, 0)).not.toBe(base);
    expect(synthCacheName({ ...TINY, tiedEmbeddings: false }, Q4_0, 0)).not.toBe(base);
    expect(synthCacheName(TINY, parseSynthTarget('q4_k_m'), 0)).toMatch(/\.q4_k_m\.seed0\.synth\d+\.llama-[0-9a-f]{7}\.gguf$/);
  });

  it('makes a model once; the second call finds it without writing', async () => {
    const first = await ensureSynthModel({ shape: TINY, target: Q4_0, seed: 3, tokenizerFrom: tokenizer });
    expect(first.cached).toBe(false);
    expect(first.path.startsWith(join(work, 'cache'))).toBe(true);
    expect(basename(first.path)).toBe(synthCacheName(TINY, Q4_0, 3));
    const written = (await stat(first.path)).mtimeMs;
    const second = await ensureSynthModel({ shape: TINY, target: Q4_0, seed: 3, tokenizerFrom: tokenizer });
    expect(second).toEqual({ path: first.path, cached: true });
    expect((await stat(first.path)).mtimeMs).toBe(written);
  }, 300_000);

  it('recognises a file holding the same model, and nothing else', async () => {
    const { path } = await ensureSynthModel({ shape: TINY, target: Q4_0, seed: 3, tokenizerFrom: tokenizer });
    expect(await synthUpToDate(path, TINY, Q4_0, 3)).toBe(true);
    expect(await synthUpToDate(path, TINY, Q4_0, 4)).toBe(false);
    expect(await synthUpToDate(path, TINY, parseSynthTarget('q4_1'), 3)).toBe(false);
    expect(await synthUpToDate(path, { ...TINY, nLayer: 2 }, Q4_0, 3)).toBe(false);
    expect(await synthUpToDate(tokenizer, TINY, Q4_0, 3)).toBe(false); // a real model has no chess.synthetic.* keys
    expect(await synthUpToDate(join(work, 'missing.gguf'), TINY, Q4_0, 3)).toBe(false);
  }, 300_000);
});
