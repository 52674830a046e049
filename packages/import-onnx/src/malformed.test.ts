/**
 * Malformed ONNX files fail with a clear, coded error (ChessError) naming the
 * node, initializer or file, and no GGUF is written: truncated protobuf,
 * missing initializer, dangling input, wrong element types, external data
 * missing or short, an unsupported op. Then a seeded fuzz of the protobuf
 * bytes: every mutated file either imports or fails with a ChessError, never
 * another exception. The files are derived from the torch.onnx.export fixture
 * (scripts/make-fixture.py, cached), re-encoded with onnx-proto.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emitGGUF } from '@chess/codegen-gguf';
import { isChessError } from '@chess/core';
import { importOnnx } from './import.ts';
import { onnx } from './onnx-proto.ts';
import { torchFixture } from './testing/torch-fixture.ts';

let work: string;
let source: Uint8Array;
/** The fixture with every initializer over 1 KiB in external data (`ext/model.onnx` + `ext/model.onnx.data`). */
let external: string;

beforeAll(async () => {
  const fixture = await torchFixture({ seed: 0 });
  source = await readFile(fixture.model);
  work = await mkdtemp(join(tmpdir(), 'chess-onnx-malformed-'));
  external = await writeVariant('ext', (m) => m);
}, 3_600_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function decode(): onnx.ModelProto {
  return onnx.ModelProto.decode(source) as unknown as onnx.ModelProto;
}

/** A modified copy of the fixture in `work/<name>/model.onnx`, its large initializers in external data. */
async function writeVariant(name: string, edit: (m: onnx.ModelProto) => void | onnx.ModelProto, options: { external?: boolean } = { external: true }): Promise<string> {
  const m = decode();
  const dir = join(work, name);
  const { mkdir } = await import('node:fs/promises');
  await mkdir(dir, { recursive: true });
  if (options.external !== false) {
    const parts: Uint8Array[] = [];
    let offset = 0;
    for (const t of m.graph!.initializer) {
      if (!t.rawData || t.rawData.byteLength < 1024) continue;
      parts.push(t.rawData);
      t.externalData = [
        { key: 'location', value: 'model.onnx.data' },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(t.rawData.byteLength) },
      ] as never;
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      offset += t.rawData.byteLength;
      t.rawData = new Uint8Array(0);
    }
    await writeFile(join(dir, 'model.onnx.data'), Buffer.concat(parts));
  }
  const edited = edit(m) ?? m;
  const path = join(dir, 'model.onnx');
  await writeFile(path, onnx.ModelProto.encode(edited as never).finish());
  return path;
}

/** Import then emit, as `chess import` does: the error, and whether an output appeared. */
async function importFails(path: string): Promise<{ code: string; message: string; wrote: boolean }> {
  const out = join(work, `out-${Math.random().toString(36).slice(2)}.gguf`);
  try {
    const { module } = await importOnnx(path);
    await emitGGUF(module, out);
  } catch (error) {
    if (!isChessError(error)) throw error;
    return { code: error.code, message: error.message, wrote: existsSync(out) };
  }
  throw new Error(`${path} imported without error`);
}

