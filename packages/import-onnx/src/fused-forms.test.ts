/**
 * The fused forms other exporters and optimisers emit import to the same IR
 * as the decomposed ones torch.onnx.export writes: every RMSNorm of the
 * fixture rewritten as one `RMSNormalization` (opset 23) or
 * `SimplifiedLayerNormalization` (onnxruntime's fused form) node, and every
 * projection rewritten as `Gemm(x, W^T, transB=1)` with W stored [out, in],
 * give the same printed module as the original file (weights referenced by
 * the same names, the same hyperparameters and epsilon).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { print } from '@chess/ir';
import { importOnnx } from './import.ts';
import { onnx } from './onnx-proto.ts';
import { torchFixture } from './testing/torch-fixture.ts';

let work: string;
let source: string;
let reference: string;

/** The printed module without where weights live (source paths, byte ranges, file or memory differ between the forms). */
function shape(text: string): string {
  return text
    .split('\n')
    .filter((l) => !/^\s*onnx\w* = "/.test(l))
    .map((l) => (/^\s*@/.test(l) ? l.replace(/\s*=.*$/, '') : l))
    .join('\n');
}

beforeAll(async () => {
  source = (await torchFixture({ seed: 0 })).model;
  work = await mkdtemp(join(tmpdir(), 'chess-onnx-fused-'));
  reference = print((await importOnnx(source)).module, { elideMetaArrays: 4 });
}, 3_600_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function variant(name: string, edit: (g: onnx.GraphProto) => void): Promise<string> {
  const m = onnx.ModelProto.decode(await readFile(source)) as unknown as onnx.ModelProto;
  edit(m.graph!);
  await mkdir(join(work, name), { recursive: true });
  const path = join(work, name, 'model.onnx');
  await writeFile(path, onnx.ModelProto.encode(m as never).finish());
  return path;
}

/** Replace each decomposed RMSNorm (Pow .. Mul(w, .)) by one fused node writing the same output. */
function fuseNorms(g: onnx.GraphProto, opType: string): number {
  const producer = new Map(g.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
  let fused = 0;
  for (const pow of g.node.filter((n) => n.opType === 'Pow')) {
    const x = pow.input[0]!;
    const chain = [pow];
    let cur = pow;
    for (const op of ['ReduceMean', 'Add', 'Sqrt', 'Reciprocal', 'Mul', 'Mul']) {
      const next = g.node.find((n) => n.opType === op && n.input.includes(cur.output[0]!));
      if (!next) throw new Error(`no ${op} after ${cur.name}`);
      chain.push(next);
      cur = next;
    }
    const scale = cur.input.find((i) => !producer.has(i))!;
    const add = chain[2]!;
    const epsName = add.input.find((i) => !producer.has(i) || producer.get(i)!.opType === 'Constant')!;
    const epsInit = g.initializer.find((t) => t.name === epsName)!;
    const eps = new DataView(epsInit.rawData.buffer, epsInit.rawData.byteOffset, 4).getFloat32(0, true);
    const node = onnx.NodeProto.create({
      name: `fused_norm_${fused}`,
      opType,
      input: [x, scale],
      output: [cur.output[0]!],
      attribute: [onnx.AttributeProto.create({ name: 'epsilon', type: onnx.AttributeProto.AttributeType.FLOAT, f: eps })],
    }) as never;
    const at = g.node.indexOf(cur);
    g.node.splice(at, 1, node);
    for (const n of chain.slice(0, -1)) g.node.splice(g.node.indexOf(n), 1);
    fused++;
  }
  return fused;
}

describe('fused and alternative forms import to the same IR', () => {
  for (const opType of ['RMSNormalization', 'SimplifiedLayerNormalization']) {
    it(`RMSNorm as ${opType}`, async () => {
      let n = 0;
      const path = await variant(opType, (g) => (n = fuseNorms(g, opType)));
      expect(n).toBe(5);
      const { module, match } = await importOnnx(path);
      expect(match.rmsEps).toBeCloseTo(1e-5, 10);
      const got = shape(print(module, { elideMetaArrays: 4 })).split('\n');
      const want = shape(reference).split('\n');
      expect(got.filter((l, i) => l !== want[i]).slice(0, 5), 'differing lines').toEqual([]);
    });
  }

  it('projections as Gemm(x, W[out, in], transB=1)', async () => {
    let n = 0;
    const path = await variant('gemm', (g) => {
      for (const mm of g.node.filter((x) => x.opType === 'MatMul')) {
        const w = g.initializer.find((t) => t.name === mm.input[1]);
        if (!w || w.dims.length !== 2) continue;
        // torch stores B as [in, out]: write W = B^T and let Gemm transpose it back
        const [rows, cols] = w.dims.map(Number) as [number, number];
        const b = new Float32Array(Uint8Array.from(w.rawData).buffer);
        const t = new Float32Array(b.length);
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = b[r * cols + c]!;
        w.dims = [cols, rows];
        w.rawData = new Uint8Array(t.buffer);
        mm.opType = 'Gemm';
        mm.attribute = [onnx.AttributeProto.create({ name: 'transB', type: onnx.AttributeProto.AttributeType.INT, i: 1 }) as never];
        n++;
      }
    });
    expect(n).toBe(15);
    const { module } = await importOnnx(path);
    expect(shape(print(module, { elideMetaArrays: 4 }))).toBe(shape(reference));
    expect(shape(reference)).toMatch(/@blk\.1\.ffn_down\.weight : f32\[64,128\]/);
  });
});
