import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ChessError, UsageError } from '@chess/core';
import type { Llama } from 'node-llama-cpp';

/** What a run used to execute the model: printed on every run and stored in every result file. */
export interface RuntimeDescription {
  /** Selector name (`stock`, later `sparse`). */
  name: string;
  /** node-llama-cpp's build type: `prebuilt` (stock npm binary) or `localBuild`. */
  buildType: string;
  /** llama.cpp release the binary was built from. */
  llamaCppRelease: string;
  /** Where the binary comes from (npm package and directory, or build directory). */
  binary: string;
  /** Instruction sets the binary reports (llama_print_system_info). */
  systemInfo: string;
}

/**
 * The seam between the benchmark app and the binaries that execute models.
 * `stock` is node-llama-cpp's prebuilt CPU binary (the dense baseline). The
 * patched sparse runtime (packages/backend-llamacpp) registers another
 * selector, loaded through its own node-llama-cpp instance.
 */
export interface RuntimeSelector {
  readonly name: string;
  readonly description: string;
  load(options?: { maxThreads?: number }): Promise<{ llama: Llama; runtime: RuntimeDescription }>;
}

const require = createRequire(import.meta.url);

/** Directory and version of the installed prebuilt binary package for this platform, if any. */
export function prebuiltBinaryPackage(): { name: string; version: string; dir: string } | undefined {
  const name = `@node-llama-cpp/${process.platform}-${process.arch}`;
  try {
    // Resolve from node-llama-cpp's own location (the prebuilt package is its optional dependency).
    const nlcEntry = require.resolve('node-llama-cpp');
    const nlcRequire = createRequire(nlcEntry);
    // Its `exports` hide package.json: walk up from the entry point.
    let dir = dirname(nlcRequire.resolve(name));
    while (!existsSync(join(dir, 'package.json'))) {
      const parent = dirname(dir);
      if (parent === dir) return undefined;
      dir = parent;
    }
    const version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    return { name, version, dir };
  } catch {
    return undefined;
  }
}

/**
 * The stock dense baseline: `getLlama({ gpu: false, build: 'never' })`, i.e.
 * the prebuilt `@node-llama-cpp/<platform>` binary. node-llama-cpp prefers a
 * local build when one exists in its package directory (another helper may
 * build one there), so the result is checked and, when needed, loaded again
 * with a cmake option no local build carries, which leaves only the prebuilt
 * binary; a run never silently measures a patched binary as "stock".
 */
export const stockRuntime: RuntimeSelector = {
  name: 'stock',
  description: "node-llama-cpp's prebuilt CPU binary (stock llama.cpp)",
  async load(options = {}) {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    const common = {
      gpu: false as const,
      build: 'never' as const,
      logLevel: LlamaLogLevel.error,
      progressLogs: false,
      ...(options.maxThreads ? { maxThreads: options.maxThreads } : {}),
    };
    let llama = await getLlama(common);
    if (llama.buildType !== 'prebuilt') {
      await llama.dispose();
      llama = await getLlama({ ...common, cmakeOptions: { CHESS_SELECT_PREBUILT: 'ON' } });
    }
    if (llama.buildType !== 'prebuilt') {
      const buildType = llama.buildType;
      await llama.dispose();
      throw new ChessError(
        'STOCK_RUNTIME_UNAVAILABLE',
        `node-llama-cpp loaded a '${buildType}' binary where the stock prebuilt one was required; ` +
          'reinstall dependencies (pnpm install) so that the prebuilt package is present',
        { buildType },
      );
    }
    const pkg = prebuiltBinaryPackage();
    return {
      llama,
      runtime: {
        name: 'stock',
        buildType: llama.buildType,
        llamaCppRelease: llama.llamaCppRelease.release,
        binary: pkg ? `${pkg.name}@${pkg.version} (${pkg.dir})` : 'prebuilt (package not resolvable)',
        systemInfo: llama.systemInfo.trim(),
      },
    };
  },
};

const selectors = new Map<string, RuntimeSelector>([[stockRuntime.name, stockRuntime]]);

/** Add a runtime (the sparse backend calls this); names are unique. */
export function registerRuntime(selector: RuntimeSelector): void {
  if (selectors.has(selector.name)) {
    throw new ChessError('RUNTIME_ALREADY_REGISTERED', `a runtime named '${selector.name}' is already registered`, { name: selector.name });
  }
  selectors.set(selector.name, selector);
}

export function runtimeNames(): string[] {
  return [...selectors.keys()];
}

export function selectRuntime(name: string): RuntimeSelector {
  const selector = selectors.get(name);
  if (!selector) {
    throw new UsageError('BENCH_UNKNOWN_RUNTIME', `unknown runtime '${name}'; available: ${runtimeNames().join(', ')}`, {
      name,
      available: runtimeNames(),
    });
  }
  return selector;
}

export function describeRuntime(runtime: RuntimeDescription): string {
  return `runtime ${runtime.name}: ${runtime.buildType} binary ${runtime.binary}, llama.cpp ${runtime.llamaCppRelease}`;
}

/** Throw a clear error when a model file does not exist (before loading any binary). */
export function assertModelFile(path: string, option = '--model'): void {
  if (!existsSync(path)) {
    throw new UsageError('BENCH_MODEL_NOT_FOUND', `${option} ${path}: no such file`, { path });
  }
}
