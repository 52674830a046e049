/**
 * Reads the text form written by `print` (see printer.ts for the grammar by
 * example). The parser is generic: it needs no op schema, keeps the result
 * types as written and does not verify, so a fixture may hold an invalid
 * module for the verifier to reject. Errors are IR_PARSE_* with file:line:column.
 */
import { IrErrorCode, irError } from './errors.ts';
import { type Token, type TokenKind, syntaxError, tokenize } from './lexer.ts';
import { type MetaLiteral, Module, type WeightSource } from './module.ts';
import { Node, type Operand, WeightRef } from './node.ts';
import type { AttrValue } from './schema.ts';
import { DTYPES, type Dim, type DType, type TensorType, isDType } from './types.ts';

export interface ParseOptions {
  /** Shown in error messages (`input.ir:3:7: ...`). */
  readonly filename?: string;
}

const SECTIONS = ['hparams', 'meta', 'sources', 'weights', 'graph'] as const;
type Section = (typeof SECTIONS)[number];

export function parse(text: string, options: ParseOptions = {}): Module {
  return new Parser(text, options.filename ?? '<ir>').parseModule();
}

class Parser {
  private readonly tokens: Token[];
  private pos = 0;
  private readonly values = new Map<string, Node>();
  private module = new Module();

  constructor(
    text: string,
    private readonly file: string,
  ) {
    this.tokens = tokenize(text, file);
  }

  parseModule(): Module {
    this.skipNewlines();
    this.keyword('arch');
    this.module.arch = this.wordOrString('an architecture name');
    this.endOfLine();
    const seen = new Set<Section>();
    while (this.peek().kind !== 'eof') {
      const tok = this.expect('word', `a section (${SECTIONS.join(', ')})`);
      const section = tok.text as Section;
      if (!SECTIONS.includes(section)) throw this.error(tok, `expected a section (${SECTIONS.join(', ')}), found '${tok.text}'`);
      if (seen.has(section)) throw this.error(tok, `section '${section}' appears twice`);
      seen.add(section);
      this.punct('{');
      this.endOfLine();
      while (!this.isPunct('}')) {
        this.statement(section);
        this.endOfLine();
      }
      this.punct('}');
      this.endOfLine();
    }
    return this.module;
  }

  private statement(section: Section): void {
    switch (section) {
      case 'hparams': {
        const key = this.peek();
        const name = this.wordOrString('a hyperparameter name');
        if (this.module.hparams.has(name)) throw this.duplicate(key, `hyperparameter '${name}'`);
        this.punct('=');
        this.module.hparams.set(name, this.scalar());
        return;
      }
      case 'meta': {
        const keyTok = this.peek();
        const key = this.wordOrString('a metadata key');
        if (this.module.meta.some((e) => e.key === key)) throw this.duplicate(keyTok, `metadata key '${key}'`);
        this.punct(':');
        const type = this.wordOrString('a metadata type');
        this.punct('=');
        this.module.meta.push({ key, type, value: this.metaLiteral() });
        return;
      }
      case 'sources': {
        const idTok = this.peek();
        const id = this.wordOrString('a source id');
        if (this.module.sources.has(id)) throw this.duplicate(idTok, `source '${id}'`);
        this.punct('=');
        this.module.sources.set(id, this.expect('string', 'a quoted path').text);
        return;
      }
      case 'weights':
        return this.weightStatement();
      case 'graph':
        return this.nodeStatement();
    }
  }

