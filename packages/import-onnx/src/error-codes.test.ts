/** Every ONNX_* code the importer and the exporter throw is documented in docs/errors.md, and only those. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');

function thrownCodes(dir: string): string[] {
  const codes: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.test.ts')) continue;
    const text = readFileSync(join(entry.parentPath, entry.name), 'utf8');
    for (const m of text.matchAll(/(?:ChessError|UsageError)\(\s*'(ONNX_[A-Z_]+)'/g)) codes.push(m[1]!);
  }
  return codes;
}

it('every ONNX_* error code is documented in docs/errors.md, and only those', () => {
  const doc = readFileSync(join(root, 'docs', 'errors.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## @chess/import-onnx'));
  const end = section.indexOf('\n## ', 1);
  const documented = new Set([...(end < 0 ? section : section.slice(0, end)).matchAll(/`(ONNX_[A-Z_]+)`/g)].map((m) => m[1]));
  const thrown = new Set([...thrownCodes(join(root, 'packages', 'import-onnx', 'src')), ...thrownCodes(join(root, 'packages', 'codegen-onnx', 'src'))]);
  expect(thrown.size).toBeGreaterThan(10);
  expect([...documented].sort()).toEqual([...thrown].sort());
});
