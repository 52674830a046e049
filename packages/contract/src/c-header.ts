/**
 * The contract table as a C header for the C/C++ side (the patched llama.cpp's
 * llama-chess.cpp, the loader checks in native/src/chess_contract_check.c, the
 * profile collector packages/calibrate/native/chess-profile.cpp): names, counts,
 * suffixes, keys, format versions and the keep rule as macros, so that no C
 * file spells them again. Written by `pnpm -C packages/contract gen:header`;
 * c-header.test.ts fails when the committed file differs from this output.
 *
 * The header lives in the kernel library's include directory
 * (packages/backend-llamacpp/native/include): the backend build copies that
 * directory into the llama.cpp tree and hashes it, so a contract change
 * rebuilds the runtime and the profile collector.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { SPARSE_GGUF } from './contract.ts';
import { PROJECTIONS } from './projections.ts';
import { GATE_ACT_SITE, SITES } from './sites.ts';

/** Where the generated header is committed, relative to the repository root. */
export const C_HEADER_PATH = 'packages/backend-llamacpp/native/include/chess_contract.h';

/** The repository root (this file is packages/contract/src/c-header.ts). */
export const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');

/** Stamp of the table the header was generated from (sha256 of its JSON, 16 hex digits). */
export function contractStamp(): string {
  return createHash('sha256').update(JSON.stringify(SPARSE_GGUF)).digest('hex').slice(0, 16);
}

const macro = (camel: string) => camel.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/[^A-Za-z0-9]/g, '_').toUpperCase();
const str = (s: string) => JSON.stringify(s); // C string literal: the contract's strings are printable ASCII
const list = (xs: readonly string[]) => xs.map(str).join(', ');

/** The part of a tensor pattern after `blk.%d.%s` (or after `blk.%d`): what a C name check compares a suffix with. */
function suffix(pattern: string): string {
  return pattern.replace(/^blk\.%d\.(%s)?/, '');
}

export function renderContractHeader(): string {
  const t = SPARSE_GGUF.tensors;
  const lines: string[] = [];
  const define = (name: string, value: string | number, doc?: string) => {
    if (doc) lines.push(`/* ${doc.replace(/\*\//g, '* /')} */`);
    lines.push(`#define ${name} ${value}`);
  };
  const blank = () => lines.push('');

  lines.push(
    '/* chess_contract.h: the sparse GGUF contract (docs/gguf-sparse.md) for C and C++.',
    ' *',
    ' * GENERATED from SPARSE_GGUF in packages/contract/src/contract.ts by',
    ' * packages/contract/src/c-header.ts (`pnpm -C packages/contract gen:header`).',
    ' * Do not edit: change the table and regenerate (a test fails when this file is stale).',
    ' */',
    '#ifndef CHESS_CONTRACT_H',
    '#define CHESS_CONTRACT_H',
    '',
  );
  define('CHESS_CONTRACT_STAMP', str(contractStamp()), 'sha256 of the table this header was generated from (first 16 hex digits)');
  blank();

  define('CHESS_CONTRACT_ARCHITECTURE', str(SPARSE_GGUF.architecture), 'sec. 1: general.architecture of every sparse GGUF');
  lines.push('/* sec. 2: metadata keys */');
  for (const [k, v] of Object.entries(SPARSE_GGUF.keys)) define(`CHESS_CONTRACT_KEY_${macro(k)}`, str(v));
  blank();

  define('CHESS_CONTRACT_FORMAT_VERSION_BASE', SPARSE_GGUF.formatVersion.base, 'chess.format_version: the largest format of the storage layouts present, at least the base');
  for (const [name, layout] of Object.entries(SPARSE_GGUF.layouts)) define(`CHESS_CONTRACT_FORMAT_VERSION_${macro(name)}`, layout.formatVersion);
  define(
    'CHESS_CONTRACT_FORMAT_VERSION_MAX',
    Math.max(SPARSE_GGUF.formatVersion.base, ...Object.values(SPARSE_GGUF.layouts).map((l) => l.formatVersion)),
    'the newest format the contract defines',
  );
  blank();

  define('CHESS_CONTRACT_KEEP_RULE', str(SPARSE_GGUF.keepRule.text), `keep rule: ${SPARSE_GGUF.keepRule.doc}`);
  define('CHESS_CONTRACT_KEEPS(v, tau)', SPARSE_GGUF.keepRule.c, 'the keep rule for one float element (fabsf from <math.h>)');
  blank();

  lines.push('/* sec. 3: projections, in the runtime order (enum llama_chess_proj) */');
  define('CHESS_CONTRACT_N_PROJ', PROJECTIONS.length);
  define('CHESS_CONTRACT_PROJ_NAMES', list(PROJECTIONS), 'initializer list of the GGUF name stems');
  blank();

  lines.push('/* sec. 5: counter sites of one layer: each projection input, then the gate after its activation (site id = index) */');
  define('CHESS_CONTRACT_SITES_PER_LAYER', SITES.length);
  define('CHESS_CONTRACT_SITE_GATE_ACT', SITES.indexOf(GATE_ACT_SITE));
  define('CHESS_CONTRACT_SITE_NAMES', list(SITES), 'initializer list of the site names');
  blank();

  lines.push('/* sec. 3: tensor names as printf patterns (%d layer, %s projection) and the suffixes after blk.N.<proj> */');
  for (const [kind, tensor] of Object.entries(t)) {
    define(`CHESS_CONTRACT_TENSOR_${macro(kind)}`, str(tensor.name));
    if (kind !== 'weight' && kind !== 'upRows') define(`CHESS_CONTRACT_SUFFIX_${macro(kind)}`, str(kind === 'gateTau' ? `.${suffix(tensor.name)}` : suffix(tensor.name)));
  }
  blank();

  lines.push('/* graph node names the profile collector reads (llama.cpp names a node "<name>-<layer>") */');
  for (const [group, nodes] of Object.entries(SPARSE_GGUF.graphNodes)) {
    for (const [k, node] of Object.entries(nodes)) define(`CHESS_CONTRACT_NODE_${macro(group)}_${macro(k)}`, str(node.name));
  }
  blank();

  lines.push('/* sec. 3.1: the column-block types (enum chess_type = enum ggml_type numbers) */');
  const cb = SPARSE_GGUF.columnBlocks;
  define('CHESS_CONTRACT_CB_ROW_UNIT', cb.rowUnit);
  define('CHESS_CONTRACT_CB_N_TYPES', cb.types.length);
  define('CHESS_CONTRACT_CB_TYPE_NAMES', str(cb.types.map((x) => x.type).join(', ')), 'for messages');
  lines.push('/* X(c name, ggml type, group size B, bytes per block S, n_out multiple) */');
  lines.push(`#define CHESS_CONTRACT_CB_TYPES(X) \\`);
  cb.types.forEach((x, i) => lines.push(`    X(${x.c}, ${x.ggmlType}, ${x.groupSize}, ${x.blockBytes}, ${x.rowMultiple})${i + 1 < cb.types.length ? ' \\' : ''}`));
  blank();

  lines.push('#endif /* CHESS_CONTRACT_H */', '');
  return lines.join('\n');
}
