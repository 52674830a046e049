import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ChessError, UsageError, escapeControl } from '@chess/core';
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
  load(options?: { maxThreads?: number }): Promise<{ llama: Llama; runtime: RuntimeDescription; log: RuntimeLog }>;
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

async function describeLoaded(name: string, llama: Llama): Promise<RuntimeDescription> {
  const { llamaBinaryInfo } = await import('@chess/backend-llamacpp');
  const info = llamaBinaryInfo(llama);
  const pkg = info.flavour === 'stock' ? prebuiltBinaryPackage() : undefined;
  return {
    name,
    buildType: info.buildType,
    llamaCppRelease: llama.llamaCppRelease.release,
    binary: pkg ? `${pkg.name}@${pkg.version} ${info.addon}` : info.addon,
    systemInfo: llama.systemInfo.trim(),
  };
}

/**
 * llama.cpp's log lines at warning level and above: the reason of a failed load
 * is there (node-llama-cpp's error says only "Failed to load model"), so the
 * lines of a load are kept for its error message; after a load, error lines go
 * to stderr as node-llama-cpp's own logger printed them.
 */
export class RuntimeLog {
  readonly lines: string[] = [];
  /** Print error lines to stderr as they come (off while a model loads: they go into its error). */
  echo = true;

  add(level: string, message: string): void {
    const line = message.trimEnd();
    if (line === '') return;
    this.lines.push(line);
    if (this.lines.length > 40) this.lines.shift();
    if (this.echo && level === 'error') process.stderr.write(`${escapeControl(line)}\n`);
  }
}

async function quietLogLevel(log: RuntimeLog): Promise<{ logLevel: import('node-llama-cpp').LlamaLogLevel; logger: (level: import('node-llama-cpp').LlamaLogLevel, message: string) => void }> {
  const { LlamaLogLevel } = await import('node-llama-cpp');
  return { logLevel: LlamaLogLevel.warn, logger: (level, message) => log.add(level, message) };
}

/**
 * The stock dense baseline: node-llama-cpp's prebuilt CPU binary
 * (`@node-llama-cpp/linux-x64`), through the backend's `loadStockLlama`, which
 * refuses anything else (a local build shadowing the prebuilt is an error, not
 * a silent switch). The addon path actually mapped into the process is printed.
 */
export const stockRuntime: RuntimeSelector = {
  name: 'stock',
  description: "node-llama-cpp's prebuilt CPU binary (stock llama.cpp)",
  async load(options = {}) {
    const { loadStockLlama } = await import('@chess/backend-llamacpp');
    const log = new RuntimeLog();
    const llama = await loadStockLlama({ ...(await quietLogLevel(log)), ...(options.maxThreads ? { maxThreads: options.maxThreads } : {}) });
    return { llama, runtime: await describeLoaded('stock', llama), log };
  },
};

/**
 * The patched llama.cpp with the CHESS sparse kernels: node-llama-cpp's addon
 * built against our patch series, from its separate install (the backend builds
 * it on first use). One flavour per process: stock and patched binaries share
 * library names, so compare them across processes (chess bench does).
 */
export const patchedRuntime: RuntimeSelector = {
  name: 'patched',
  description: 'node-llama-cpp addon built from the patched llama.cpp tree (sparse kernels)',
  async load(options = {}) {
    const { loadPatchedLlama } = await import('@chess/backend-llamacpp');
    const log = new RuntimeLog();
    const llama = await loadPatchedLlama({ ...(await quietLogLevel(log)), ...(options.maxThreads ? { maxThreads: options.maxThreads } : {}) });
    return { llama, runtime: await describeLoaded('patched', llama), log };
  },
};

const selectors = new Map<string, RuntimeSelector>([
  [stockRuntime.name, stockRuntime],
  [patchedRuntime.name, patchedRuntime],
]);

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
    throw new UsageError('BENCH_UNKNOWN_RUNTIME', `unknown runtime '${name}'; available: ${[AUTO_RUNTIME, ...runtimeNames()].join(', ')}`, {
      name,
      available: runtimeNames(),
    });
  }
  return selector;
}

export function describeRuntime(runtime: RuntimeDescription): string {
  return `runtime ${runtime.name}: ${runtime.buildType} binary ${runtime.binary}, llama.cpp ${runtime.llamaCppRelease}`;
}

/** `auto`: what a model needs. A sparse GGUF (architecture `chess`) runs only on the patched build; dense ones default to stock. */
export const AUTO_RUNTIME = 'auto';

/**
 * The runtime that executes a model: `auto` (or nothing) picks the patched
 * build for a sparse GGUF (architecture `chess`) and the stock prebuilt build
 * for anything else; an explicit name is checked against the model (stock
 * llama.cpp refuses the `chess` architecture, docs/gguf-sparse.md §1).
 */
export function resolveRuntime(requested: string | undefined, model: { path: string; architecture: string | null }): string {
  const sparse = model.architecture === 'chess';
  if (requested === undefined || requested === AUTO_RUNTIME) return sparse ? patchedRuntime.name : stockRuntime.name;
  selectRuntime(requested);
  if (sparse && requested === stockRuntime.name) {
    throw new UsageError(
      'BENCH_RUNTIME_CANNOT_LOAD',
      `${model.path} is a sparse GGUF (architecture 'chess'): the stock llama.cpp build cannot load it; use --runtime patched (or auto, the default)`,
      { path: model.path, runtime: requested, architecture: model.architecture },
    );
  }
  return requested;
}

/** Throw a clear error when a model file does not exist (before loading any binary). */
export function assertModelFile(path: string, option = '--model'): void {
  if (!existsSync(path)) {
    throw new UsageError('BENCH_MODEL_NOT_FOUND', `${option} ${path}: no such file`, { path });
  }
}
