import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Llama, LlamaOptions } from 'node-llama-cpp';
import { ChessError } from '@chess/core';
import { backendStatus, buildBackend, type BackendBuildOptions } from './build.ts';
import { addonCmakeOptions, packageDirOf } from './patched-install.ts';

type NodeLlamaCppModule = typeof import('node-llama-cpp');

export type LlamaFlavour = 'stock' | 'patched';

/** Which native files a loaded Llama really uses (read from the process's memory map). */
export interface LlamaBinaryInfo {
  flavour: LlamaFlavour;
  /** node-llama-cpp's own classification of the binary. */
  buildType: 'localBuild' | 'prebuilt';
  /** Path of the llama-addon.node mapped into this process. */
  addon: string;
  /** Every libllama / libggml shared object mapped into this process. */
  libraries: string[];
}

/**
 * The llama.cpp shared libraries of the stock and patched addons have the same
 * sonames, so a process that loaded one cannot load the other (the dynamic
 * loader would silently reuse the first one's libraries). We therefore allow
 * exactly one flavour per process; compare flavours across processes.
 */
let loadedFlavour: LlamaFlavour | undefined;

function claimFlavour(flavour: LlamaFlavour): void {
  if (loadedFlavour !== undefined && loadedFlavour !== flavour) {
    throw new ChessError(
      'LLAMA_FLAVOUR_CONFLICT',
      `this process already loaded the ${loadedFlavour} llama.cpp binary; the ${flavour} one cannot be loaded beside it ` +
        '(both use the same shared-library names). Run the other flavour in a separate process.',
      { loaded: loadedFlavour, requested: flavour },
    );
  }
  loadedFlavour = flavour;
}

/** Paths of the llama.cpp native files mapped into this process (Linux: /proc/self/maps). */
export function mappedLlamaFiles(): string[] {
  if (!existsSync('/proc/self/maps')) return [];
  const files = new Set<string>();
  for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const path = line.slice(line.indexOf('/'));
    if (line.includes('/') && /(llama-addon\.node|libllama[^/]*\.so|libggml[^/]*\.so)$/.test(path)) files.add(path);
  }
  return [...files].sort();
}

function describe(flavour: LlamaFlavour, llama: Llama): LlamaBinaryInfo {
  const mapped = mappedLlamaFiles();
  const addon = mapped.find((file) => file.endsWith('llama-addon.node')) ?? '(not mapped)';
  return { flavour, buildType: llama.buildType, addon, libraries: mapped.filter((file) => file !== addon) };
}

const llamaInfo = new WeakMap<Llama, LlamaBinaryInfo>();

/** Which binary a Llama returned by loadStockLlama / loadPatchedLlama uses. */
export function llamaBinaryInfo(llama: Llama): LlamaBinaryInfo {
  const info = llamaInfo.get(llama);
  if (!info) throw new ChessError('LLAMA_UNKNOWN_INSTANCE', 'this Llama was not created by loadStockLlama or loadPatchedLlama', {});
  return info;
}

/** One line for logs and reports: flavour, build type and the addon path. */
export function formatLlamaBinary(info: LlamaBinaryInfo): string {
  return `${info.flavour} llama.cpp (${info.buildType}): ${info.addon}`;
}

export type LoadOptions = Pick<LlamaOptions, 'logLevel' | 'logger' | 'maxThreads'>;

/**
 * Stock llama.cpp: node-llama-cpp's prebuilt binary (`@node-llama-cpp/linux-x64`)
 * from the workspace install. Never builds; refuses anything but the prebuilt.
 */
export async function loadStockLlama(options: LoadOptions = {}): Promise<Llama> {
  claimFlavour('stock');
  const { getLlama } = await import('node-llama-cpp');
  const llama = await getLlama({ ...options, gpu: false, build: 'never', usePrebuiltBinaries: true, progressLogs: false });
  const info = describe('stock', llama);
  if (info.buildType !== 'prebuilt' || !info.addon.includes('@node-llama-cpp/linux-x64')) {
    throw new ChessError(
      'STOCK_LLAMA_NOT_PREBUILT',
      `the stock baseline must be the prebuilt @node-llama-cpp/linux-x64 binary, but node-llama-cpp loaded ${info.addon} (${info.buildType}). ` +
        "A local build in the workspace's node-llama-cpp (llama/localBuilds) shadows the prebuilt: remove it with 'npx --no node-llama-cpp source clear'.",
      { ...info },
    );
  }
  llamaInfo.set(llama, info);
  return llama;
}

/**
 * Patched llama.cpp: the node-llama-cpp addon built against our patched tree,
 * from its separate install under the cache (built on first use, cached).
 */
export async function loadPatchedLlama(options: LoadOptions & { build?: BackendBuildOptions } = {}): Promise<Llama> {
  claimFlavour('patched');
  const { build, ...loadOptions } = options;
  let status = backendStatus();
  if (!status.built) {
    await buildBackend(build ?? {});
    status = backendStatus();
  }
  const module = await patchedNodeLlamaCppModule();
  // No prebuilt package is reachable from that install, so this loads the local build or fails.
  const llama = await module.getLlama({
    ...loadOptions,
    gpu: false,
    build: 'never',
    usePrebuiltBinaries: false,
    progressLogs: false,
    cmakeOptions: { ...addonCmakeOptions() },
  });
  const info = describe('patched', llama);
  if (info.buildType !== 'localBuild' || !info.addon.startsWith(status.nodeLlamaCppDir)) {
    throw new ChessError(
      'PATCHED_LLAMA_NOT_LOADED',
      `expected the patched addon under ${status.nodeLlamaCppDir}, but node-llama-cpp loaded ${info.addon} (${info.buildType})`,
      { ...info },
    );
  }
  llamaInfo.set(llama, info);
  return llama;
}

/**
 * The node-llama-cpp module of the patched install (the one loadPatchedLlama loads through):
 * its classes (LlamaChatSession, ...) must come from the same module as the Llama they use.
 */
export async function patchedNodeLlamaCppModule(): Promise<NodeLlamaCppModule> {
  const entry = join(packageDirOf(backendStatus().nodeLlamaCppDir), 'dist', 'index.js');
  return (await import(pathToFileURL(entry).href)) as NodeLlamaCppModule;
}

/** The workspace's node-llama-cpp module (the one loadStockLlama loads through). */
export async function stockNodeLlamaCppModule(): Promise<NodeLlamaCppModule> {
  return import('node-llama-cpp');
}
