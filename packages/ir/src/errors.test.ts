import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { IrErrorCode } from './errors.ts';

it('every IR error code is documented in docs/errors.md, and only those', () => {
  const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'errors.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## @chess/ir'));
  const end = section.indexOf('\n## ', 1);
  const documented = new Set([...(end < 0 ? section : section.slice(0, end)).matchAll(/`(IR_[A-Z0-9_]+)`/g)].map((m) => m[1]));
  expect([...documented].sort()).toEqual(Object.values(IrErrorCode).sort());
});
