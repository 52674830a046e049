import type { Kernel } from '../interpreter.ts';

/**
 * build_attn_mha without flash attention: kq = k.q per head, softmax of
 * scale * kq with the causal mask (ggml_soft_max_ext, max subtracted), then
 * kqv = v.softmax. Query head h reads kv head floor(h / (n_head / n_head_kv)).
 */
export const attention: Kernel = ({ inputs: [q, k, v], attrs }) => {
  const t = q!.shape[0]!;
  const nHead = attrs.n_head as number;
  const nHeadKv = attrs.n_head_kv as number;
  const hd = attrs.head_dim as number;
  const scale = attrs.scale as number;
  const causal = attrs.causal as boolean;
  const group = nHead / nHeadKv;
  const qw = nHead * hd;
  const kw = nHeadKv * hd;
  const out = new Float64Array(t * qw);
  const p = new Float64Array(t);
  for (let h = 0; h < nHead; h++) {
    const kvh = Math.floor(h / group);
    for (let i = 0; i < t; i++) {
      const last = causal ? i : t - 1;
      let max = -Infinity;
      for (let j = 0; j <= last; j++) {
        let dot = 0;
        for (let c = 0; c < hd; c++) dot += q!.data[i * qw + h * hd + c]! * k!.data[j * kw + kvh * hd + c]!;
        p[j] = dot * scale;
        if (p[j]! > max) max = p[j]!;
      }
      let sum = 0;
      for (let j = 0; j <= last; j++) {
        p[j] = Math.exp(p[j]! - max);
        sum += p[j]!;
      }
      for (let c = 0; c < hd; c++) {
        let acc = 0;
        for (let j = 0; j <= last; j++) acc += p[j]! * v!.data[j * kw + kvh * hd + c]!;
        out[i * qw + h * hd + c] = acc / sum;
      }
    }
  }
  return { shape: [t, qw], data: out };
};
