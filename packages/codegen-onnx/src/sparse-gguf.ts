/**
 * A dense or sparse GGUF into the IR, for export. A dense file goes through
 * @chess/import-gguf. A sparse file (docs/gguf-sparse.md: architecture
 * `chess`) is read back into the ops the CHESS pass produced: the base
 * architecture's decoder, then per the tensors present
 *
 *   blk.N.<proj>_cb.weight / _t.weight  linear -> sparse_linear_in {layout}
 *   blk.N.<proj>_in_tau                 linear(x) -> linear(threshold(x, tau))
 *   blk.N.ffn_gate_tau                  mul(act(gate), linear(x, W_up)) -> sparse_linear_out(x, W_up, act(gate), tau)
 */
import { ChessError } from '@chess/core';
import { ggmlTypeName, GGUFValueType, openGGUF, type GGUFFile } from '@chess/gguf';
import { metaEntryFromGGUF, moduleFromGGUF, readLlamaHParams } from '@chess/import-gguf';
import { buildLlamaModule, isDType, Node, shapeFromGgmlNe, verify, WeightRef, type Module, type Weight } from '@chess/ir';
import { contractNames, parseContractTensor, SPARSE_GGUF } from '@chess/contract';
import { registerSparseOps } from '@chess/pass-chess';

export interface GGUFModule {
  readonly module: Module;
  readonly file: GGUFFile;
  readonly sparse: boolean;
}

export async function importDenseOrSparseGGUF(path: string): Promise<GGUFModule> {
  const file = await openGGUF(path);
  try {
    const arch = file.metadata.has('general.architecture') ? file.metadata.getString('general.architecture') : '';
    if (arch !== 'chess') return { module: moduleFromGGUF(file), file, sparse: false };
    return { module: sparseModule(file), file, sparse: true };
  } catch (error) {
    await file.close();
    throw error;
  }
}

function sparseModule(file: GGUFFile): Module {
  registerSparseOps();
  const { metadata } = file;
  const baseKey = SPARSE_GGUF.keys.baseArchitecture;
  if (!metadata.has(baseKey)) throw new ChessError('ONNX_EXPORT_SPARSE', `${file.path}: a sparse GGUF without '${baseKey}'`, { path: file.path });
  const base = metadata.getString(baseKey);
  const tokens = metadata.get('tokenizer.ggml.tokens');
  const nVocab = tokens && tokens.type === GGUFValueType.ARRAY ? tokens.items.length : 0;
  const hparams = readLlamaHParams(base, metadata, nVocab);

  const weights: Weight[] = file.tensors.map((t) => {
    const dtype = ggmlTypeName(t.type);
    if (!isDType(dtype)) throw new ChessError('IMPORT_UNSUPPORTED_TENSOR_TYPE', `${file.path}: tensor '${t.name}' has type ${dtype}, which the IR does not know`, { path: file.path, tensor: t.name });
    return { name: t.name, dtype, shape: shapeFromGgmlNe(t.shape), source: { kind: 'file', file: 'model', offset: t.fileOffset, byteLength: t.byteLength } };
  });
  // the decoder reads blk.N.<proj>.weight: a stand-in (logical shape [n_out, n_in]) where the file holds another layout
  const replaced = new Map<string, { real: string; layout: 'column-blocks' | 'transposed' }>();
  const standIns: Weight[] = [];
  for (const w of weights) {
    const c = parseContractTensor(w.name);
    if (c?.kind !== 'columnBlocks' && c?.kind !== 'transposed') continue;
    const dense = contractNames.weight(c.layer, c.proj!);
    const shape = c.kind === 'transposed' ? [w.shape[1]!, w.shape[0]!] : [...w.shape];
    replaced.set(dense, { real: w.name, layout: c.kind === 'transposed' ? 'transposed' : 'column-blocks' });
    standIns.push({ name: dense, dtype: 'f32', shape, source: { kind: 'memory' } });
  }
  const m = buildLlamaModule({ ...hparams, arch: base }, { tensors: [...weights, ...standIns] });
  m.addSource('model', file.path);
  m.meta = [...metadata].map(([key, value]) => metaEntryFromGGUF(key, value));

  const linearOf = (layer: number, proj: string): Node => {
    const dense = `blk.${layer}.${proj}.weight`;
    const real = replaced.get(dense)?.real ?? dense;
    const node = m.nodes.find((n) => (n.op === 'linear' || n.op === 'sparse_linear_in') && n.operands[1] instanceof WeightRef && (n.operands[1].name === dense || n.operands[1].name === real));
    if (!node) throw new ChessError('ONNX_EXPORT_SPARSE', `${file.path}: no projection ${proj} in layer ${layer} for its sparse tensors`, { path: file.path, layer, proj });
    return node;
  };
  for (const [dense, { real, layout }] of replaced) {
    const c = parseContractTensor(dense)!;
    const node = linearOf(c.layer, c.proj!);
    node.op = 'sparse_linear_in';
    node.attrs = { ...node.attrs, layout };
    node.operands[1] = new WeightRef(real);
    m.removeWeight(dense);
  }
  for (const w of weights) {
    const c = parseContractTensor(w.name);
    if (c?.kind === 'inputTau') {
      const node = linearOf(c.layer, c.proj!);
      const th = m.create('threshold', [node.operands[0]!, w.name], { layer: c.layer }, `${c.proj}_in.${c.layer}`);
      m.nodes.splice(m.nodes.indexOf(node), 0, th);
      node.operands[0] = th;
    } else if (c?.kind === 'gateTau') {
      const up = linearOf(c.layer, 'ffn_up');
      const par = m.nodes.find((n) => n.op === 'mul' && n.operands.includes(up));
      const act = par?.operands.find((o) => o !== up);
      if (!par || !(act instanceof Node) || act.op !== 'activation') {
        throw new ChessError('ONNX_EXPORT_SPARSE', `${file.path}: layer ${c.layer}: ${w.name} needs mul(activation(gate), up)`, { path: file.path, layer: c.layer });
      }
      const fused = m.create('sparse_linear_out', [up.operands[0]!, up.operands[1]!, act, w.name], { layer: c.layer }, par.name);
      m.nodes[m.nodes.indexOf(par)] = fused;
      m.replaceAllUses(par, fused);
      m.nodes.splice(m.nodes.indexOf(up), 1);
    }
  }
  // every tensor of the file is used now or was carried along (`keep`) by the builder
  for (const name of m.usedWeights()) {
    const w = m.weight(name)!;
    if (w.keep) m.weights.set(name, { ...w, keep: false });
  }
  verify(m);
  return m;
}
