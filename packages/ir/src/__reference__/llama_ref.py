"""Independent float64 reference of a Llama-family decoder (numpy only).

Written from the llama.cpp semantics (llama-graph.cpp build_attn / build_ffn,
ggml-cpu ops.cpp rms_norm / rope / soft_max), not from the TypeScript
interpreter it checks. Usage:

    python llama_ref.py CASE_DIR

CASE_DIR holds config.json (hparams, tokens, tensor manifest) and weights.bin
(float64 little-endian, tensors back to back, row-major, last dim contiguous).
Writes logits.bin (float64, [T, n_vocab]).
"""

import json
import math
import sys
from pathlib import Path

import numpy as np


def load(case: Path):
    cfg = json.loads((case / "config.json").read_text())
    raw = np.fromfile(case / "weights.bin", dtype="<f8")
    weights = {}
    for t in cfg["tensors"]:
        n = int(np.prod(t["shape"]))
        weights[t["name"]] = raw[t["offset"] : t["offset"] + n].reshape(t["shape"])
    return cfg, weights


def rms_norm(x, w, eps):
    mean_sq = np.mean(x * x, axis=-1, keepdims=True)
    return x / np.sqrt(mean_sq + eps) * w


def yarn_corr_dims(n_dims, n_ctx_orig, base, beta_fast, beta_slow):
    def corr_dim(n_rot):
        return n_dims * math.log(n_ctx_orig / (n_rot * 2 * math.pi)) / (2 * math.log(base))

    return max(0.0, math.floor(corr_dim(beta_fast))), min(n_dims - 1.0, math.ceil(corr_dim(beta_slow)))


def rope(x, n_heads, hp, freq_factors):
    """x: [T, n_heads*head_dim] -> same, rotating the first n_rot dims of each head."""
    t_len = x.shape[0]
    hd, n_rot = hp["head_dim"], hp["rope_n_rot"]
    base, scale = hp["rope_freq_base"], hp["rope_freq_scale"]
    ext, attn_factor = hp["rope_ext_factor"], hp["rope_attn_factor"]
    xh = x.reshape(t_len, n_heads, hd).copy()
    i = np.arange(n_rot // 2)  # pair index; ggml's i0 = 2i
    inv_freq = base ** (-2.0 * i / n_rot)
    if freq_factors is not None:
        inv_freq = inv_freq / freq_factors
    theta_extrap = np.arange(t_len)[:, None] * inv_freq[None, :]  # [T, n_rot/2]
    theta_interp = scale * theta_extrap
    mscale = attn_factor
    if ext != 0.0:
        low, high = yarn_corr_dims(n_rot, hp["rope_n_ctx_orig"], base, hp["rope_beta_fast"], hp["rope_beta_slow"])
        ramp = 1.0 - np.clip((i - low) / max(0.001, high - low), 0.0, 1.0)
        mix = ramp * ext
        theta = theta_interp * (1.0 - mix) + theta_extrap * mix
        mscale = attn_factor * (1.0 + 0.1 * math.log(1.0 / scale))
    else:
        theta = theta_interp
    cos = (np.cos(theta) * mscale)[:, None, :]
    sin = (np.sin(theta) * mscale)[:, None, :]
    if hp["rope_mode"] == "neox":
        a_idx, b_idx = i, i + n_rot // 2
    else:
        a_idx, b_idx = 2 * i, 2 * i + 1
    a = xh[:, :, a_idx].copy()
    b = xh[:, :, b_idx].copy()
    xh[:, :, a_idx] = a * cos - b * sin
    xh[:, :, b_idx] = a * sin + b * cos
    return xh.reshape(t_len, n_heads * hd)


def attention(q, k, v, hp):
    t_len = q.shape[0]
    nh, nkv, hd = hp["n_head"], hp["n_head_kv"], hp["head_dim"]
    qh = q.reshape(t_len, nh, hd)
    kh = np.repeat(k.reshape(t_len, nkv, hd), nh // nkv, axis=1)  # head h reads kv head h // (nh/nkv)
    vh = np.repeat(v.reshape(t_len, nkv, hd), nh // nkv, axis=1)
    scores = np.einsum("thd,shd->hts", qh, kh) * hp["attn_scale"]
    future = np.triu(np.ones((t_len, t_len), dtype=bool), k=1)
    scores = np.where(future[None], -np.inf, scores)
    scores = scores - scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p = p / p.sum(axis=-1, keepdims=True)
    return np.einsum("hts,shd->thd", p, vh).reshape(t_len, nh * hd)


def activation(x, kind):
    if kind == "silu":
        return x / (1.0 + np.exp(-x))
    if kind == "gelu_tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    raise ValueError(kind)


def forward(cfg, w, tap=None):
    """Logits [T, n_vocab]. `tap(layer, site, value)`, if given, sees each
    projection's input (site = the projection: attn_q ... ffn_down), the gate
    after its activation (ffn_gate_act) and the up output (ffn_up_out)."""
    hp = cfg["hparams"]
    tap = tap or (lambda layer, site, value: None)
    eps = hp["rms_eps"]
    tokens = np.array(cfg["tokens"], dtype=np.int64)
    ff = w.get("rope_freqs.weight")

    def proj(x, name):
        y = x @ w[f"{name}.weight"].T
        bias = w.get(f"{name}.bias")
        return y if bias is None else y + bias

    x = w["token_embd.weight"][tokens]
    for il in range(hp["n_layer"]):
        b = f"blk.{il}"
        h = rms_norm(x, w[f"{b}.attn_norm.weight"], eps)
        for site in ("attn_q", "attn_k", "attn_v"):
            tap(il, site, h)
        q = rope(proj(h, f"{b}.attn_q"), hp["n_head"], hp, ff)
        k = rope(proj(h, f"{b}.attn_k"), hp["n_head_kv"], hp, ff)
        v = proj(h, f"{b}.attn_v")
        a = attention(q, k, v, hp)
        tap(il, "attn_output", a)
        x = x + proj(a, f"{b}.attn_output")
        h = rms_norm(x, w[f"{b}.ffn_norm.weight"], eps)
        tap(il, "ffn_gate", h)
        tap(il, "ffn_up", h)
        g = activation(proj(h, f"{b}.ffn_gate"), hp["activation"])
        u = proj(h, f"{b}.ffn_up")
        tap(il, "ffn_gate_act", g)
        tap(il, "ffn_up_out", u)
        tap(il, "ffn_down", g * u)
        x = x + proj(g * u, f"{b}.ffn_down")
    x = rms_norm(x, w["output_norm.weight"], eps)
    head = w["token_embd.weight"] if hp["tied_embeddings"] else w["output.weight"]
    return x @ head.T


def main():
    case = Path(sys.argv[1])
    cfg, weights = load(case)
    logits = forward(cfg, weights).astype("<f8")
    logits.tofile(case / "logits.bin")


if __name__ == "__main__":
    main()
