"""Writes the fixtures of the format, check and convert tests into a directory (beside those of
make_fixtures.py): the same arrays in every supported layout and container, the label files
of nll check's golden cases, and formats.tsv listing round trips as `file<TAB>expected.npy`.

Usage: make_format_fixtures.py DIR   (deterministic)
"""
import io
import os
import struct
import sys
import zipfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py as st  # noqa: E402

out = sys.argv[1]
os.chdir(out)
os.makedirs("exp", exist_ok=True)
rng = np.random.RandomState(7)
roundtrips = []


def expect(spec, a):
    """spec, read by nll, must equal a (saved as exp/<n>.npy in C order, little-endian)."""
    name = "exp/%d.npy" % len(roundtrips)
    np.save(name, np.array(a, dtype=a.dtype.newbyteorder("<"), order="C"))
    roundtrips.append((spec, name))


# ---- every dtype in every .npy layout ----
base = np.arange(-5, 7).reshape(3, 4)
for code in ["f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"]:
    a = (base % 2 == 0) if code == "b1" else (base if code[0] != "u" else base + 5).astype(code)
    if code[0] == "f":
        a = a / 4
        a = a.astype(code)
    for order in "<>":
        dt = a.dtype.newbyteorder(order)
        c = np.ascontiguousarray(a.astype(dt))
        f = np.asfortranarray(a.astype(dt))
        tag = {"<": "le", ">": "be"}[order]
        np.save("rt_%s_%s_c.npy" % (code, tag), c)
        np.save("rt_%s_%s_f.npy" % (code, tag), f)
        expect("rt_%s_%s_c.npy" % (code, tag), a)
        expect("rt_%s_%s_f.npy" % (code, tag), a)
    # version 2.0 and 3.0 headers, and a 3-D Fortran array
    with open("rt_%s_v2.npy" % code, "wb") as fh:
        np.lib.format.write_array(fh, a, version=(2, 0))
    expect("rt_%s_v2.npy" % code, a)
    with open("rt_%s_v3.npy" % code, "wb") as fh:
        np.lib.format.write_array(fh, a, version=(3, 0))
    expect("rt_%s_v3.npy" % code, a)
a3 = np.asfortranarray(rng.randn(2, 3, 4).astype(">f4"))
np.save("rt_3d_f_be.npy", a3)
expect("rt_3d_f_be.npy", a3)
np.save("rt_empty.npy", np.zeros((0, 5), np.float32))
expect("rt_empty.npy", np.zeros((0, 5), np.float32))
np.save("rt_0d.npy", np.array(2.5, np.float64))
expect("rt_0d.npy", np.array(2.5, np.float64))

# ---- .npz: stored and deflated ----
members = {"labels": np.array([0, 2, 1, 1], np.int64),
           "logits": rng.randn(4, 3).astype(np.float32),
           "big": np.asfortranarray(rng.randn(3, 5)).astype(">f8"),
           "mask": np.array([True, False, True, True])}
np.savez("rt_stored.npz", **members)
np.savez_compressed("rt_deflated.npz", **members)
for k, v in members.items():
    expect("rt_stored.npz:" + k, v)
    expect("rt_deflated.npz:%s.npy" % k, v)
np.savez_compressed("rt_one.npz", only=members["labels"])
expect("rt_one.npz", members["labels"])

# ---- .safetensors, from our own writer ----
tensors = {"f64": rng.randn(2, 3), "f32": rng.randn(3).astype(np.float32),
           "f16": rng.randn(2, 2).astype(np.float16), "i64": np.array([-1, 2**40], np.int64),
           "i32": np.array([[1, -2]], np.int32), "i16": np.array([300, -300], np.int16),
           "i8": np.array([-128, 127], np.int8), "u8": np.array([0, 255], np.uint8),
           "bool": np.array([True, False]), "scalar": np.array(7.0, np.float32),
           "empty": np.zeros((2, 0), np.int64)}
st.write("rt.safetensors", tensors, metadata={"format": "pt"})
for k, v in tensors.items():
    expect("rt.safetensors:" + k, v)
st.write("rt_unaligned.safetensors", {"x": np.arange(5, dtype=np.int64)}, align=1)
expect("rt_unaligned.safetensors", np.arange(5, dtype=np.int64))

with open("formats.tsv", "w") as fh:
    for spec, name in roundtrips:
        fh.write(spec + "\t" + name + "\n")

