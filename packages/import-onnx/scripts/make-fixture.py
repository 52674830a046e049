#!/usr/bin/env python3
"""An ONNX file made by an independent exporter, for the importer's cross-check.

Builds a tiny random-weight Llama with transformers (LlamaForCausalLM, seeded),
exports it with torch.onnx.export, checks it with onnx.checker and runs it once
in onnxruntime, and records the versions used next to it:

    python make-fixture.py --out DIR [--seed 0] [--tied] [--dynamo|--torchscript]

writes DIR/model.onnx (plus DIR/model.onnx.data when the exporter puts the
weights in external data) and DIR/versions.json. The vocabulary has SmolLM2's
size (49152) so the GGUF converted from it can carry SmolLM2's tokenizer and
load in stock llama.cpp. Requirements: scripts/requirements.txt (cross-checks
only; never on the product's path).
"""
import argparse
import json
import os
import platform
import sys


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tied", action="store_true", help="tie the output head to the embedding")
    ap.add_argument("--torchscript", action="store_true", help="the TorchScript exporter (dynamo=False) instead of the default dynamo one")
    args = ap.parse_args()

    import numpy as np
    import onnx
    import onnxruntime
    import torch
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(args.seed)
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=args.tied,
        attention_bias=False,
        mlp_bias=False,
        hidden_act="silu",
        use_cache=False,
    )
    model = LlamaForCausalLM(config).eval()
    # transformers initialises with std 0.02; larger weights give the logits some spread to compare
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.08 * torch.randn_like(p))

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids):
            return self.inner(input_ids=input_ids, use_cache=False).logits

    wrapper = Logits(model).eval()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "model.onnx")
    ids = torch.tensor([[1, 17, 3000, 42, 9000, 5]], dtype=torch.long)
    if args.torchscript:
        torch.onnx.export(wrapper, (ids,), path, input_names=["input_ids"], output_names=["logits"],
                          dynamic_axes={"input_ids": {1: "seq"}, "logits": {1: "seq"}}, opset_version=17, dynamo=False)
    else:
        seq = torch.export.Dim("seq", min=1, max=256)
        program = torch.onnx.export(wrapper, (ids,), input_names=["input_ids"], output_names=["logits"],
                                    dynamic_shapes={"input_ids": {1: seq}}, dynamo=True)
        program.save(path)
    onnx.checker.check_model(path)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {"input_ids": ids.numpy()})[0]
    with torch.no_grad():
        want = wrapper(ids).numpy()
    err = float(np.max(np.abs(got - want)))
    loaded = onnx.load(path, load_external_data=False)
    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "exporter": "torch.onnx.export(dynamo=False, opset 17)" if args.torchscript else "torch.onnx.export(dynamo=True)",
        "opset": [{"domain": o.domain, "version": o.version} for o in loaded.opset_import],
        "seed": args.seed,
        "tied": args.tied,
        "config": config.to_dict(),
        "onnxruntime_vs_torch_max_abs": err,
    }
    with open(os.path.join(args.out, "versions.json"), "w") as f:
        json.dump(versions, f, indent=1, default=str)
    if err > 1e-3:
        sys.exit(f"onnxruntime and torch disagree on the exported model: max abs {err}")
    print(path)


if __name__ == "__main__":
    main()
