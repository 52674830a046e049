import { existsSync, mkdtempSync } from 'node:fs';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { copyDependencies, patchedDependenciesIntact } from './patched-install.ts';

/** A pnpm-style store: `.pnpm/<entry>/node_modules/<name>` with relative links to siblings. */
async function pnpmPackage(store: string, entry: string, name: string, source: string, deps: Record<string, string>): Promise<void> {
  const modules = join(store, entry, 'node_modules');
  await mkdir(join(modules, name), { recursive: true });
  await writeFile(join(modules, name, 'package.json'), JSON.stringify({ name, main: 'index.js' }));
  await writeFile(join(modules, name, 'index.js'), source);
  for (const [dep, depEntry] of Object.entries(deps)) {
    const link = join(modules, dep);
    await mkdir(join(link, '..'), { recursive: true });
    const up = dep.includes('/') ? '../../..' : '../..';
    await symlink(`${up}/${depEntry}/node_modules/${dep}`, link, 'dir');
  }
}

describe('patched install dependencies', () => {
  it('are copied with their own dependencies, so the install keeps working when the checkout it came from is deleted', async () => {
    const work = mkdtempSync(join(tmpdir(), 'chess-patched-deps-'));
    try {
      const store = join(work, 'checkout', 'node_modules', '.pnpm');
      // two versions of "shared": the closure must keep each package's own
      await pnpmPackage(store, 'shared@1.0.0', 'shared', 'module.exports = 1;', {});
      await pnpmPackage(store, 'shared@2.0.0', 'shared', 'module.exports = 2;', {});
      await pnpmPackage(store, 'alpha@1.0.0', 'alpha', "module.exports = 'alpha' + require('shared');", { shared: 'shared@1.0.0' });
      await pnpmPackage(store, '@scope+beta@1.0.0', '@scope/beta', "module.exports = 'beta' + require('shared');", { shared: 'shared@2.0.0' });
      await pnpmPackage(store, '@node-llama-cpp+linux-x64@1.0.0', '@node-llama-cpp/linux-x64', 'module.exports = "prebuilt";', {});
      await pnpmPackage(store, 'cmake-js@1.0.0', 'cmake-js', 'module.exports = 0;', {});
      await pnpmPackage(store, 'node-llama-cpp@1.0.0', 'node-llama-cpp', '', {
        alpha: 'alpha@1.0.0',
        '@scope/beta': '@scope+beta@1.0.0',
        '@node-llama-cpp/linux-x64': '@node-llama-cpp+linux-x64@1.0.0',
        'cmake-js': 'cmake-js@1.0.0',
      });
      const root = join(work, 'cache', 'patched');
      await mkdir(join(root, 'node_modules', 'node-llama-cpp'), { recursive: true });
      expect(patchedDependenciesIntact(root)).toBe(false);

      await copyDependencies(root, join(store, 'node-llama-cpp@1.0.0', 'node_modules', 'node-llama-cpp'), () => undefined);
      await rm(join(work, 'checkout'), { recursive: true });

      expect(patchedDependenciesIntact(root)).toBe(true);
      const require = createRequire(join(root, 'node_modules', 'node-llama-cpp', 'index.js'));
      expect(require('alpha')).toBe('alpha1');
      expect(require('@scope/beta')).toBe('beta2');
      // the prebuilt binaries stay out: the patched install can only load its own build
      // (not asserted through require: pnpm's NODE_PATH reaches the workspace's hoisted packages)
      expect(existsSync(join(root, 'node_modules', '@node-llama-cpp'))).toBe(false);
      expect(existsSync(join(root, 'node_modules', '.pnpm', '@node-llama-cpp+linux-x64@1.0.0'))).toBe(false);
      expect(existsSync(join(root, 'node_modules', '.bin', 'cmake-js'))).toBe(false); // no bin/cmake-js file in the fake package
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it('are reported broken when a link dangles or leaves the install', async () => {
    const work = mkdtempSync(join(tmpdir(), 'chess-patched-deps-'));
    try {
      const root = join(work, 'patched');
      await mkdir(join(root, 'node_modules'), { recursive: true });
      await mkdir(join(work, 'elsewhere', 'dep'), { recursive: true });
      await symlink(join(work, 'elsewhere', 'dep'), join(root, 'node_modules', 'dep'), 'dir');
      expect(patchedDependenciesIntact(root)).toBe(false); // resolves, but outside the install
      await rm(join(work, 'elsewhere'), { recursive: true });
      expect(patchedDependenciesIntact(root)).toBe(false); // dangles
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
