/** Producer and consumer lookups over an ONNX graph, for the pattern matcher. */
import { ChessError } from '@chess/core';
import { nodeLabel, type OnnxFile, type TensorData } from './onnx-file.ts';
import type { onnx } from './onnx-proto.ts';

/** Ops that only move or re-view values (no arithmetic on them). */
export const SHAPE_OPS = new Set(['Reshape', 'Transpose', 'Unsqueeze', 'Squeeze', 'Identity', 'Cast', 'Expand', 'Flatten']);

export class GraphIndex {
  readonly producer = new Map<string, onnx.INodeProto>();
  readonly consumers = new Map<string, onnx.INodeProto[]>();

  constructor(readonly file: OnnxFile) {
    for (const node of file.graph.node) {
      for (const o of node.output ?? []) this.producer.set(o, node);
      for (const i of node.input ?? []) {
        const list = this.consumers.get(i) ?? [];
        list.push(node);
        this.consumers.set(i, list);
      }
    }
  }

  /** The constant tensor of a value: an initializer or a Constant node's output (through Identity/Cast). */
  constant(name: string): TensorData | undefined {
    const init = this.file.initializers.get(name) ?? this.file.constants.get(name);
    if (init) return init;
    const p = this.producer.get(name);
    if (p && (p.opType === 'Identity' || p.opType === 'Cast')) return this.constant(p.input![0]!);
    return undefined;
  }

  uses(name: string): onnx.INodeProto[] {
    return this.consumers.get(name) ?? [];
  }

  /** The node producing `name`, skipping shape-only ops when `through` is set. */
  source(name: string, through = false): onnx.INodeProto | undefined {
    let p = this.producer.get(name);
    while (through && p && SHAPE_OPS.has(p.opType!) && !this.constant(p.input![0]!)) p = this.producer.get(p.input![0]!);
    return p;
  }

  attrInt(node: onnx.INodeProto, name: string, fallback: number): number {
    const a = node.attribute?.find((x) => x.name === name);
    return a ? Number(a.i) : fallback;
  }

  attrFloat(node: onnx.INodeProto, name: string, fallback: number): number {
    const a = node.attribute?.find((x) => x.name === name);
    return a ? Number(a.f) : fallback;
  }

  attrInts(node: onnx.INodeProto, name: string): number[] | undefined {
    const a = node.attribute?.find((x) => x.name === name);
    return a ? a.ints!.map(Number) : undefined;
  }

  /** A structure error naming the node, its op type and what the importer expected there. */
  fail(node: onnx.INodeProto | undefined, expected: string): never {
    throw new ChessError(
      'ONNX_STRUCTURE',
      `${this.file.path}: ${node ? nodeLabel(node) : 'graph'}: expected ${expected}; the importer recognises Llama-family decoders (see README, "ONNX import")`,
      { path: this.file.path, node: node?.name, opType: node?.opType, expected },
    );
  }
}
