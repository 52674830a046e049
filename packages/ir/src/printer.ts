/**
 * The stable text form: deterministic, one statement per line, diff-friendly.
 *
 *     arch llama
 *
 *     hparams {
 *       n_layer = 1
 *     }
 *
 *     meta {
 *       general.name : string = "tiny"
 *     }
 *
 *     sources {
 *       model = "tiny.gguf"
 *     }
 *
 *     weights {
 *       @token_embd.weight : q8_0[256,64] = file(model, offset=1024, bytes=17408)
 *       @blk.0.ffn_gate.threshold : f32[128] = memory
 *     }
 *
 *     graph {
 *       %tokens = input : i32[T]
 *       %ffn_up.0 = linear %ffn_norm.0 @blk.0.ffn_up.weight : f32[T,128] {layer=0}
 *       output %logits
 *     }
 *
 * Attributes print in schema order (`layer` first) and are omitted when equal
 * to their default. `parse(print(m))` prints identically.
 */
import { RESERVED_WORDS, formatName, formatNumber, formatScalar, formatString, formatWord } from './literal.ts';
import type { MetaLiteral, Module, Weight } from './module.ts';
import { valueNames } from './names.ts';
import { type Node, WeightRef } from './node.ts';
import { getOp } from './registry.ts';
import { type AttrValue, attrOrder } from './schema.ts';
import { formatType } from './types.ts';

export interface PrintOptions {
  /**
   * Show only this many items of long metadata arrays (a tokenizer has ~50k
   * strings). The result is for reading only: the parser rejects the elision.
   */
  readonly elideMetaArrays?: number;
}

/** Type of a metadata entry: a word such as `u32` or `array<string>`, quoted otherwise. */
const META_TYPE_RE = /^[A-Za-z_][A-Za-z0-9_.<>]*$/;

export function print(module: Module, options: PrintOptions = {}): string {
  const out: string[] = [`arch ${formatWord(module.arch)}`];
  const section = (title: string, lines: string[], always = false) => {
    if (lines.length === 0 && !always) return;
    out.push('', `${title} {`, ...lines.map((l) => `  ${l}`), '}');
  };
  section(
    'hparams',
    [...module.hparams].map(([k, v]) => `${formatWord(k)} = ${formatScalar(v)}`),
  );
  section(
    'meta',
    module.meta.map((e) => {
      const type = META_TYPE_RE.test(e.type) && !RESERVED_WORDS.has(e.type) ? e.type : formatString(e.type);
      return `${formatWord(e.key)} : ${type} = ${formatMeta(e.value, options.elideMetaArrays)}`;
    }),
  );
  section(
    'sources',
    [...module.sources].map(([id, path]) => `${formatWord(id)} = ${formatString(path)}`),
  );
  section('weights', [...module.weights.values()].map(formatWeight));
  const names = valueNames(module);
  section('graph', module.nodes.map((n) => formatNode(n, names)), true);
  return out.join('\n') + '\n';
}

export function formatWeight(w: Weight): string {
  let source: string;
  if (w.source.kind === 'file') {
    const args = [formatWord(w.source.file)];
    if (w.source.offset !== undefined) args.push(`offset=${w.source.offset}`);
    if (w.source.byteLength !== undefined) args.push(`bytes=${w.source.byteLength}`);
    source = `file(${args.join(', ')})`;
  } else {
    source = 'memory';
  }
  return `${formatName('@', w.name)} : ${formatType(w)} = ${source}${w.keep ? ' keep' : ''}`;
}

function formatNode(node: Node, names: ReadonlyMap<Node, string>): string {
  const operands = node.operands.map((o) => (o instanceof WeightRef ? formatName('@', o.name) : formatName('%', names.get(o) ?? `?${o.id}`)));
  let line = [node.op, ...operands].join(' ');
  if (node.type) line = `${formatName('%', names.get(node)!)} = ${line} : ${formatType(node.type)}`;
  const attrs = formatAttrs(node);
  return attrs ? `${line} ${attrs}` : line;
}

function formatAttrs(node: Node): string {
  const schema = getOp(node.op);
  const order = schema ? attrOrder(schema) : [];
  const keys = [...order.filter((k) => Object.hasOwn(node.attrs, k)), ...Object.keys(node.attrs).filter((k) => !order.includes(k)).sort()];
  const parts: string[] = [];
  for (const key of keys) {
    const value = node.attrs[key] as AttrValue;
    if (schema?.attrs[key]?.default === value) continue;
    parts.push(`${key}=${formatScalar(value)}`);
  }
  return parts.length > 0 ? `{${parts.join(', ')}}` : '';
}

function formatMeta(value: MetaLiteral, elide: number | undefined): string {
  if (typeof value === 'string') return formatString(value);
  if (typeof value === 'number') return formatNumber(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'boolean') return String(value);
  const items = Array.from(value as ArrayLike<MetaLiteral>);
  if (elide !== undefined && items.length > elide) {
    return `[${items.slice(0, elide).map((v) => formatMeta(v, elide)).join(', ')}, ... ${items.length - elide} more]`;
  }
  return `[${items.map((v) => formatMeta(v, elide)).join(', ')}]`;
}
