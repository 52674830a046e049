"""Dump a GGUF header as seen by gguf-py (PyPI `gguf`), as JSON on stdout.

Independent reference for the TypeScript reader/writer tests. Values are taken
from gguf-py's parsed field parts; nested arrays are reassembled from those
parts (gguf-py's `contents()` flattens them). JSON cannot carry 64-bit
integers or non-finite floats exactly, so those are encoded as strings.

usage: python gguf_py_dump.py FILE [--hash-data]
"""
import hashlib
import json
import math
import sys

from gguf import GGUFReader, GGUFValueType

INT64_TYPES = (GGUFValueType.UINT64, GGUFValueType.INT64)
FLOAT_TYPES = (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64)


def scalar(vtype, x):
    if vtype in INT64_TYPES:
        return str(int(x))
    if vtype in FLOAT_TYPES:
        f = float(x)
        return f if math.isfinite(f) else repr(f)  # 'nan', 'inf', '-inf'
    if vtype == GGUFValueType.BOOL:
        return bool(x)
    return int(x)


def decode(parts, i, vtype):
    """Value of type `vtype` whose first part is parts[i]; returns (value, next index)."""
    if vtype == GGUFValueType.STRING:
        return parts[i + 1].tobytes().decode('utf-8'), i + 2
    if vtype == GGUFValueType.ARRAY:
        item_type = GGUFValueType(int(parts[i][0]))
        n = int(parts[i + 1][0])
        j = i + 2
        items = []
        for _ in range(n):
            v, j = decode(parts, j, item_type)
            items.append(v)
        return {'itemType': int(item_type), 'items': items}, j
    return scalar(vtype, parts[i][0]), i + 1


def main():
    path = sys.argv[1]
    hash_data = '--hash-data' in sys.argv[2:]
    reader = GGUFReader(path)
    metadata = []
    for key, field in reader.fields.items():
        if key.startswith('GGUF.'):
            continue  # pseudo-fields for the fixed header
        vtype = field.types[0]
        # parts: key length, key bytes, value type, then the value's parts
        value, end = decode(field.parts, 3, vtype)
        assert end == len(field.parts), key
        entry = {'type': int(vtype)}
        entry.update(value if vtype == GGUFValueType.ARRAY else {'value': value})
        metadata.append([key, entry])
    tensors = []
    for t in reader.tensors:
        info = {
            'name': t.name,
            'shape': [int(d) for d in t.shape],
            'type': int(t.tensor_type),
            'offset': int(t.field.parts[5][0]),
            'fileOffset': int(t.data_offset),
            'byteLength': int(t.n_bytes),
            'elementCount': int(t.n_elements),
        }
        if hash_data:
            info['sha256'] = hashlib.sha256(t.data.tobytes()).hexdigest()
        tensors.append(info)
    json.dump(
        {
            'version': int(reader.fields['GGUF.version'].parts[0][0]),
            'alignment': int(reader.alignment),
            'dataOffset': int(reader.data_offset),
            'metadata': metadata,
            'tensors': tensors,
        },
        sys.stdout,
        ensure_ascii=False,
    )


if __name__ == '__main__':
    main()