describe('malformed ONNX files', () => {
  it('imports the external-data variant (the base of the cases below)', async () => {
    const { module, match } = await importOnnx(external);
    expect(match.layers.length).toBe(2);
    expect([...module.sources.values()].some((p) => p.endsWith('model.onnx.data'))).toBe(true);
  });

  it('truncated protobuf: ONNX_PARSE naming the file', async () => {
    for (const keep of [7, 1000, source.byteLength >> 1, source.byteLength - 3]) {
      const path = join(work, `truncated-${keep}.onnx`);
      await writeFile(path, source.subarray(0, keep));
      const e = await importFails(path);
      expect(e.code, `truncated to ${keep} bytes`).toMatch(/^ONNX_(PARSE|STRUCTURE|DANGLING_INPUT|INITIALIZER_SIZE)$/);
      expect(e.message).toContain(path);
      expect(e.wrote).toBe(false);
    }
  });

  it('missing initializer: ONNX_DANGLING_INPUT naming the node and the value', async () => {
    let removed = '';
    const path = await writeVariant('missing-init', (m) => {
      const i = m.graph!.initializer.findIndex((t) => t.dims.length === 2 && Number(t.dims[0]) === 64 && Number(t.dims[1]) === 128);
      removed = m.graph!.initializer[i]!.name;
      m.graph!.initializer.splice(i, 1);
    });
    const e = await importFails(path);
    expect(e.code).toBe('ONNX_DANGLING_INPUT');
    expect(e.message).toContain(`'${removed}'`);
    expect(e.message).toMatch(/node '.+' \(MatMul\)/);
    expect(e.wrote).toBe(false);
  });

  it('dangling input: ONNX_DANGLING_INPUT naming the node', async () => {
    const path = await writeVariant('dangling', (m) => {
      const sig = m.graph!.node.find((n) => n.opType === 'Sigmoid')!;
      sig.input[0] = 'no_such_value';
    });
    const e = await importFails(path);
    expect(e.code).toBe('ONNX_DANGLING_INPUT');
    expect(e.message).toContain("'no_such_value'");
    expect(e.message).toContain('(Sigmoid)');
  });

  it('wrong element types: ONNX_DTYPE naming the initializer', async () => {
    const asString = await writeVariant('dtype-string', (m) => {
      m.graph!.initializer.find((t) => t.name.endsWith('norm.weight'))!.dataType = onnx.TensorProto.DataType.STRING;
    });
    const e1 = await importFails(asString);
    expect(e1.code).toBe('ONNX_DTYPE');
    expect(e1.message).toMatch(/initializer '.*norm\.weight' has element type string/);
    // same byte width as float: passes the size check, refused where a float weight is expected
    let name = '';
    const asInt = await writeVariant('dtype-int32', (m) => {
      const t = m.graph!.initializer.find((x) => x.dims.length === 2 && Number(x.dims[1]) === 128)!;
      name = t.name;
      t.dataType = onnx.TensorProto.DataType.INT32;
    });
    const e2 = await importFails(asInt);
    expect(e2.code).toBe('ONNX_DTYPE');
    expect(e2.message).toContain(`'${name}'`);
    expect(e2.message).toContain('int32');
    expect(e2.wrote).toBe(false);
  });

  it('external data file missing or short: ONNX_EXTERNAL_DATA naming the file', async () => {
    const missing = await writeVariant('ext-missing', (m) => m);
    await rm(join(work, 'ext-missing', 'model.onnx.data'));
    const e1 = await importFails(missing);
    expect(e1.code).toBe('ONNX_EXTERNAL_DATA');
    expect(e1.message).toContain(join(work, 'ext-missing', 'model.onnx.data'));
    expect(e1.message).toContain('missing');
    const short = await writeVariant('ext-short', (m) => m);
    await truncate(join(work, 'ext-short', 'model.onnx.data'), 1000);
    const e2 = await importFails(short);
    expect(e2.code).toBe('ONNX_EXTERNAL_DATA');
    expect(e2.message).toMatch(/model\.onnx\.data' has 1000 bytes, the tensor needs bytes/);
    const escape = await writeVariant('ext-escape', (m) => {
      m.graph!.initializer.find((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL)!.externalData[0]!.value = '../../etc/passwd';
    });
    expect((await importFails(escape)).code).toBe('ONNX_EXTERNAL_DATA');
  });

  it('an unsupported op and an unrecognised structure: the node, its op type and what was expected', async () => {
    const unsupported = await writeVariant('op', (m) => {
      m.graph!.node.find((n) => n.opType === 'Sigmoid')!.opType = 'HardSigmoid';
    });
    const e1 = await importFails(unsupported);
    expect(e1.code).toBe('ONNX_UNSUPPORTED_OP');
    expect(e1.message).toContain('(HardSigmoid)');
    const structure = await writeVariant('structure', (m) => {
      // the first layer's SiLU multiplies the gate by itself: no x * Sigmoid(x)
      const silu = m.graph!.node.find((n) => n.opType === 'Mul' && n.input.some((i) => m.graph!.node.find((s) => s.opType === 'Sigmoid' && s.output[0] === i)))!;
      silu.input = [silu.input[0]!, silu.input[0]!];
    });
    const e2 = await importFails(structure);
    expect(e2.code).toBe('ONNX_STRUCTURE');
    expect(e2.message).toMatch(/node '.+' \(\w+\): expected layer 0: /);
  });

  it('seeded fuzz of the protobuf bytes: a valid import or a ChessError, never another exception', async () => {
    const bytes = await readFile(external);
    const codes = new Map<string, number>();
    let imported = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ at: fc.nat({ max: bytes.byteLength - 1 }), value: fc.nat({ max: 255 }) }), { minLength: 1, maxLength: 8 }),
        fc.option(fc.nat({ max: bytes.byteLength }), { freq: 4 }),
        async (flips, cut) => {
          const mutated = Uint8Array.from(bytes);
          for (const f of flips) mutated[f.at] = f.value;
          const path = join(work, 'ext', 'fuzz.onnx');
          await writeFile(path, cut === null ? mutated : mutated.subarray(0, cut));
          try {
            await importOnnx(path);
            imported++;
          } catch (error) {
            if (!isChessError(error)) throw error;
            codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
          }
        },
      ),
      { seed: 20261207, numRuns: 300 },
    );
    process.stderr.write(`fuzz: ${imported} imported, refused: ${JSON.stringify(Object.fromEntries(codes))}\n`);
    expect([...codes.keys()].every((c) => c.startsWith('ONNX_') || c.startsWith('IR_') || c.startsWith('LLAMA_'))).toBe(true);
  }, 600_000);
});
