"""Independent check (gguf-py, PyPI `gguf`): do two GGUF files hold the same
metadata (keys, value types, values, order) and the same tensors (names,
shapes, types, bytes)? Prints one JSON object; exit code 0 either way."""
import hashlib
import json
import sys

import gguf


def fields(reader):
    out = []
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        parts = [bytes(p.tobytes()) for p in (field.parts[i] for i in field.data)] if field.data else []
        digest = hashlib.sha256(b"".join(parts)).hexdigest()
        out.append({"key": name, "types": [int(t) for t in field.types], "sha256": digest})
    return out


def tensors(reader):
    return [
        {
            "name": t.name,
            "shape": [int(x) for x in t.shape],
            "type": int(t.tensor_type),
            "sha256": hashlib.sha256(t.data.tobytes()).hexdigest(),
        }
        for t in reader.tensors
    ]


def main():
    a, b = (gguf.GGUFReader(p) for p in sys.argv[1:3])
    fa, fb = fields(a), fields(b)
    ta, tb = tensors(a), tensors(b)
    diffs = []
    if [f["key"] for f in fa] != [f["key"] for f in fb]:
        diffs.append("metadata keys or their order differ")
    for x, y in zip(fa, fb):
        if x != y:
            diffs.append(f"metadata {x['key']} differs")
    if [t["name"] for t in ta] != [t["name"] for t in tb]:
        diffs.append("tensor names or their order differ")
    for x, y in zip(ta, tb):
        if x != y:
            diffs.append(f"tensor {x['name']} differs")
    print(json.dumps({"metadata": len(fa), "tensors": len(ta), "differences": diffs}))


if __name__ == "__main__":
    main()
