"""Independent float64 reference of the CHESS calibration statistics (numpy + gguf-py).

Not derived from the code under test: the model is read and dequantized with
gguf-py (PyPI `gguf`), and a float64 Llama decoder (adapted from
packages/ir/src/__reference__/llama_ref.py, written from the llama.cpp
semantics) runs each token window on its own. Usage:

    python profile_ref.py MODEL.gguf TOKENS.i32 CTX OUT.json

TOKENS.i32: int32 little-endian token ids, windows of CTX tokens back to back
(the windows chess-profile evaluated). Writes, per layer:
  up_mean_abs[n_ff] = E|u_i|, up_rms[n_ff] = sqrt(E u_i^2)   (u = W_up x)
  quantiles (exact sample quantiles: the smallest v with >= p*n values <= v) at
  P of: gate_abs |act(W_gate x)|, score_rms |g_i|*rms_i, score_mean_abs
  |g_i|*mean_abs_i, and |x| of the inputs of q/k/v, o, gate/up, down.
"""

import json
import math
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

P = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]


def field(reader, key):
    f = reader.fields[key]
    return f.contents()


def load(path):
    r = GGUFReader(path)
    arch = field(r, "general.architecture")
    if arch != "llama":
        raise SystemExit(f"profile_ref.py: only llama is supported, got {arch}")
    hp = {
        "n_layer": int(field(r, "llama.block_count")),
        "n_embd": int(field(r, "llama.embedding_length")),
        "n_ff": int(field(r, "llama.feed_forward_length")),
        "n_head": int(field(r, "llama.attention.head_count")),
        "n_head_kv": int(field(r, "llama.attention.head_count_kv")),
        "eps": float(field(r, "llama.attention.layer_norm_rms_epsilon")),
        "freq_base": float(field(r, "llama.rope.freq_base")),
    }
    hp["head_dim"] = hp["n_embd"] // hp["n_head"]
    w = {}
    for t in r.tensors:
        if t.name == "output.weight":
            continue
        a = dequantize(t.data, t.tensor_type).astype(np.float64)
        w[t.name] = a.reshape([int(d) for d in reversed(t.shape)]) if a.ndim > 1 or len(t.shape) > 1 else a
    return hp, w


def rms_norm(x, g, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g


def rope_norm(x, n_heads, hd, base):
    """llama.cpp LLAMA_ROPE_TYPE_NORM: rotate adjacent pairs (2i, 2i+1) of each head."""
    t_len = x.shape[0]
    xh = x.reshape(t_len, n_heads, hd).copy()
    i = np.arange(hd // 2)
    theta = np.arange(t_len)[:, None] * (base ** (-2.0 * i / hd))[None, :]
    cos, sin = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    a, b = xh[:, :, 2 * i].copy(), xh[:, :, 2 * i + 1].copy()
    xh[:, :, 2 * i] = a * cos - b * sin
    xh[:, :, 2 * i + 1] = a * sin + b * cos
    return xh.reshape(t_len, n_heads * hd)


def attention(q, k, v, hp):
    t_len = q.shape[0]
    nh, nkv, hd = hp["n_head"], hp["n_head_kv"], hp["head_dim"]
    qh = q.reshape(t_len, nh, hd)
    kh = np.repeat(k.reshape(t_len, nkv, hd), nh // nkv, axis=1)
    vh = np.repeat(v.reshape(t_len, nkv, hd), nh // nkv, axis=1)
    s = np.einsum("thd,shd->hts", qh, kh) / math.sqrt(hd)
    s = np.where(np.triu(np.ones((t_len, t_len), dtype=bool), k=1)[None], -np.inf, s)
    s = np.exp(s - s.max(axis=-1, keepdims=True))
    s = s / s.sum(axis=-1, keepdims=True)
    return np.einsum("hts,shd->thd", s, vh).reshape(t_len, nh * hd)


def silu(x):
    return x / (1.0 + np.exp(-x))


def window_activations(hp, w, tokens):
    """Yield per layer (attn_in, o_in, ffn_in, gate_pre, up, down_in) for one window."""
    x = w["token_embd.weight"][tokens]
    for il in range(hp["n_layer"]):
        b = f"blk.{il}"
        h = rms_norm(x, w[f"{b}.attn_norm.weight"], hp["eps"])
        q = rope_norm(h @ w[f"{b}.attn_q.weight"].T, hp["n_head"], hp["head_dim"], hp["freq_base"])
        k = rope_norm(h @ w[f"{b}.attn_k.weight"].T, hp["n_head_kv"], hp["head_dim"], hp["freq_base"])
        v = h @ w[f"{b}.attn_v.weight"].T
        o_in = attention(q, k, v, hp)
        x = x + o_in @ w[f"{b}.attn_output.weight"].T
        f = rms_norm(x, w[f"{b}.ffn_norm.weight"], hp["eps"])
        gate_pre = f @ w[f"{b}.ffn_gate.weight"].T
        up = f @ w[f"{b}.ffn_up.weight"].T
        down_in = silu(gate_pre) * up
        x = x + down_in @ w[f"{b}.ffn_down.weight"].T
        yield il, h, o_in, f, gate_pre, up, down_in


def quantiles(values):
    v = np.sort(np.abs(np.ravel(values)))
    n = v.size
    return [float(v[max(0, math.ceil(p * n) - 1)]) for p in P]


def main():
    model, tok_path, ctx, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    hp, w = load(model)
    ids = np.fromfile(tok_path, dtype="<i4").astype(np.int64)
    if ids.size == 0 or ids.size % ctx:
        raise SystemExit("token file is not a whole number of windows")
    windows = ids.reshape(-1, ctx)
    L, nff = hp["n_layer"], hp["n_ff"]
    sum_abs = np.zeros((L, nff))
    sum_sq = np.zeros((L, nff))
    keep = {k: [[] for _ in range(L)] for k in ["gate_pre", "in_attn_qkv", "in_attn_output", "in_ffn_gate_up", "in_ffn_down"]}
    for win in windows:
        for il, h, o_in, f, gate_pre, up, down_in in window_activations(hp, w, win):
            sum_abs[il] += np.abs(up).sum(axis=0)
            sum_sq[il] += (up * up).sum(axis=0)
            keep["gate_pre"][il].append(gate_pre.astype(np.float32))
            keep["in_attn_qkv"][il].append(h.astype(np.float32))
            keep["in_attn_output"][il].append(o_in.astype(np.float32))
            keep["in_ffn_gate_up"][il].append(f.astype(np.float32))
            keep["in_ffn_down"][il].append(down_in.astype(np.float32))
    n = ids.size
    layers = []
    for il in range(L):
        mean_abs = sum_abs[il] / n
        rms = np.sqrt(sum_sq[il] / n)
        g = np.abs(silu(np.concatenate(keep["gate_pre"][il]).astype(np.float64)))
        layers.append(
            {
                "up_mean_abs": mean_abs.tolist(),
                "up_rms": rms.tolist(),
                "quantiles": {
                    "gate_abs": quantiles(g),
                    "score_rms": quantiles(g * rms[None, :]),
                    "score_mean_abs": quantiles(g * mean_abs[None, :]),
                    **{k: quantiles(np.concatenate(keep[k][il])) for k in ["in_attn_qkv", "in_attn_output", "in_ffn_gate_up", "in_ffn_down"]},
                },
            }
        )
    with open(out, "w") as fh:
        json.dump({"p": P, "tokens": int(n), "layers": layers}, fh)


if __name__ == "__main__":
    main()
