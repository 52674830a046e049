/**
 * docs/gguf-sparse.md states the contract table, both ways: every key, tensor,
 * projection, method (with what it writes), statistic, column-block type (with
 * its bytes per row and group), counter site, format version and the keep rule
 * that the document lists is in SPARSE_GGUF, and every one in SPARSE_GGUF is
 * listed. The document is parsed by its tables and fixed phrases; a test that
 * cannot find a phrase fails naming it (so a reworded section is re-checked).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './c-header.ts';
import { METHODS, METHOD_LAYOUTS, NO_STATISTIC, PROJECTIONS, SITES, SPARSE_GGUF, STATISTICS, inputSite } from './index.ts';

const DOC_PATH = 'docs/gguf-sparse.md';
const doc = readFileSync(join(REPO_ROOT, DOC_PATH), 'utf8');
const lines = doc.split('\n');

/** The text of section `heading` (a line starting with it) up to the next heading of the same or a higher level. */
function section(heading: string): string {
  const start = lines.findIndex((l) => l.startsWith(heading));
  if (start < 0) throw new Error(`${DOC_PATH}: no section '${heading}'`);
  const level = /^#+/.exec(heading)![0].length;
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && /^#+/.exec(l)![0].length <= level);
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

/** Rows of the Markdown tables in `text` whose first cell matches `first`, as arrays of cells. */
function rows(text: string, first: RegExp): string[][] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim()))
    .filter((cells) => first.test(cells[0] ?? ''));
}

