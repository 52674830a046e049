/** Spelling of literals and names in the text form, shared by the printer and the parser. */

/** Characters of a bare name after `%` or `@` (GGUF tensor names fit: `blk.0.ffn_up.weight`). */
export const NAME_RE = /^[A-Za-z0-9_.\-]+$/;
/** A bare word: attribute names, enum values, dtypes, symbols, metadata keys (`general.name`). */
export const WORD_RE = /^[A-Za-z_][A-Za-z0-9_.]*$/;
/** Words that would read back as something else than a string. */
export const RESERVED_WORDS = new Set(['true', 'false', 'nan', 'inf']);

/** Shortest round-trip spelling; `nan`, `inf`, `-inf`, `-0` are spelled out. */
export function formatNumber(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (Object.is(x, -0)) return '-0';
  return String(x);
}

export function formatString(s: string): string {
  return JSON.stringify(s);
}

/** A string that reads back as the same string: bare when it is a plain word, quoted otherwise. */
export function formatWord(s: string): string {
  return WORD_RE.test(s) && !RESERVED_WORDS.has(s) ? s : formatString(s);
}

/** `%name` / `@name`, quoted when the name has other characters. */
export function formatName(sigil: '%' | '@', name: string): string {
  return sigil + (NAME_RE.test(name) ? name : formatString(name));
}

/** Literal of an attribute or a hyperparameter: number, bool or word/string. */
export function formatScalar(value: number | boolean | string): string {
  if (typeof value === 'number') return formatNumber(value);
  if (typeof value === 'boolean') return String(value);
  return formatWord(value);
}
