/**
 * The contract's facts are spelled in one place: no source file outside this
 * package (and the header generated from it) writes a contract tensor name,
 * a `chess.*` key, a counter-site name, a list of the projections or the keep
 * rule itself; it imports them from @chess/contract (TypeScript) or includes
 * chess_contract.h (C/C++). Comments may name them (they are documentation).
 *
 * Allowed: docs and Markdown, tests (they check the facts from outside),
 * independent references (Python cross-checks must not import the code under
 * test), and the explicit, commented list below. A hit fails listing file:line.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { C_HEADER_PATH, REPO_ROOT } from './c-header.ts';
import { PROJECTIONS, SITES, SPARSE_GGUF } from './index.ts';

/** Source files scanned: TypeScript/JavaScript and C/C++ under these roots, tracked or new (git ls-files). */
const ROOTS = ['packages', 'apps', 'benchmarks', 'scripts', 'e2e'];
const SOURCE = /\.(ts|tsx|mts|cts|js|mjs|cjs|c|cc|cpp|h|hpp)$/;

/** Paths never scanned: this package, its generated header, tests and their data, independent references. */
const ALLOWED_PATHS: readonly RegExp[] = [
  /^packages\/contract\//,
  new RegExp(`^${C_HEADER_PATH.replace(/\./g, '\\.')}$`),
  /\.test\.(ts|mts|js)$/,
  /(^|\/)tests?\//, // native test programs (test_contract.c checks the loader against fixed names)
  /(^|\/)__(fixtures|reference|snapshots)__\//,
  /(^|\/)node_modules\//,
];

/**
 * Known offenders left on purpose, each with its reason. A line here is allowed
 * when its file matches and its text contains `contains`.
 */
const ALLOW_LIST: readonly { file: RegExp; contains?: string; reason: string }[] = [
  // TODO(issue 20 helper): CLI command validation is being reworked there; inspect.ts reads chess.base_architecture by hand.
  { file: /^apps\/cli\/src\/commands\//, reason: 'issue 20: CLI command validation in progress' },
  // TODO(issue 19 helper): the bench's eval/report/sparsity files are being rewritten there (model-info, sparsity byte model).
  { file: /^apps\/bench\/src\//, reason: 'issue 19: bench eval/report files in progress' },
  // Not the sparse contract: the dense Llama graph's own tensor names (llama.cpp's naming, which the importer and builder follow).
  { file: /^packages\/ir\/src\/llama\.ts$/, reason: 'dense Llama tensor names' },
  // Not the sparse contract: which norm feeds each projection (the Llama graph's structure) in the synthetic-threshold model.
  { file: /^packages\/backend-llamacpp\/src\/test-models\.ts$/, contains: "case '", reason: 'per-projection input distribution' },
];

/** Removes // and /* *\/ comments (keeping line breaks, so line numbers hold); strings are kept. */
export function stripComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && next === '*') {
      i += 2;
      while (i < text.length && !(text[i] === '*' && text[i + 1] === '/')) out += text[i++] === '\n' ? '\n' : '';
      i += 2;
    } else if (c === '"' || c === "'" || c === '`') {
      out += c;
      i++;
      while (i < text.length && text[i] !== c) {
        if (text[i] === '\\') out += text[i++] ?? '';
        if (c !== '`' && text[i] === '\n') break; // not a string (a C char like '"' is handled by the escape)
        out += text[i++] ?? '';
      }
      if (i < text.length && text[i] === c) out += text[i++];
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** The part of a tensor pattern after `blk.%d.` and `%s`: `_cb.weight`, `_t.weight`, `_in_tau`, `ffn_gate_tau`. */
const tensorSuffix = (pattern: string) => pattern.replace(/^blk\.%d\.(%s)?/, '');

interface Rule {
  readonly what: string;
  readonly re: RegExp;
}

/** What may not be spelled outside the allowed files, derived from the table itself. */
export function contractRules(): Rule[] {
  const t = SPARSE_GGUF.tensors;
  const suffixes = [t.columnBlocks, t.transposed, t.inputTau, t.gateTau].map((x) => tensorSuffix(x.name));
  return [
    { what: 'a contract tensor name', re: new RegExp(`(${suffixes.map(esc).join('|')})(?![A-Za-z0-9_])`) },
    { what: 'a chess.* metadata key', re: new RegExp(`['"\`](${Object.values(SPARSE_GGUF.keys).map(esc).join('|')})['"\`]`) },
    // site names as whole words: `attn_q_in` but not `attn_q_in_tau` (a tensor name, caught above)
    { what: 'a counter-site name', re: new RegExp(`['"\`](${SITES.map(esc).join('|')})['"\`]`) },
    { what: 'the keep rule (use keeps() / CHESS_CONTRACT_KEEPS)', re: /\b(Math\.abs|fabsf?)\((?:[^()]|\([^()]*\))*\)\s*>\s*\(?\s*(tau|t|n_tau|threshold)\b/ },
    { what: 'the keep rule as text', re: new RegExp(esc(SPARSE_GGUF.keepRule.text)) },
  ];
}

/** A list of the projections: at least 3 of them as separate string literals within 4 lines. */
function projectionLists(lines: readonly string[]): number[] {
  const hits: number[] = [];
  const quoted = new RegExp(`['"\`](${PROJECTIONS.map(esc).join('|')})['"\`]`, 'g');
  const names = lines.map((line) => new Set([...line.matchAll(quoted)].map((m) => m[1])));
  for (let i = 0; i < lines.length; i++) {
    const window = new Set(names.slice(i, i + 4).flatMap((s) => [...s]));
    if (names[i]!.size > 0 && window.size >= 3 && !hits.some((h) => i - h < 4)) hits.push(i);
  }
  return hits;
}

/** Allow-list entries that excused a hit in this run (an entry that excuses nothing is stale). */
const usedAllowances = new Set<number>();

export function scanFile(rel: string, text: string): string[] {
  const code = stripComments(text).split('\n');
  const raw = text.split('\n');
  const found: string[] = [];
  const allowed = (line: number) => {
    const k = ALLOW_LIST.findIndex((a) => a.file.test(rel) && (a.contains === undefined || raw[line]!.includes(a.contains)));
    if (k >= 0) usedAllowances.add(k);
    return k >= 0;
  };
  for (const rule of contractRules()) {
    code.forEach((line, i) => {
      if (rule.re.test(line) && !allowed(i)) found.push(`${rel}:${i + 1}: ${rule.what}: ${raw[i]!.trim().slice(0, 140)}`);
    });
  }
  for (const i of projectionLists(code)) {
    if (!allowed(i)) found.push(`${rel}:${i + 1}: a list of the projections: ${raw[i]!.trim().slice(0, 140)}`);
  }
  return found;
}

function sourceFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '--', ...ROOTS], { cwd: REPO_ROOT, encoding: 'utf8' });
  return out
    .split('\n')
    .filter((f) => SOURCE.test(f) && !ALLOWED_PATHS.some((re) => re.test(f)))
    .filter((f) => !/\.tmp\.ts$|\/_dbg\d*\.ts$/.test(f)); // scratch files other developers leave untracked
}