const ticks = (s: string) => [...s.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
/** The document writes names with `N` for the layer and `<proj>` for the projection. */
const docName = (pattern: string) => pattern.replace('%d', 'N').replace('%s', '<proj>');
const sorted = <T>(xs: Iterable<T>) => [...xs].sort();

function phrase(text: string, re: RegExp, what: string): RegExpExecArray {
  const m = re.exec(text);
  if (!m) throw new Error(`${DOC_PATH}: cannot find ${what} (${re}); update this test with the document`);
  return m;
}

describe(`${DOC_PATH} lists the contract table`, () => {
  it('§1-2: the chess.* keys, both ways', () => {
    const keys = [...rows(section('## 1.'), /^`chess\./), ...rows(section('## 2.'), /^`chess\./)].map((r) => ticks(r[0]!)[0]!);
    expect(sorted(new Set(keys))).toEqual(sorted(Object.values(SPARSE_GGUF.keys)));
    expect(rows(section('## 1.'), /^`general\.architecture`/)[0]![2]).toContain(`\`${SPARSE_GGUF.architecture}\``);
  });

  it('§2: chess.method values are the methods, chess.statistic values the statistics and none', () => {
    const s2 = section('## 2.');
    const method = rows(s2, /^`chess\.method`/)[0]!;
    expect(sorted(ticks(method[2]!).filter((t) => /^[a-z][a-z0-9+_-]*$/.test(t)))).toEqual(sorted(METHODS));
    const statistic = rows(s2, /^`chess\.statistic`/)[0]!;
    const names = ticks(statistic[2]!).filter((t) => /^[a-z-]+$/.test(t));
    expect(sorted(names)).toEqual(sorted([...STATISTICS, NO_STATISTIC]));
  });

  it('§2-3: the format versions (column blocks 2, otherwise the base 1)', () => {
    const version = rows(section('## 2.'), /^`chess\.format_version`/)[0]![2]!;
    const m = phrase(version, /^`(\d+)` when any `_cb` tensor is present.*else `(\d+)`/, 'the format_version rule');
    expect([Number(m[1]), Number(m[2])]).toEqual([SPARSE_GGUF.layouts['column-blocks'].formatVersion, SPARSE_GGUF.formatVersion.base]);
    expect(Number(phrase(doc, /^### 3\.1 .*`chess\.format_version` (\d+)/m, 'the §3.1 heading')[1])).toBe(SPARSE_GGUF.layouts['column-blocks'].formatVersion);
    expect(Number(phrase(doc, /^### 3\.2 .*\(format (\d+)/m, 'the §3.2 heading')[1])).toBe(SPARSE_GGUF.layouts.transposed.formatVersion);
  });

  it('§3: the tensors, both ways, and the projections in order', () => {
    const s3 = section('## 3.');
    const listed = rows(s3, /^`blk\.N\./).map((r) => ticks(r[0]!)[0]!);
    const t = SPARSE_GGUF.tensors;
    const contract = [t.gateTau, t.inputTau, t.columnBlocks, t.transposed].map((x) => docName(x.name));
    expect(sorted(listed)).toEqual(sorted(contract));
    const projections = phrase(s3, /`<proj>` is one of\s+((?:`[a-z_]+`,?\s*)+)/, "the '<proj> is one of' list")[1]!;
    expect(ticks(projections)).toEqual([...PROJECTIONS]);
  });

  it('§3: what each method writes (thresholds and input-sparse projections)', () => {
    const table = rows(section('## 3.'), new RegExp(`^\`(${METHODS.map((m) => m.replace(/[+]/g, '\\+')).join('|')})\``));
    const all = (cell: string, suffix: string) => (/all seven/.test(cell) ? PROJECTIONS.map((p) => `${p}${suffix}`) : ticks(cell));
    const documented = new Map<string, { thresholds: string[]; sparse: string[] }>();
    for (const [methods, thresholds, sparse] of table) {
      for (const m of ticks(methods!)) {
        documented.set(m, {
          thresholds: sorted(all(thresholds!, '_in_tau').map((x) => (x === '<proj>_in_tau' ? '' : x)).filter(Boolean)),
          sparse: sorted(all(sparse!, '')),
        });
      }
    }
    expect(sorted(documented.keys())).toEqual(sorted(METHODS));
    const gateTau = SPARSE_GGUF.tensors.gateTau.name.replace('blk.%d.', '');
    const inputTau = (p: string) => SPARSE_GGUF.tensors.inputTau.name.replace('blk.%d.', '').replace('%s', p);
    for (const m of METHODS) {
      const layout = METHOD_LAYOUTS[m];
      expect(documented.get(m), m).toEqual({
        thresholds: sorted([...(layout.gate ? [gateTau] : []), ...layout.inputs.map(inputTau)]),
        sparse: sorted(layout.inputSparse),
      });
    }
  });

  it('§3.1: the column-block types and their bytes per row and group, both ways', () => {
    const s31 = section('### 3.1');
    const typeCells = rows(s31, /^(F32|F16|BF16|Q\d)/).map((r) => r[0]!);
    const types = typeCells.flatMap((c) => c.split('/').map((x) => x.trim().toLowerCase()));
    expect(sorted(types)).toEqual(sorted(SPARSE_GGUF.columnBlocks.types.map((x) => x.type.toLowerCase())));
    const sizes = phrase(s31, /Sizes check out per group:([\s\S]*?)the source's/, 'the sizes paragraph')[1]!;
    const perGroup = Object.fromEntries([...sizes.matchAll(/(Q\d_[0-9K])\s+`(?:[^`]*= )?(\d+)R`/g)].map((m) => [m[1]!.toLowerCase(), Number(m[2])]));
    const blockTypes = SPARSE_GGUF.columnBlocks.types.filter((x) => x.groupSize > 1);
    expect(perGroup).toEqual(Object.fromEntries(blockTypes.map((x) => [x.type.toLowerCase(), x.blockBytes])));
    expect(Number(phrase(s31, /Planes come in \*\*units of (\d+) rows\*\*/, 'the row unit')[1])).toBe(SPARSE_GGUF.columnBlocks.rowUnit);
  });

  it('§5: the counter sites; the keep rule', () => {
    const report = rows(section('## 5.'), /^`CHESS_SPARSITY_REPORT/)[0]![1]!;
    const sites = phrase(report, /Sites: `([^`]+)` \(input of each projection\) and `([^`]+)`/, 'the site list');
    expect(PROJECTIONS.map((p) => sites[1]!.replace('<proj>', p))).toEqual(PROJECTIONS.map(inputSite));
    expect([...PROJECTIONS.map(inputSite), sites[2]]).toEqual(SITES);
    expect(doc).toContain(`iff \`${SPARSE_GGUF.keepRule.text}\` (strict)`);
  });
});