# ---- bfloat16 through safetensors, against PyTorch ----
zb = torch.tensor([[1.5, -0.25, 2.0], [0.5, 0.75, -1.0]], dtype=torch.bfloat16)
tb = torch.tensor([2, 0])
bits = zb.view(torch.int16).numpy().astype("<i2").tobytes()
st.write("bf16.safetensors", {"logits": ("BF16", [2, 3], bits), "labels": tb.numpy()})
ref = F.cross_entropy(zb.double(), tb)
with open("bf16.ref", "w") as fh:
    fh.write("%.9g\n" % ref.item())

# ---- nll check fixtures ----
N, C = 12, 4
labels = np.array([0, 1, 2, 3] * 3, np.int64)
logits = rng.randn(N, C).astype(np.float32) * 2
np.save("ck_labels.npy", labels)
np.save("ck_logits.npy", logits)
np.save("ck_logp.npy", F.log_softmax(torch.from_numpy(logits), 1).numpy())
np.save("ck_probs.npy", F.softmax(torch.from_numpy(logits), 1).numpy())
np.save("ck_labels_f32.npy", labels.astype(np.float32))
np.save("ck_labels_half.npy", np.array([0, 0.5, 1, 2] * 3, np.float32))
np.save("ck_labels_1based.npy", labels + 1)
pad = labels.copy()
pad[-3:] = -1
np.save("ck_labels_pad.npy", pad)
np.save("ck_labels_gaps.npy", np.array([0, 2, 5, 5, 2, 0, 0, 2], np.int64))
np.save("ck_labels_one.npy", np.full(N, 2, np.int64))
np.save("ck_labels_ignored.npy", np.full(N, -100, np.int64))
np.save("ck_labels_imbalanced.npy", np.array([0] * 10 + [1] + [2], np.int64))
np.save("ck_labels_range.npy", np.array([0, 1, 7, 2, 3, -5, 0, 1, 2, 3, 9, 0], np.int64))
np.save("ck_labels_col.npy", labels.reshape(N, 1))
np.save("ck_labels_onehot.npy", np.eye(C, dtype=np.float32)[labels])
np.save("ck_labels_u64.npy", np.array([0, 1, 2**63 + 5, 3] * 3, np.uint64))
np.save("ck_labels_bool.npy", labels % 2 == 0)
np.save("ck_labels_be_fortran.npy", np.asfortranarray(labels.reshape(3, 4).astype(">i4")))
soft = F.softmax(torch.from_numpy(rng.randn(N, C).astype(np.float32)), 1).numpy()
np.save("ck_soft.npy", soft)
bad = soft.copy()
bad[1] *= 2
bad[4, 0] = -0.1
np.save("ck_soft_bad.npy", bad)
nan = logits.copy()
nan[2, 1] = np.nan
nan[5, 0] = np.inf
nan[6, 3] = -np.inf
np.save("ck_logits_nan.npy", nan)
np.save("ck_weight.npy", np.array([1, 2, 0.5, 1], np.float32))
np.save("ck_weight64.npy", np.array([1, 2, 0.5, 1], np.float64))
np.save("ck_weight5.npy", np.ones(5, np.float32))
# Segmentation: (N, C, H, W) scores and a uint8 mask with 255 void pixels, in one .npz.
seg_logits = rng.randn(2, 3, 4, 4).astype(np.float32)
mask = rng.randint(0, 3, size=(2, 4, 4)).astype(np.uint8)
mask[0, 0, :] = 255
mask[1, 3, 3] = 255
np.savez_compressed("ck_seg.npz", logits=seg_logits, mask=mask)
# The mistakes, in a .safetensors file: labels as float32 and 1-based.
st.write("ck_mistakes.safetensors", {"labels_f32": labels.astype(np.float32),
                                     "labels_1based": labels + 1, "logits": logits})

# ---- malformed containers ----
b = io.BytesIO()
np.savez(b, labels=labels)
npz = b.getvalue()
open("bad_truncated.npz", "wb").write(npz[: len(npz) // 2])
with zipfile.ZipFile("bad_member.npz", "w") as z:
    z.writestr("labels.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': '<i8',")
open("bad_header_len.safetensors", "wb").write(struct.pack("<Q", 2**40) + b"{}")
open("bad_offsets.safetensors", "wb").write(st.to_bytes(
    {}, raw=b'{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}') + b"\0" * 8)
open("bad_json.safetensors", "wb").write(st.to_bytes({}, raw=b'{"x": {"dtype": "F32"'))
open("bad_shape.safetensors", "wb").write(st.to_bytes(
    {}, raw=b'{"x":{"dtype":"F64","shape":[4294967296,4294967296,8],"data_offsets":[0,0]}}'))
open("unknown.bin", "wb").write(b"hello, this is not a tensor file\n")
