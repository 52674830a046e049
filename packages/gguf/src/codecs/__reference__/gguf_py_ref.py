"""Independent reference for the codec tests: gguf-py (PyPI gguf) + numpy.

  gguf_py_ref.py tensors GGUF
      One JSON line per tensor: name, ggml type id, absolute data offset, byte
      length, element count.
  gguf_py_ref.py model GGUF
      The same plus the sha256 of gguf-py's dequantized float32 (little-endian)
      output.
  gguf_py_ref.py dump GGUF NAME OUT.f32
      gguf-py's dequantized float32 of one tensor (mismatch diagnosis).
  gguf_py_ref.py jobs JOBS.json
      JOBS is a list of {"op": "dequantize"|"quantize", "type": id, "input": path,
      "output": path}: dequantize reads raw block bytes and writes float32;
      quantize reads float32 and writes raw block bytes.
"""

import hashlib
import json
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize, quantize


def as_f32_bytes(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


def describe(tensor) -> dict:
    return {
        "name": tensor.name,
        "type": int(tensor.tensor_type),
        "offset": int(tensor.data_offset),
        "nbytes": int(tensor.n_bytes),
        "elements": int(tensor.n_elements),
    }


def tensors(path: str) -> None:
    for tensor in GGUFReader(path).tensors:
        print(json.dumps(describe(tensor)))


def model(path: str) -> None:
    for tensor in GGUFReader(path).tensors:
        values = dequantize(tensor.data, tensor.tensor_type)
        print(json.dumps({**describe(tensor), "sha256": hashlib.sha256(as_f32_bytes(values)).hexdigest()}))


def dump(path: str, name: str, out: str) -> None:
    tensor = next(t for t in GGUFReader(path).tensors if t.name == name)
    with open(out, "wb") as f:
        f.write(as_f32_bytes(dequantize(tensor.data, tensor.tensor_type)))


def jobs(path: str) -> None:
    with open(path) as f:
        for job in json.load(f):
            qtype = GGMLQuantizationType(job["type"])
            if job["op"] == "dequantize":
                data = np.fromfile(job["input"], dtype=np.uint8)
                result = as_f32_bytes(dequantize(data, qtype))
            else:
                data = np.fromfile(job["input"], dtype="<f4")
                result = np.ascontiguousarray(quantize(data, qtype)).view(np.uint8).tobytes()
            with open(job["output"], "wb") as f:
                f.write(result)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"tensors": tensors, "model": model, "dump": dump, "jobs": jobs}[command](*args)
