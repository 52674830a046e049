/** Tokens of the text form, each with its line and column (1-based) for error messages. */
import { IrErrorCode, irError } from './errors.ts';

export type TokenKind =
  | 'newline'
  | 'punct' // { } ( ) [ ] = : ,
  | 'value' // %name
  | 'weight' // @name
  | 'word' // identifiers, dtypes, symbols, keys (may contain . < >)
  | 'number'
  | 'bigint' // 123n
  | 'string' // "..." (JSON escapes)
  | 'ellipsis' // ... (printed by elided metadata; never valid input)
  | 'eof';

export interface Token {
  readonly kind: TokenKind;
  /** Decoded text: the name without its sigil, the string without quotes, the punctuation char. */
  readonly text: string;
  readonly line: number;
  readonly column: number;
}

const PUNCT = new Set(['{', '}', '(', ')', '[', ']', '=', ':', ',']);
const NAME_CHAR = /[A-Za-z0-9_.\-]/;
const WORD_START = /[A-Za-z_]/;
const WORD_CHAR = /[A-Za-z0-9_.<>]/;
const NUMBER_RE = /^-?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/;

export function syntaxError(file: string, line: number, column: number, message: string): Error {
  return irError(IrErrorCode.PARSE_SYNTAX, `${file}:${line}:${column}: ${message}`, { file, line, column });
}

export function tokenize(text: string, file: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const push = (kind: TokenKind, tokenText: string, start: number) => tokens.push({ kind, text: tokenText, line, column: start - lineStart + 1 });
  const fail = (at: number, message: string): never => {
    throw syntaxError(file, line, at - lineStart + 1, message);
  };
  const readString = (start: number): [string, number] => {
    let j = start + 1;
    while (j < text.length && text[j] !== '"') {
      if (text[j] === '\n') fail(start, 'unterminated string');
      j += text[j] === '\\' ? 2 : 1;
    }
    if (j >= text.length) fail(start, 'unterminated string');
    try {
      return [JSON.parse(text.slice(start, j + 1)) as string, j + 1];
    } catch {
      return fail(start, 'invalid escape in string');
    }
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      push('newline', '\n', i);
      i++;
      line++;
      lineStart = i;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (PUNCT.has(c)) {
      push('punct', c, i);
      i++;
    } else if (c === '%' || c === '@') {
      const kind = c === '%' ? 'value' : 'weight';
      if (text[i + 1] === '"') {
        const [s, end] = readString(i + 1);
        push(kind, s, i);
        i = end;
      } else {
        let j = i + 1;
        while (j < text.length && NAME_CHAR.test(text[j]!)) j++;
        if (j === i + 1) fail(i, `expected a name after '${c}'`);
        push(kind, text.slice(i + 1, j), i);
        i = j;
      }
    } else if (c === '"') {
      const [s, end] = readString(i);
      push('string', s, i);
      i = end;
    } else if (text.startsWith('...', i)) {
      push('ellipsis', '...', i);
      i += 3;
    } else if (text.startsWith('-inf', i) && !WORD_CHAR.test(text[i + 4] ?? ' ')) {
      push('number', '-inf', i);
      i += 4;
    } else if (/[\d.\-]/.test(c)) {
      const m = NUMBER_RE.exec(text.slice(i, i + 64));
      if (!m) fail(i, `unexpected character '${c}'`);
      const end = i + m![0].length;
      if (text[end] === 'n' && /^-?\d+$/.test(m![0])) {
        push('bigint', m![0], i);
        i = end + 1;
      } else {
        push('number', m![0], i);
        i = end;
      }
      if (i < text.length && WORD_CHAR.test(text[i]!)) fail(i, `unexpected character '${text[i]}' after number`);
    } else if (WORD_START.test(c)) {
      let j = i + 1;
      while (j < text.length && WORD_CHAR.test(text[j]!)) j++;
      push('word', text.slice(i, j), i);
      i = j;
    } else {
      fail(i, `unexpected character '${c}'`);
    }
  }
  push('newline', '\n', i);
  push('eof', '', i);
  return tokens;
}