  private weightStatement(): void {
    const nameTok = this.expect('weight', 'a weight (@name)');
    if (this.module.weights.has(nameTok.text)) throw this.duplicate(nameTok, `weight @${nameTok.text}`);
    this.punct(':');
    const typeTok = this.peek();
    const type = this.type();
    const shape = type.shape.map((d) => (typeof d === 'number' ? d : this.fail(typeTok, `weight shapes are static; found symbol '${d}'`)));
    this.punct('=');
    const kindTok = this.expect('word', "'file(...)' or 'memory'");
    let source: WeightSource;
    if (kindTok.text === 'memory') {
      source = { kind: 'memory' };
    } else if (kindTok.text === 'file') {
      this.punct('(');
      const file = this.wordOrString('a source id');
      let offset: number | undefined;
      let byteLength: number | undefined;
      while (this.isPunct(',')) {
        this.next();
        const key = this.expect('word', "'offset' or 'bytes'");
        this.punct('=');
        const value = this.integer();
        if (key.text === 'offset') offset = value;
        else if (key.text === 'bytes') byteLength = value;
        else throw this.error(key, `expected 'offset' or 'bytes', found '${key.text}'`);
      }
      this.punct(')');
      source = { kind: 'file', file, ...(offset !== undefined && { offset }), ...(byteLength !== undefined && { byteLength }) };
    } else {
      throw this.error(kindTok, `expected 'file(...)' or 'memory', found '${kindTok.text}'`);
    }
    let keep = false;
    if (this.peek().kind === 'word' && this.peek().text === 'keep') {
      this.next();
      keep = true;
    }
    this.module.addWeight({ name: nameTok.text, dtype: type.dtype, shape, source, ...(keep && { keep }) });
  }

  private nodeStatement(): void {
    let result: Token | undefined;
    if (this.peek().kind === 'value') {
      result = this.next();
      if (this.values.has(result.text)) throw this.irError(IrErrorCode.PARSE_DUPLICATE_VALUE, result, `value %${result.text} is defined twice`);
      this.punct('=');
    }
    const op = this.expect('word', 'an op name').text;
    const operands: Operand[] = [];
    for (;;) {
      const tok = this.peek();
      if (tok.kind === 'value') {
        this.next();
        const def = this.values.get(tok.text);
        if (!def) throw this.irError(IrErrorCode.PARSE_UNDEFINED_VALUE, tok, `value %${tok.text} is used before it is defined`);
        operands.push(def);
      } else if (tok.kind === 'weight') {
        this.next();
        operands.push(new WeightRef(tok.text));
      } else {
        break;
      }
    }
    let type: TensorType | undefined;
    if (result) {
      this.punct(':');
      type = this.type();
    }
    const attrs = this.isPunct('{') ? this.attrDict() : {};
    const name = result && !/^\d+$/.test(result.text) ? result.text : undefined;
    const node = new Node(op, operands, attrs, type, name);
    if (result) this.values.set(result.text, node);
    this.module.nodes.push(node);
  }

  private attrDict(): Record<string, AttrValue> {
    this.punct('{');
    const attrs: Record<string, AttrValue> = {};
    if (!this.isPunct('}')) {
      for (;;) {
        const key = this.expect('word', 'an attribute name');
        if (Object.hasOwn(attrs, key.text)) throw this.duplicate(key, `attribute '${key.text}'`);
        this.punct('=');
        attrs[key.text] = this.scalar();
        if (!this.isPunct(',')) break;
        this.next();
      }
    }
    this.punct('}');
    return attrs;
  }

  private type(): TensorType {
    const tok = this.expect('word', 'a type (e.g. f32[T,576])');
    if (!isDType(tok.text)) throw this.error(tok, `unknown dtype '${tok.text}' (known: ${Object.keys(DTYPES).join(', ')})`);
    this.punct('[');
    const shape: Dim[] = [];
    if (!this.isPunct(']')) {
      for (;;) {
        const d = this.peek();
        if (d.kind === 'word') shape.push(this.next().text);
        else shape.push(this.integer());
        if (!this.isPunct(',')) break;
        this.next();
      }
    }
    this.punct(']');
    return { dtype: tok.text as DType, shape };
  }

  /** Attribute or hyperparameter value: number, true/false, nan/inf, word or string. */
  private scalar(): AttrValue {
    const tok = this.next();
    if (tok.kind === 'number') return parseNumber(tok.text);
    if (tok.kind === 'string') return tok.text;
    if (tok.kind === 'word') {
      if (tok.text === 'true') return true;
      if (tok.text === 'false') return false;
      if (tok.text === 'nan') return NaN;
      if (tok.text === 'inf') return Infinity;
      return tok.text;
    }
    throw this.error(tok, `expected a number, true/false, a word or a string, found ${describe(tok)}`);
  }