describe('the contract is spelled only in @chess/contract and chess_contract.h', () => {
  it('no source file outside them spells a tensor name, key, site, projection list or the keep rule', () => {
    usedAllowances.clear();
    const files = sourceFiles();
    expect(files.length).toBeGreaterThan(100); // the scan sees the repository
    const found = files.flatMap((f) => {
      try {
        return scanFile(f, readFileSync(join(REPO_ROOT, f), 'utf8'));
      } catch {
        return []; // listed but deleted in the working tree
      }
    });
    expect(found, `spell these through @chess/contract (TypeScript) or chess_contract.h (C/C++):\n${found.join('\n')}`).toEqual([]);
    const stale = ALLOW_LIST.filter((_, k) => !usedAllowances.has(k)).map((a) => `${a.file} (${a.reason})`);
    expect(stale, `allow-list entries that excuse nothing any more: remove them from ${import.meta.filename}`).toEqual([]);
  });

  it('catches each kind of spelling and ignores comments (the scanner itself)', () => {
    const bad = [
      "const n = `blk.${i}.ffn_down_cb.weight`;",
      "meta.get('chess.target_sparsity');",
      'if (site === "ffn_gate_act") {}',
      "const ps = ['attn_q', 'attn_k',",
      "  'attn_v'];",
      'y = Math.abs(v) > tau ? v : 0;',
      'const int k = fabsf(x[j]) > t;',
      'puts("|v| > tau");',
    ].join('\n');
    const hits = scanFile('packages/x/src/a.ts', bad).map((h) => h.split(': ')[1]);
    expect(hits.sort()).toEqual(
      [
        'a contract tensor name',
        'a chess.* metadata key',
        'a counter-site name',
        'a list of the projections',
        'the keep rule (use keeps() / CHESS_CONTRACT_KEEPS)',
        'the keep rule (use keeps() / CHESS_CONTRACT_KEEPS)',
        'the keep rule as text',
      ].sort(),
    );
    const fine = [
      '// blk.N.<proj>_cb.weight and chess.target_sparsity in a comment',
      '/* |v| > tau, and "ffn_gate_act" */',
      "const url = 'http://x/y'; // attn_q_in",
      "const t = contractNames.columnBlocks(0, 'ffn_down');",
      "const s = 'attn_q_in_tau_x';",
    ].join('\n');
    expect(scanFile('packages/x/src/b.ts', fine)).toEqual([]);
    expect(scanFile('apps/bench/src/c.ts', "meta.get('chess.method');")).toEqual([]); // allow-listed
  });
});
