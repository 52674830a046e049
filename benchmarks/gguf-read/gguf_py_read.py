"""The gguf-py side of the gguf-read benchmark: parse the header with
GGUFReader and dequantize every tensor with gguf.quants.dequantize, timed in
process (interpreter start-up and imports excluded). Prints one JSON object."""

import json
import sys
import time

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize


def main(path: str) -> None:
    start = time.perf_counter()
    reader = GGUFReader(path)
    header = time.perf_counter()
    tensor_bytes = 0
    for tensor in reader.tensors:
        values = dequantize(tensor.data, tensor.tensor_type)
        if tensor.tensor_type == GGMLQuantizationType.F32:
            # F32 "dequantizes" to a view of the memory map: copy so the bytes are
            # really read into an owned array, as on the TypeScript side.
            values = np.array(values, copy=True)
        tensor_bytes += int(tensor.n_bytes)
    end = time.perf_counter()
    print(json.dumps({
        "seconds": end - start,
        "header_seconds": header - start,
        "tensors": len(reader.tensors),
        "tensor_bytes": tensor_bytes,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
