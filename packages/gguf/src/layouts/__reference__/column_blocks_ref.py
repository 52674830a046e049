"""Independent reference for the column-block layout (docs/gguf-sparse.md §3.1).

Written from the spec with numpy, sharing no code with the TypeScript movers:
the stored values are unpacked from ggml's blocks the way gguf-py's own
dequantizers unpack them (stopping before the scales are applied), and the
group records are assembled plane by plane as the spec describes.

  column_blocks_ref.py build JOBS.json
      Each job: {"type": ggml id, "n_in", "n_out", "source": "synth" | GGUF path,
      "tensor": name (GGUF source), "seed": int (synth), "rows", "cb", "values":
      output paths}. Writes the source tensor in ggml's row layout (synthetic:
      gguf-py's quantizer where it has one, random blocks with finite fp16 scales
      for the K-quants), the column-block bytes built from the spec, and gguf-py's
      dequantized values of the source (float32, n_out rows of n_in).
  column_blocks_ref.py read JOBS.json
      Each job: {"type", "n_in", "n_out", "cb": column-block bytes (to read),
      "values": output path}. Decodes every value (row r, channel c) straight
      from the column-block bytes per the spec (scale section + planes) and
      writes them as float32 (n_out rows of n_in), for comparison with gguf-py's
      dequantization of the source.
"""

import json
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

# spec table: scale fields (name, bytes per row) and planes of the column record
SPEC = {
    T.F32: ([], ["raw"]),
    T.F16: ([], ["raw"]),
    T.BF16: ([], ["raw"]),
    T.Q8_0: ([("d", 2)], ["raw"]),
    T.Q4_0: ([("d", 2)], ["nibble"]),
    T.Q4_1: ([("d", 2), ("m", 2)], ["nibble"]),
    T.Q5_0: ([("d", 2)], ["nibble", "bit"]),
    T.Q5_1: ([("d", 2), ("m", 2)], ["nibble", "bit"]),
    T.Q4_K: ([("d", 2), ("dmin", 2), ("scales", 12)], ["nibble"]),
    T.Q5_K: ([("d", 2), ("dmin", 2), ("scales", 12)], ["nibble", "bit"]),
    T.Q6_K: ([("d", 2), ("scales", 16)], ["nibble", "crumb"]),
}
RAW_BYTES = {T.F32: 4, T.F16: 2, T.BF16: 2, T.Q8_0: 1}


def nibbles(qs: np.ndarray, run: int) -> np.ndarray:
    """qs [..., k*run] -> [..., k*2*run]: each run of bytes gives its low nibbles, then its high nibbles."""
    shape = qs.shape[:-1]
    q = qs.reshape(shape + (-1, 1, run)) >> np.array([0, 4], dtype=np.uint8).reshape((1, 2, 1))
    return (q & 0x0F).reshape(shape + (-1,))


def unpack(qtype, blocks: np.ndarray):
    """blocks [R, G, S] -> (scale fields {name: [R, G, bytes]}, stored values [R, G, B] (unsigned) or raw bytes [R, G, B, n])."""
    if qtype in (T.F32, T.F16, T.BF16):
        return {}, blocks.reshape(blocks.shape[:2] + (1, RAW_BYTES[qtype]))
    if qtype == T.Q8_0:
        return {"d": blocks[..., 0:2]}, blocks[..., 2:34].reshape(blocks.shape[:2] + (32, 1))
    if qtype == T.Q4_0:
        return {"d": blocks[..., 0:2]}, nibbles(blocks[..., 2:18], 16)
    if qtype == T.Q4_1:
        return {"d": blocks[..., 0:2], "m": blocks[..., 2:4]}, nibbles(blocks[..., 4:20], 16)
    if qtype in (T.Q5_0, T.Q5_1):
        at = 2 if qtype == T.Q5_0 else 4
        fields = {"d": blocks[..., 0:2]} if qtype == T.Q5_0 else {"d": blocks[..., 0:2], "m": blocks[..., 2:4]}
        qh = np.ascontiguousarray(blocks[..., at : at + 4]).view("<u4")  # [R, G, 1]
        high = ((qh >> np.arange(32, dtype=np.uint32)) & 1).astype(np.uint8)  # bit j = element j
        return fields, nibbles(blocks[..., at + 4 : at + 20], 16) | (high << 4)
    if qtype in (T.Q4_K, T.Q5_K):
        fields = {"d": blocks[..., 0:2], "dmin": blocks[..., 2:4], "scales": blocks[..., 4:16]}
        if qtype == T.Q4_K:
            return fields, nibbles(blocks[..., 16:144], 32)
        qh = blocks[..., 16:48]  # [R, G, 32]
        # sub-block j (32 elements) takes bit j of qh[l] for its element l
        high = ((qh[..., None, :] >> np.arange(8, dtype=np.uint8)[:, None]) & 1).reshape(blocks.shape[:2] + (256,))
        return fields, nibbles(blocks[..., 48:176], 32) | (high << 4)
    if qtype == T.Q6_K:
        fields = {"d": blocks[..., 208:210], "scales": blocks[..., 192:208]}
        # per half h (64 ql bytes): the low nibbles of ql[0..63], then their high nibbles, are elements 0..127
        # of the half in order (runs k = 0..3 of 32: ql[l], ql[l + 32] low; ql[l], ql[l + 32] high)
        low = nibbles(blocks[..., 0:128], 64).reshape(blocks.shape[:2] + (2, 4, 32))
        # bits 4..5 of run k, element l: bits 2k..2k+1 of qh[32h + l]
        qh = blocks[..., 128:192].reshape(blocks.shape[:2] + (2, 1, 32))
        high = (qh >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape((4, 1))) & 3
        return fields, (low | (high << 4)).reshape(blocks.shape[:2] + (256,))
    raise ValueError(f"no column-block layout for {qtype.name}")


