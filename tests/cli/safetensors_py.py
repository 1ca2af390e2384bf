"""A small .safetensors writer and reader of our own, written from the format's description
(huggingface/safetensors README), to test the C reader and writer against:

  bytes 0..7   N, the header's length, unsigned 64-bit little-endian
  bytes 8..    N bytes of UTF-8 JSON: {"name": {"dtype": "F32", "shape": [2, 3],
               "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}} (optional),
               which may be padded at the end with spaces
  the rest     the byte buffer; offsets are relative to its start; data little-endian, C order;
               the tensors cover the buffer exactly, without holes or overlaps
"""
import json
import struct

import numpy as np

DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
    "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}
CODES = {np.dtype(v).str: k for k, v in DTYPES.items()}


def dtype_code(a):
    return CODES[np.dtype(a.dtype).newbyteorder("<").str if a.dtype.itemsize > 1 else a.dtype.str]


def to_bytes(tensors, metadata=None, align=8, raw=None):
    """tensors: {name: ndarray, or (code, shape, bytes) for types NumPy lacks (BF16)}."""
    header, chunks, at = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        if isinstance(t, tuple):
            code, shape, data = t
        else:
            code, shape = dtype_code(t), list(t.shape)
            data = np.ascontiguousarray(t).astype(np.dtype(DTYPES[code])).tobytes()
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [at, at + len(data)]}
        chunks.append(data)
        at += len(data)
    text = json.dumps(header).encode() if raw is None else raw
    text += b" " * ((-(8 + len(text))) % align)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write(path, tensors, **kw):
    with open(path, "wb") as f:
        f.write(to_bytes(tensors, **kw))


def read(path):
    """{name: (code, shape, raw bytes)}, checking the layout rules above."""
    b = open(path, "rb").read()
    (n,) = struct.unpack("<Q", b[:8])
    assert 8 + n <= len(b), "header runs past the end"
    header = json.loads(b[8:8 + n].decode())
    buf = b[8 + n:]
    out, spans = {}, []
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        out[name] = (e["dtype"], tuple(e["shape"]), buf[begin:end])
        spans.append((begin, end))
    at = 0
    for begin, end in sorted(spans):
        assert begin == at, "hole or overlap"
        at = end
    assert at == len(buf), "trailing bytes"
    return out


def as_array(entry):
    code, shape, data = entry
    return np.frombuffer(data, dtype=np.dtype(DTYPES[code])).reshape(shape)
