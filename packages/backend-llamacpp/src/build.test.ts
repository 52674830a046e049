import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPatchSeries, backendHash, backendPath, fullPatchSeries, packageRoot, patchFiles, seriesHash } from './build.ts';
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

  it('keys the cache by the content of its inputs: sources change the build, patches the tree; build outputs change nothing', async () => {
    // a copy of the hashed sources: the hash depends on content, not on where the package lives
    const root = join(work, 'package');
    for (const dir of ['native', 'llama-src', 'patches']) {
      await cp(join(packageRoot(), dir), join(root, dir), { recursive: true, filter: (src) => !/\/build[^/]*$/.test(src) });
    }
    const series = seriesHash(root);
    const backend = backendHash(root);
    expect(series).toMatch(/^[0-9a-f]{16}$/);
    expect(backend).toMatch(/^[0-9a-f]{16}$/);
    expect([series, backend]).toEqual([seriesHash(), backendHash()]);
    expect(backendPath()).toContain(`patched-${seriesHash()}`);

    const edit = async (file: string, f: (text: string) => string): Promise<() => Promise<void>> => {
      const before = await readFile(file, 'utf8');
      await writeFile(file, f(before));
      return () => writeFile(file, before);
    };
    const anyFile = (dir: string, ext: RegExp): string => {
      const found = readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' }).filter((f) => ext.test(f)).sort()[0];
      if (!found) throw new Error(`no ${ext} file under ${dir}`);
      return join(root, dir, found);
    };
    // one letter changed (same size): content is hashed, not sizes or dates
    const oneLetter = (t: string): string => t.replace(/[a-z]/, (c) => (c === 'a' ? 'b' : 'a'));
    // a kernel source or one of our llama.cpp sources: a new build, the same patched tree
    for (const file of [anyFile('native', /\.c$/), anyFile('llama-src', /\.(cpp|h)$/)]) {
      const restore = await edit(file, oneLetter);
      expect(seriesHash(root), file).toBe(series);
      expect(backendHash(root), file).not.toBe(backend);
      await restore();
      expect(backendHash(root)).toBe(backend);
    }
    // a patch of the series: a new tree and a new build
    const restorePatch = await edit(anyFile('patches', /\.patch$/), oneLetter);
    expect(seriesHash(root)).not.toBe(series);
    expect(backendHash(root)).not.toBe(backend);
    await restorePatch();
    // build directories and objects inside native/ are not sources
    await mkdir(join(root, 'native', 'build-release'), { recursive: true });
    await writeFile(join(root, 'native', 'build-release', 'x.c'), 'int x;');
    await writeFile(join(root, 'native', 'kernels.o'), 'obj');
    expect([seriesHash(root), backendHash(root)]).toEqual([series, backend]);
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