  private metaLiteral(): MetaLiteral {
    const tok = this.peek();
    if (tok.kind === 'bigint') return BigInt(this.next().text);
    if (tok.kind === 'ellipsis') throw this.error(tok, 'elided metadata (printed with elideMetaArrays) cannot be read back');
    if (this.isPunct('[')) {
      this.next();
      const items: MetaLiteral[] = [];
      if (!this.isPunct(']')) {
        for (;;) {
          items.push(this.metaLiteral());
          if (!this.isPunct(',')) break;
          this.next();
        }
      }
      this.punct(']');
      return items;
    }
    if (tok.kind === 'word' && !['true', 'false', 'nan', 'inf'].includes(tok.text)) {
      throw this.error(tok, `expected a metadata value (quoted string, number, 123n, true/false, [..]), found '${tok.text}'`);
    }
    return this.scalar();
  }

  private integer(): number {
    const tok = this.expect('number', 'an integer');
    const n = Number(tok.text);
    if (!Number.isSafeInteger(n) || n < 0) throw this.error(tok, `expected a non-negative integer, found ${tok.text}`);
    return n;
  }

  private wordOrString(what: string): string {
    const tok = this.next();
    if (tok.kind === 'word' || tok.kind === 'string') return tok.text;
    throw this.error(tok, `expected ${what}, found ${describe(tok)}`);
  }

  // --- token helpers ---

  private peek(): Token {
    return this.tokens[this.pos]!;
  }

  private next(): Token {
    const tok = this.tokens[this.pos]!;
    if (tok.kind !== 'eof') this.pos++;
    return tok;
  }

  private expect(kind: TokenKind, what: string): Token {
    const tok = this.next();
    if (tok.kind !== kind) throw this.error(tok, `expected ${what}, found ${describe(tok)}`);
    return tok;
  }

  private keyword(word: string): void {
    const tok = this.next();
    if (tok.kind !== 'word' || tok.text !== word) throw this.error(tok, `expected '${word}', found ${describe(tok)}`);
  }

  private isPunct(c: string): boolean {
    const tok = this.peek();
    return tok.kind === 'punct' && tok.text === c;
  }

  private punct(c: string): void {
    const tok = this.next();
    if (tok.kind !== 'punct' || tok.text !== c) throw this.error(tok, `expected '${c}', found ${describe(tok)}`);
  }

  private endOfLine(): void {
    const tok = this.peek();
    if (tok.kind !== 'newline' && tok.kind !== 'eof') throw this.error(tok, `expected end of line, found ${describe(tok)}`);
    this.skipNewlines();
  }

  private skipNewlines(): void {
    while (this.peek().kind === 'newline') this.pos++;
  }

  private error(tok: Token, message: string): Error {
    return syntaxError(this.file, tok.line, tok.column, message);
  }

  private fail(tok: Token, message: string): never {
    throw this.error(tok, message);
  }

  private duplicate(tok: Token, what: string): Error {
    return this.irError(IrErrorCode.PARSE_DUPLICATE_KEY, tok, `${what} appears twice`);
  }

  private irError(code: IrErrorCode, tok: Token, message: string): Error {
    return irError(code, `${this.file}:${tok.line}:${tok.column}: ${message}`, { file: this.file, line: tok.line, column: tok.column });
  }
}

function parseNumber(text: string): number {
  if (text === '-inf') return -Infinity;
  return Number(text);
}

function describe(tok: Token): string {
  switch (tok.kind) {
    case 'newline':
      return 'end of line';
    case 'eof':
      return 'end of input';
    case 'value':
      return `%${tok.text}`;
    case 'weight':
      return `@${tok.text}`;
    case 'string':
      return JSON.stringify(tok.text);
    default:
      return `'${tok.text}'`;
  }
}
