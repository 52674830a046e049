"""Independent float64 reference of the CHESS, CATS and TEAL thresholds (numpy only).

Written from the method (the CHESS paper, docs: shared reference method.md §2-3),
not from the TypeScript pass it checks:

  chess, chess+   per layer: m_i = sqrt(E u_i^2) ("rms") or E|u_i| ("mean-abs") over
                  the calibration tokens; t = the s-quantile of all scores |g_i| m_i;
                  tau_i = t / m_i (a channel with m_i = 0 never contributes: the
                  largest finite float32)
  cats            per layer: one t = the s-quantile of |g|, for every channel
  chess+ inputs   attn_q and attn_output: the s-quantile of |x| at the input
  teal            all seven projection inputs: the s-quantile of |x|

The s-quantile is the smallest sample v with at least a fraction s of the samples
<= v (numpy's "inverted_cdf"); sparsity 0 gives all-zero thresholds. Results are
float32, as stored.

    python thresholds_ref.py activations CASE_DIR
        CASE_DIR as for packages/ir's llama_ref.py (config.json + weights.bin),
        config.json also holding "requests": [{method, statistic, sparsity}].
        The activations come from llama_ref's forward pass on config["tokens"].
    python thresholds_ref.py statistics CASE_DIR
        config.json holds "layers": [{upRms, upMeanAbs, quantiles}] where
        quantiles maps "score:rms", "score:mean-abs", "gate" and each projection
        to [[p, value], ...] (a profile given by its statistics), and "requests".

Writes CASE_DIR/thresholds.json: one entry per request, per layer
{"gate": [n_ff floats] or null, "inputs": {projection: float}}.
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "ir" / "src" / "__reference__"))
import llama_ref  # noqa: E402  (the independent forward pass, with taps)

PROJECTIONS = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
# which thresholds each method has (the paper's CHESS w/o and w/, CATS, TEAL)
GATE = {"chess": "channel", "chess+": "channel", "cats": "layer", "teal": None}
INPUTS = {"chess": [], "chess+": ["attn_q", "attn_output"], "cats": [], "teal": PROJECTIONS}
FLT_MAX = float(np.finfo(np.float32).max)


def quantile(values, s):
    return float(np.quantile(np.abs(np.asarray(values, dtype=np.float64)).ravel(), s, method="inverted_cdf"))


def thresholds(layers, request):
    """layers: per layer, m ('rms'/'mean-abs' -> [n_ff]) and q(site, s) -> the s-quantile."""
    method, s = request["method"], request["sparsity"]
    statistic = request.get("statistic") or "rms"
    out = []
    for layer in layers:
        gate = None
        if GATE[method] == "channel":
            m = np.asarray(layer["m"][statistic], dtype=np.float64)
            t = 0.0 if s == 0 else layer["q"](f"score:{statistic}", s)
            with np.errstate(divide="ignore"):
                tau = np.where(m > 0, t / np.where(m > 0, m, 1.0), FLT_MAX)
            tau = np.minimum(tau, FLT_MAX) if t != 0 else np.zeros_like(m)
            gate = tau.astype(np.float32)
        elif GATE[method] == "layer":
            n_ff = len(layer["m"]["rms"])
            gate = np.full(n_ff, 0.0 if s == 0 else min(layer["q"]("gate", s), FLT_MAX), dtype=np.float32)
        inputs = {p: float(np.float32(0.0 if s == 0 else layer["q"](p, s))) for p in INPUTS[method]}
        out.append({"gate": None if gate is None else [float(v) for v in gate], "inputs": inputs})
    return out


def from_activations(cfg, weights):
    sites = {}
    llama_ref.forward(cfg, weights, tap=lambda il, site, value: sites.setdefault(il, {}).__setitem__(site, value))
    layers = []
    for il in range(cfg["hparams"]["n_layer"]):
        a = sites[il]
        g, u = a["ffn_gate_act"], a["ffn_up_out"]
        m = {"rms": np.sqrt(np.mean(u * u, axis=0)), "mean-abs": np.mean(np.abs(u), axis=0)}
        samples = {f"score:{k}": np.abs(g) * v[None, :] for k, v in m.items()}
        samples["gate"] = g
        samples.update({p: a[p] for p in PROJECTIONS})
        layers.append({"m": m, "q": lambda site, s, samples=samples: quantile(samples[site], s)})
    return layers


def from_statistics(cfg):
    layers = []
    for layer in cfg["layers"]:
        table = {site: dict((p, v) for p, v in pairs) for site, pairs in layer["quantiles"].items()}
        m = {"rms": layer["upRms"], "mean-abs": layer["upMeanAbs"]}
        layers.append({"m": m, "q": lambda site, s, table=table: float(table[site][s])})
    return layers


def main():
    mode, case = sys.argv[1], Path(sys.argv[2])
    if mode == "activations":
        cfg, weights = llama_ref.load(case)
        layers = from_activations(cfg, weights)
    elif mode == "statistics":
        cfg = json.loads((case / "config.json").read_text())
        layers = from_statistics(cfg)
    else:
        raise SystemExit(f"unknown mode {mode}: activations or statistics")
    result = [{**r, "layers": thresholds(layers, r)} for r in cfg["requests"]]
    (case / "thresholds.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
