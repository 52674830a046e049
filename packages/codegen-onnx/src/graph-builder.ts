/**
 * A small builder of an ONNX graph: nodes with unique output names,
 * initializers (float32 weights, int64 shape constants), inputs and outputs.
 * Large initializers can go to an external data file (ONNX's own mechanism).
 */
import { onnx } from './onnx-proto.ts';

const TensorType = onnx.TensorProto.DataType;
export type ElemType = 'float' | 'int64' | 'bool';
const ELEM: Record<ElemType, number> = { float: TensorType.FLOAT, int64: TensorType.INT64, bool: TensorType.BOOL };

export type AttrInit = number | string | readonly number[] | { readonly ints: readonly number[] } | { readonly float: number };

export class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  readonly inputs: onnx.IValueInfoProto[] = [];
  readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private counter = 0;
  private readonly constants = new Map<string, string>();

  /** A fresh value name starting with `hint`. */
  fresh(hint: string): string {
    let name = hint;
    while (this.used.has(name)) name = `${hint}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  /** Append a node; returns its single output's name (or all of them with `outputs > 1`). */
  op(opType: string, inputs: readonly string[], attrs: Record<string, AttrInit> = {}, hint = opType.toLowerCase(), domain = ''): string {
    return this.opN(opType, inputs, 1, attrs, hint, domain)[0]!;
  }

  opN(opType: string, inputs: readonly string[], nOut: number, attrs: Record<string, AttrInit> = {}, hint = opType.toLowerCase(), domain = ''): string[] {
    const output = Array.from({ length: nOut }, (_, i) => this.fresh(nOut === 1 ? hint : `${hint}_${i}`));
    this.nodes.push({ opType, input: [...inputs], output, name: this.fresh(`node/${output[0]}`), domain, attribute: Object.entries(attrs).map(([name, v]) => attribute(name, v)) });
    return output;
  }

  /** A float32 initializer (its bytes referenced, not copied, until encoding). */
  floatInit(hint: string, dims: readonly number[], data: Float32Array): string {
    const name = this.fresh(hint);
    this.initializers.push({ name, dims: [...dims], dataType: TensorType.FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  /** An int64 constant (shapes, axes), shared by value. */
  int64s(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = this.fresh(`const_i64_${values.slice(0, 4).join('_').replace(/-/g, 'm')}`);
    this.initializers.push({ name, dims: [...dims], dataType: TensorType.INT64, rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) });
    this.constants.set(key, name);
    return name;
  }

  /** A float32 scalar or vector constant, shared by value. */
  floats(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const key = `f32:${dims.join('x')}:${values.join(',')}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = this.fresh('const_f32');
    this.initializers.push({ name, dims: [...dims], dataType: TensorType.FLOAT, rawData: new Uint8Array(Float32Array.from(values).buffer) });
    this.constants.set(key, name);
    return name;
  }

  input(name: string, elem: ElemType, dims: readonly (number | string)[]): string {
    this.used.add(name);
    this.inputs.push(valueInfo(name, elem, dims));
    return name;
  }

  output(name: string, elem: ElemType, dims: readonly (number | string)[]): void {
    this.outputs.push(valueInfo(name, elem, dims));
  }

  /** Rename the value `from` (an output of the last node producing it) to `to`. */
  rename(from: string, to: string): string {
    this.used.add(to);
    for (const n of this.nodes) {
      n.output = n.output!.map((o) => (o === from ? to : o));
      n.input = n.input!.map((i) => (i === from ? to : i));
    }
    return to;
  }
}

function valueInfo(name: string, elem: ElemType, dims: readonly (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: ELEM[elem], shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

function attribute(name: string, v: AttrInit): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: T.INT, i: v } : { name, type: T.FLOAT, f: v };
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if ('float' in v) return { name, type: T.FLOAT, f: v.float };
  if ('ints' in v) return { name, type: T.INTS, ints: [...v.ints] };
  return { name, type: T.INTS, ints: [...(v as readonly number[])] };
}
