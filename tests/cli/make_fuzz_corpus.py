"""Writes the seed corpora of the reader fuzzers: fuzz/corpus/{npy,npz,safetensors}/.

Usage: python3 tests/cli/make_fuzz_corpus.py [ROOT]   (ROOT: the repository, default ../..)
Valid files of each kind, and hostile ones: huge header lengths, shapes whose element count
overflows, offsets past the end, truncations, lies about sizes. Deterministic.
"""
import io
import os
import struct
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py as st  # noqa: E402

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
corpus = os.path.join(root, "fuzz", "corpus")


def put(kind, name, data):
    d = os.path.join(corpus, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy(a, version=None):
    b = io.BytesIO()
    if version is None:
        np.save(b, a)
    else:
        np.lib.format.write_array(b, a, version=version)
    return b.getvalue()


def npy_raw(header, data=b"", version=1):
    h = header.encode()
    h += b" " * ((-(10 + len(h) + 1)) % 64) + b"\n"
    fmt = "<H" if version == 1 else "<I"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(fmt, len(h)) + h + data


# ---- .npy ----
put("npy", "f4_2x3.npy", npy(np.arange(6, dtype=np.float32).reshape(2, 3)))
put("npy", "i8_v2.npy", npy(np.array([0, 1, -100, 2], np.int64), version=(2, 0)))
put("npy", "u1_v3.npy", npy(np.array([0, 255, 3], np.uint8), version=(3, 0)))
put("npy", "f8_big_fortran.npy", npy(np.asfortranarray(np.arange(6, dtype=">f8").reshape(2, 3))))
put("npy", "bool.npy", npy(np.array([True, False, True])))
put("npy", "f2_0d.npy", npy(np.array(1.5, np.float16)))
put("npy", "empty_0x3.npy", npy(np.zeros((0, 3), np.float32)))
put("npy", "i2_big.npy", npy(np.array([[1, -2], [3, 4]], ">i2")))
put("npy", "hostile_header_len.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{")
put("npy", "hostile_shape_overflow.npy",
    npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }"))
put("npy", "hostile_zero_dim_overflow.npy",
    npy_raw("{'descr': '<f4', 'fortran_order': True, 'shape': (0, 9223372036854775807, 2), }"))
put("npy", "hostile_truncated_data.npy",
    npy_raw("{'descr': '<i8', 'fortran_order': False, 'shape': (1000,), }", b"\0" * 16))
put("npy", "hostile_nul_header.npy", npy_raw("{'descr': '<f4',\0 'shape': (1,), }", b"\0" * 4))
put("npy", "hostile_65_dims.npy",
    npy_raw("{'descr': '|u1', 'fortran_order': False, 'shape': (" + "1, " * 65 + "), }", b"\0"))
put("npy", "hostile_unterminated.npy", npy_raw("{'descr': '<f4", b""))

# ---- .npz ----
labels = np.array([1, 2, 3, 2, 1], np.int64)
logits = np.linspace(-1, 1, 15, dtype=np.float32).reshape(5, 3)
b = io.BytesIO()
np.savez(b, labels=labels, logits=logits)
stored = b.getvalue()
put("npz", "savez_two.npz", stored)
b = io.BytesIO()
np.savez_compressed(b, labels=labels)
deflated = b.getvalue()
put("npz", "savez_compressed_one.npz", deflated)
b = io.BytesIO()
np.savez_compressed(b, big=np.asfortranarray(np.arange(12, dtype=">f4").reshape(3, 4)))
put("npz", "compressed_big_fortran.npz", b.getvalue())
b = io.BytesIO()
with zipfile.ZipFile(b, "w"):
    pass
put("npz", "empty_zip.npz", b.getvalue())
b = io.BytesIO()
with zipfile.ZipFile(b, "w") as z:
    z.writestr("notes.txt", b"not an array")
put("npz", "not_npy_member.npz", b.getvalue())
put("npz", "hostile_truncated.npz", stored[: len(stored) // 2])
put("npz", "hostile_no_directory.npz", stored[:-22])


def patch_sizes(data, size):
    """Claims `size` uncompressed bytes in the local and central headers of every member."""
    out = bytearray(data)
    i = 0
    while True:
        i = out.find(b"PK\x03\x04", i)
        if i < 0:
            break
        struct.pack_into("<I", out, i + 22, size)
        i += 4
    i = 0
    while True:
        i = out.find(b"PK\x01\x02", i)
        if i < 0:
            break
        struct.pack_into("<I", out, i + 24, size)
        i += 4
    return bytes(out)


put("npz", "hostile_lying_size.npz", patch_sizes(deflated, 0xFFFFFFF0))
put("npz", "hostile_lying_size_small.npz", patch_sizes(deflated, 40))
crc = bytearray(deflated)
j = crc.find(b"PK\x03\x04")
crc[j + 14] ^= 0xFF  # the local header's CRC
k = crc.find(b"PK\x01\x02")
crc[k + 16] ^= 0xFF  # and the central directory's
put("npz", "hostile_bad_crc.npz", bytes(crc))
method = bytearray(stored)
method[method.find(b"PK\x03\x04") + 8] = 12  # bzip2
method[method.find(b"PK\x01\x02") + 10] = 12
put("npz", "hostile_bzip2_method.npz", bytes(method))
b = io.BytesIO()
with zipfile.ZipFile(b, "w") as z:
    z.writestr("x.npy", npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"))
put("npz", "hostile_member_overflow.npz", b.getvalue())

# ---- .safetensors ----
put("safetensors", "mixed.safetensors", st.to_bytes({
    "logits": np.arange(6, dtype=np.float32).reshape(2, 3),
    "labels": np.array([0, 2], np.int64),
    "mask": np.array([True, False]),
    "bytes": np.array([1, 255], np.uint8),
    "half": ("BF16", [2], struct.pack("<HH", 0x3F80, 0xC000)),
}, metadata={"format": "pt"}))
put("safetensors", "one_f16.safetensors", st.to_bytes({"w": np.array([1, -2, 0.5], np.float16)}))
put("safetensors", "scalar_and_empty.safetensors", st.to_bytes({
    "s": np.array(3.0, np.float64), "e": np.zeros((0, 4), np.int32)}))
put("safetensors", "unaligned.safetensors", st.to_bytes({"x": np.arange(3, dtype=np.int16)}, align=1))
put("safetensors", "hostile_header_len.safetensors", struct.pack("<Q", 2**63 + 5) + b"{}")
put("safetensors", "hostile_offsets_past_end.safetensors", st.to_bytes(
    {}, raw=b'{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}') + b"\0" * 8)
put("safetensors", "hostile_overlap.safetensors", st.to_bytes(
    {}, raw=b'{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},'
            b'"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}') + b"\0" * 6)
put("safetensors", "hostile_gap.safetensors", st.to_bytes(
    {}, raw=b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}') + b"\0" * 4)
put("safetensors", "hostile_shape_overflow.safetensors", st.to_bytes(
    {}, raw=b'{"a":{"dtype":"F64","shape":[4294967296,4294967296,8],"data_offsets":[0,0]}}'))
put("safetensors", "hostile_bad_json.safetensors", st.to_bytes({}, raw=b'{"a":{"dtype":"F32",'))
put("safetensors", "hostile_duplicate.safetensors", st.to_bytes(
    {}, raw=b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
            b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}') + b"\0\0")
put("safetensors", "hostile_byte_count.safetensors", st.to_bytes(
    {}, raw=b'{"a":{"dtype":"I64","shape":[3],"data_offsets":[0,8]}}') + b"\0" * 8)
put("safetensors", "hostile_trailing_text.safetensors",
    struct.pack("<Q", 6) + b"{} xyz")
put("safetensors", "hostile_fp8.safetensors", st.to_bytes(
    {}, raw=b'{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}') + b"\0")
put("safetensors", "hostile_float_offsets.safetensors", st.to_bytes(
    {}, raw=b'{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1e300]}}') + b"\0")
put("safetensors", "hostile_nested.safetensors", st.to_bytes({}, raw=b"{" + b'"a":[' * 500 + b"]" * 500 + b"}"))
