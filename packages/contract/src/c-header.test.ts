/**
 * The committed C header is what the generator writes from the table now, and
 * its macros say what the table says (compiled and printed by a C compiler, so
 * a header that is stale, hand-edited or not valid C fails here).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { C_HEADER_PATH, REPO_ROOT, contractStamp, renderContractHeader } from './c-header.ts';
import { PROJECTIONS, SITES, SPARSE_GGUF } from './index.ts';

const committed = () => readFileSync(join(REPO_ROOT, C_HEADER_PATH), 'utf8');

describe(`generated header ${C_HEADER_PATH}`, () => {
  it('equals the generator output for the current table (else: pnpm -C packages/contract gen:header)', () => {
    const want = renderContractHeader();
    const have = committed();
    if (have !== want) {
      const a = have.split('\n');
      const b = want.split('\n');
      const i = a.findIndex((line, k) => line !== b[k]);
      expect.fail(`${C_HEADER_PATH} is stale at line ${i + 1}:\n  committed: ${a[i]}\n  generated: ${b[i]}\nrun pnpm -C packages/contract gen:header`);
    }
    expect(have).toContain(`#define CHESS_CONTRACT_STAMP "${contractStamp()}"`);
  });

  it('compiles as C and C++, and its values are the table (printed by the compiled program)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chess-contract-h-'));
    try {
      const program = `
#include <math.h>
#include <stdio.h>
#include "chess_contract.h"
static const char *const proj[] = { CHESS_CONTRACT_PROJ_NAMES };
static const char *const sites[] = { CHESS_CONTRACT_SITE_NAMES };
#define T(c, g, b, s, m) printf("type %d %d %d %d\\n", g, b, s, m);
int main(void) {
  unsigned i;
  for (i = 0; i < sizeof proj / sizeof proj[0]; ++i) printf("proj %s\\n", proj[i]);
  for (i = 0; i < sizeof sites / sizeof sites[0]; ++i) printf("site %s\\n", sites[i]);
  printf("n %d %d %d\\n", CHESS_CONTRACT_N_PROJ, CHESS_CONTRACT_SITES_PER_LAYER, CHESS_CONTRACT_SITE_GATE_ACT);
  printf("key %s\\n", CHESS_CONTRACT_KEY_FORMAT_VERSION);
  printf("cb %s\\n", CHESS_CONTRACT_SUFFIX_COLUMN_BLOCKS);
  printf("format %d %d\\n", CHESS_CONTRACT_FORMAT_VERSION_COLUMN_BLOCKS, CHESS_CONTRACT_FORMAT_VERSION_MAX);
  printf("keep %d %d %d\\n", CHESS_CONTRACT_KEEPS(0.5f, 0.5f), CHESS_CONTRACT_KEEPS(-0.75f, 0.5f), CHESS_CONTRACT_KEEPS(NAN, 0.0f));
  CHESS_CONTRACT_CB_TYPES(T)
  return 0;
}
`;
      writeFileSync(join(dir, 'main.c'), program);
      const include = join(REPO_ROOT, C_HEADER_PATH, '..');
      const expected = [
        ...PROJECTIONS.map((p) => `proj ${p}`),
        ...SITES.map((s) => `site ${s}`),
        `n ${PROJECTIONS.length} ${SITES.length} ${SITES.indexOf('ffn_gate_act')}`,
        `key ${SPARSE_GGUF.keys.formatVersion}`,
        'cb _cb.weight',
        `format ${SPARSE_GGUF.layouts['column-blocks'].formatVersion} 2`,
        'keep 0 1 0',
        ...SPARSE_GGUF.columnBlocks.types.map((t) => `type ${t.ggmlType} ${t.groupSize} ${t.blockBytes} ${t.rowMultiple}`),
      ].join('\n');
      for (const [cc, args] of [
        ['cc', ['-x', 'c', '-std=c99']],
        ['c++', ['-x', 'c++', '-std=c++17']],
      ] as const) {
        const exe = join(dir, `main-${cc}`);
        execFileSync(cc, [...args, '-Wall', '-Wextra', '-Werror', '-I', include, join(dir, 'main.c'), '-o', exe, '-lm'], { stdio: 'pipe' });
        expect(execFileSync(exe, { encoding: 'utf8' }).trim(), cc).toBe(expected);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