def build(qtype, rows: bytes, n_in: int, n_out: int) -> bytes:
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    groups = n_in // block_size
    blocks = np.frombuffer(rows, dtype=np.uint8).reshape((n_out, groups, type_size))
    fields, values = unpack(qtype, blocks)
    scale_fields, planes = SPEC[qtype]
    out = []
    for g in range(groups):
        for name, size in scale_fields:
            assert fields[name].shape[-1] == size
            out.append(np.ascontiguousarray(fields[name][:, g, :]).tobytes())  # row r's bytes, rows in order
        for c in range(block_size):
            if planes == ["raw"]:
                out.append(np.ascontiguousarray(values[:, g, c, :]).tobytes())
                continue
            v = values[:, g, c].astype(np.uint32).reshape((n_out // 32, 32))  # unit u, row b of the unit
            for plane in planes:
                if plane == "nibble":
                    out.append(((v[:, :16] & 15) | ((v[:, 16:] & 15) << 4)).astype(np.uint8).tobytes())
                elif plane == "bit":
                    word = (((v >> 4) & 1) << np.arange(32, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)
                    out.append(word.astype("<u4").tobytes())
                elif plane == "crumb":
                    crumbs = ((v >> 4) & 3).reshape((n_out // 32, 4, 8))  # unit, k, b: row 8k + b
                    byte = (crumbs << (2 * np.arange(4, dtype=np.uint32)).reshape((1, 4, 1))).sum(axis=1, dtype=np.uint32)
                    out.append(byte.astype(np.uint8).tobytes())
    result = b"".join(out)
    assert len(result) == len(rows)
    return result


def scale_min_k4(scales: np.ndarray):
    """Q4_K / Q5_K packed scales [R, 12] -> (sc [R, 8], min [R, 8]) (ggml's get_scale_min_k4)."""
    s = scales.astype(np.uint8)
    sc = np.concatenate([s[:, 0:4] & 63, (s[:, 8:12] & 15) | ((s[:, 0:4] >> 6) << 4)], axis=1)
    mn = np.concatenate([s[:, 4:8] & 63, (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)], axis=1)
    return sc, mn


def read(qtype, cb: bytes, n_in: int, n_out: int) -> np.ndarray:
    """The float value of every (row, channel), decoded straight from column-block bytes per the spec."""
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    scale_fields, planes = SPEC[qtype]
    data = np.frombuffer(cb, dtype=np.uint8)
    R = n_out
    out = np.zeros((R, n_in), dtype=np.float32)
    at = 0
    for g in range(n_in // block_size):
        fields = {}
        for name, size in scale_fields:
            fields[name] = data[at : at + R * size].reshape((R, size))
            at += R * size
        for c in range(block_size):
            if planes == ["raw"]:
                raw = data[at : at + R * RAW_BYTES[qtype]]
                at += R * RAW_BYTES[qtype]
                if qtype == T.F32:
                    x = raw.view("<f4")
                elif qtype == T.F16:
                    x = raw.view("<f2").astype(np.float32)
                elif qtype == T.BF16:
                    x = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
                else:  # Q8_0
                    x = fields["d"].view("<f2").astype(np.float32)[:, 0] * raw.view(np.int8).astype(np.float32)
                out[:, g * block_size + c] = x
                continue
            v = np.zeros(R, dtype=np.uint32)
            for plane in planes:
                if plane == "nibble":
                    b = data[at : at + R // 2].reshape((R // 32, 16)).astype(np.uint32)
                    v |= np.concatenate([b & 15, b >> 4], axis=1).reshape(R)
                    at += R // 2
                elif plane == "bit":
                    w = data[at : at + R // 8].view("<u4").reshape((R // 32, 1))
                    v |= (((w >> np.arange(32, dtype=np.uint32)) & 1) << 4).reshape(R)
                    at += R // 8
                elif plane == "crumb":
                    b = data[at : at + R // 4].reshape((R // 32, 1, 8)).astype(np.uint32)
                    v |= (((b >> (2 * np.arange(4, dtype=np.uint32)).reshape((1, 4, 1))) & 3) << 4).reshape(R)
                    at += R // 4
            d = fields["d"].view("<f2").astype(np.float32)[:, 0]
            q = v.astype(np.float32)
            if qtype == T.Q4_0:
                x = d * (v.astype(np.int8) - np.int8(8)).astype(np.float32)
            elif qtype == T.Q5_0:
                x = d * (v.astype(np.int8) - np.int8(16)).astype(np.float32)
            elif qtype in (T.Q4_1, T.Q5_1):
                x = d * q + fields["m"].view("<f2").astype(np.float32)[:, 0]
            elif qtype in (T.Q4_K, T.Q5_K):
                sc, mn = scale_min_k4(fields["scales"])
                j = c // 32
                dmin = fields["dmin"].view("<f2").astype(np.float32)[:, 0]
                x = (d * sc[:, j].astype(np.float32)) * q - dmin * mn[:, j].astype(np.float32)
            elif qtype == T.Q6_K:
                s = fields["scales"].view(np.int8)[:, c // 16].astype(np.float32)
                x = (d * s) * (v.astype(np.int8) - np.int8(32)).astype(np.float32)
            out[:, g * block_size + c] = x
    assert at == len(data)
    return out


def synth(qtype, n_in: int, n_out: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_out, n_in)).astype(np.float32)
    if qtype == T.F32:
        return x.tobytes()
    if qtype == T.F16:
        return x.astype("<f2").tobytes()
    if qtype in (T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):
        return np.ascontiguousarray(quantize(x, qtype)).view(np.uint8).tobytes()
    # gguf-py has no K-quant quantizer: random blocks, fp16 scales made finite (exponent below 31)
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_out * n_in // block_size, type_size), dtype=np.uint8)
    halves = {T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}[qtype]
    for at in halves:
        h = blocks[:, at : at + 2].copy().view("<u2")
        h[(h & 0x7C00) == 0x7C00] &= 0xBFFF
        blocks[:, at : at + 2] = h.view(np.uint8)
    return blocks.tobytes()


def source_rows(job) -> bytes:
    qtype = T(job["type"])
    if job["source"] == "synth":
        return synth(qtype, job["n_in"], job["n_out"], job["seed"])
    tensor = next(t for t in GGUFReader(job["source"]).tensors if t.name == job["tensor"])
    assert tensor.tensor_type == qtype, (tensor.name, tensor.tensor_type)
    assert [int(n) for n in tensor.shape] == [job["n_in"], job["n_out"]], (tensor.name, tensor.shape)
    return np.ascontiguousarray(tensor.data).view(np.uint8).tobytes()


def main() -> None:
    command, path = sys.argv[1:]
    with open(path) as f:
        jobs = json.load(f)
    for job in jobs:
        qtype = T(job["type"])
        n_in, n_out = job["n_in"], job["n_out"]
        if command == "build":
            rows = source_rows(job)
            with open(job["rows"], "wb") as f:
                f.write(rows)
            with open(job["cb"], "wb") as f:
                f.write(build(qtype, rows, n_in, n_out))
            values = dequantize(np.frombuffer(rows, dtype=np.uint8).reshape((n_out, -1)), qtype).astype(np.float32)
            with open(job["values"], "wb") as f:
                f.write(np.ascontiguousarray(values.reshape((n_out, n_in)), dtype="<f4").tobytes())
        elif command == "read":
            with open(job["cb"], "rb") as f:
                cb = f.read()
            with open(job["values"], "wb") as f:
                f.write(np.ascontiguousarray(read(qtype, cb, n_in, n_out), dtype="<f4").tobytes())
        else:
            raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
