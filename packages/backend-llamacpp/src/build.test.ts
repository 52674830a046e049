import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPatchSeries, backendHash, backendPath, fullPatchSeries, patchFiles, seriesHash } from './build.ts';
import { requireTools } from './process.ts';
import { ensureLlamaSource } from '@chess/assets';

describe('backend build recipe (no compilation)', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'chess-build-test-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('keys the cache by stable hashes', () => {
    expect(seriesHash()).toMatch(/^[0-9a-f]{16}$/);
    expect(backendHash()).toBe(backendHash());
    expect(backendPath()).toContain(`patched-${seriesHash()}`);
  });

  it('our patch series applies to the pristine tree', async () => {
    const pristine = await ensureLlamaSource();
    const tree = join(work, 'tree');
    execFileSync('git', ['-c', 'advice.detachedHead=false', 'clone', '-q', pristine, tree]);
    expect(patchFiles().length).toBeGreaterThan(0);
    await applyPatchSeries(tree, fullPatchSeries());
    const status = execFileSync('git', ['-C', tree, 'status', '--short'], { encoding: 'utf8' });
    expect(status).toContain('src/llama-graph.cpp');
  }, 120_000);

  it('names the patch that does not apply', async () => {
    const repo = join(work, 'repo');
    execFileSync('git', ['init', '-q', repo]);
    await writeFile(join(repo, 'a.txt'), 'one\n');
    const bad = join(work, '9999-bad.patch');
    await writeFile(bad, 'diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-two\n+three\n');
    await expect(applyPatchSeries(repo, [bad])).rejects.toMatchObject({ code: 'PATCH_FAILED', details: { patch: bad } });
  });

  it('reports missing build tools by name', () => {
    expect(() => requireTools([{ names: ['chess-no-such-compiler'], purpose: 'test' }])).toThrow(
      expect.objectContaining({ code: 'BACKEND_TOOL_MISSING', details: { missing: ['chess-no-such-compiler (test)'] } }),
    );
  });
});
