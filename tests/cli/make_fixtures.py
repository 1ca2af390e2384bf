"""Writes the CLI test fixtures into a directory: input .npy files, reference results from
PyTorch (loss and autograd gradient of the summed loss), hand-made malformed .npy files, and
cases.tsv listing the reference cases as `name<TAB>nll loss arguments`.

Usage: make_fixtures.py DIR   (deterministic: fixed data and a seeded generator)
"""
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

out = sys.argv[1]
os.makedirs(os.path.join(out, "ref"), exist_ok=True)


def save(name, a):
    np.save(os.path.join(out, name), a)


# Fixtures of docs semantics.md section 15.
X = np.array([[-1, -2, -3], [-0.5, -1.5, -2.5], [-0.1, -0.2, -0.3]], np.float32)
Z = np.array([[1, 2, 3], [1, 1, 1], [0, -1, 2]], np.float32)
W = np.array([1, 2, 3], np.float32)
P = np.array([[0.1, 0.2, 0.7], [1, 0, 0], [0.3, 0.3, 0.4]], np.float32)
x4 = (np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) / 7).astype(np.float32)
t4 = np.array([[[0, 1], [2, -100]], [[1, 1], [0, 2]]], np.int64)
rng = np.random.RandomState(1234)
R = (rng.randn(6, 5, 4) * 2).astype(np.float32)
tR = rng.randint(0, 5, size=(6, 4)).astype(np.int64)
tR[0, 1] = tR[3, 2] = -100
WR = rng.uniform(0.5, 2.0, size=5).astype(np.float32)
PR = rng.dirichlet(np.ones(5), size=(6, 4)).transpose(0, 2, 1).astype(np.float32).copy()
L = (rng.randn(7, 4) * 3).astype(np.float32)
tL = rng.randint(0, 4, size=7).astype(np.int64)

arrays = {
    "X": X, "Z": Z, "W": W, "P": P, "x4": x4, "t4": t4,
    "logp4": F.log_softmax(torch.from_numpy(x4), 1).numpy(),
    "R": R, "tR": tR, "WR": WR, "PR": PR, "L": L, "tL": tL,
    "t012": np.array([0, 1, 2], np.int64),
    "t_ign": np.array([0, -100, 2], np.int64),
    "t_allign": np.array([-100, -100, -100], np.int64),
    "tZ": np.array([2, 0, 1], np.int64),
    "tZ_ign": np.array([2, -100, 1], np.int64),
    "tZ_f32": np.array([2, 0, 1], np.float32),
    "t_f32": np.array([0, 1, 2], np.float32),
    "t_f64": np.array([0, 1, 2], np.float64),
    "t_half": np.array([0, 0.5, 2], np.float32),
    "t_pad": np.array([0, -1, 2], np.int64),
    "t_1based": np.array([1, 2, 3], np.int64),
    "t_255": np.array([0, 255, 2], np.int64),
    "t_u8_255": np.array([0, 255, 2], np.uint8),
    "t_i32": np.array([0, 1, 2], np.int32),
    "t_u16": np.array([2, 0, 1], np.uint16),
    "t_bool": np.array([True, False, True]),
    "t_short": np.array([0, 1], np.int64),
    "t_2d": np.array([[0], [1], [2]], np.int64),
    "t0d": np.array(1, np.int64),
    "t0d_2": np.array(2, np.int64),
    "x1": X[0].copy(),
    "z1": Z[0].copy(),
    "X64": X.astype(np.float64), "Z64": Z.astype(np.float64), "W64": W.astype(np.float64),
    "P64": P.astype(np.float64),
    "X16": X.astype(np.float16), "Z16": Z.astype(np.float16), "W16": W.astype(np.float16),
    "X_nan": np.array([[np.nan, 0, 0], [0, 0, 0]], np.float32),
    "X_inf": np.array([[0, np.inf, 0], [0, 0, 0]], np.float32),
    "X_int": X.astype(np.int64),
    "t10": np.array([1, 0], np.int64),
    "t00": np.array([0, 0], np.int64),
    "W4": np.ones(4, np.float32),
    "W2d": np.ones((1, 3), np.float32),
    "P_bad": np.full((3, 4), 0.25, np.float32),
    "scalar": np.array(1.0, np.float32),
    "E": np.zeros((0, 3), np.float32),
    "tE": np.zeros((0,), np.int64),
    "Zinf": np.array([[-np.inf, -np.inf, -np.inf], [0, 1, 2]], np.float32),
    "t_inf": np.array([-100, 1], np.int64),
    "Zmask": np.array([[0, -np.inf, 1]], np.float32),
    "t_mask2": np.array([2], np.int64),
    "t_mask1": np.array([1], np.int64),
}
for k, v in arrays.items():
    save(k + ".npy", v)


def reference(op, x, t, w=None, reduction="mean", ii=-100, ls=0.0):
    """Loss and d(sum loss)/dx from PyTorch; 16-bit inputs are computed in float64."""
    dtype = x.dtype
    if dtype == np.float16:
        x = x.astype(np.float64)
        w = None if w is None else w.astype(np.float64)
    xt = torch.tensor(x, requires_grad=True)
    t = np.asarray(t)
    if t.dtype.kind != "f" or t.shape != x.shape or op == "nll":
        t = t.astype(np.int64)
    tt = torch.from_numpy(t)
    wt = None if w is None else torch.from_numpy(w)
    if op == "nll":
        loss = F.nll_loss(xt, tt, weight=wt, reduction=reduction, ignore_index=ii)
    else:
        loss = F.cross_entropy(xt, tt, weight=wt, reduction=reduction, ignore_index=ii,
                               label_smoothing=ls)
    loss.sum().backward()
    return loss.detach().numpy().astype(dtype), xt.grad.numpy().astype(dtype)


# name, op, input, target, weight, reduction, ignore_index, label_smoothing, extra CLI flags
# (the reference for a float target given with --allow-float-targets uses the int64 values).
cases = [
    ("nll_mean", "nll", "X", "t012", None, "mean", -100, 0, ""),
    ("nll_sum", "nll", "X", "t012", None, "sum", -100, 0, ""),
    ("nll_none", "nll", "X", "t012", None, "none", -100, 0, ""),
    ("nll_w_mean", "nll", "X", "t012", "W", "mean", -100, 0, ""),
    ("nll_w_sum", "nll", "X", "t012", "W", "sum", -100, 0, ""),
    ("nll_w_none", "nll", "X", "t012", "W", "none", -100, 0, ""),
    ("nll_ign_mean", "nll", "X", "t_ign", None, "mean", -100, 0, ""),
    ("nll_ign_w_mean", "nll", "X", "t_ign", "W", "mean", -100, 0, ""),
    ("nll_ign_w_none", "nll", "X", "t_ign", "W", "none", -100, 0, ""),
    ("nll_allign_mean", "nll", "X", "t_allign", None, "mean", -100, 0, ""),
    ("nll_allign_sum", "nll", "X", "t_allign", None, "sum", -100, 0, ""),
    ("nll_pad_ii", "nll", "X", "t_pad", None, "mean", -1, 0, ""),
    ("nll_validclass_ii", "nll", "X", "t012", None, "mean", 1, 0, ""),
    ("nll_u8_255_ii", "nll", "X", "t_u8_255", None, "mean", 255, 0, ""),
    ("nll_i32", "nll", "X", "t_i32", None, "sum", -100, 0, ""),
    ("nll_1d_mean", "nll", "x1", "t0d", None, "mean", -100, 0, ""),
    ("nll_1d_none", "nll", "x1", "t0d", None, "none", -100, 0, ""),
    ("nll_1d_w_sum", "nll", "x1", "t0d", "W", "sum", -100, 0, ""),
    ("nll_4d_mean", "nll", "logp4", "t4", None, "mean", -100, 0, ""),
    ("nll_4d_w_none", "nll", "logp4", "t4", "W", "none", -100, 0, ""),
    ("nll_f64_w_mean", "nll", "X64", "t012", "W64", "mean", -100, 0, ""),
    ("nll_f64_sum", "nll", "X64", "t_ign", None, "sum", -100, 0, ""),
    ("nll_f16_mean", "nll", "X16", "t012", None, "mean", -100, 0, ""),
    ("nll_f16_w_none", "nll", "X16", "t_ign", "W16", "none", -100, 0, ""),
    ("nll_float_allowed", "nll", "X", "t_f32", None, "mean", -100, 0, "--allow-float-targets"),
    ("nll_nan_offtarget", "nll", "X_nan", "t10", None, "mean", -100, 0, "--no-check-finite"),
    ("nll_nan_ontarget", "nll", "X_nan", "t00", None, "mean", -100, 0, "--no-check-finite"),
    ("ce_mean", "ce", "Z", "tZ", None, "mean", -100, 0, ""),
    ("ce_sum", "ce", "Z", "tZ", None, "sum", -100, 0, ""),
    ("ce_none", "ce", "Z", "tZ", None, "none", -100, 0, ""),
    ("ce_w_mean", "ce", "Z", "tZ", "W", "mean", -100, 0, ""),
    ("ce_w_none", "ce", "Z", "tZ", "W", "none", -100, 0, ""),
    ("ce_ls_mean", "ce", "Z", "tZ", None, "mean", -100, 0.1, ""),
    ("ce_ls_none", "ce", "Z", "tZ", None, "none", -100, 0.1, ""),
    ("ce_ls_w_ign_mean", "ce", "Z", "tZ_ign", "W", "mean", -100, 0.1, ""),
    ("ce_ls_w_ign_sum", "ce", "Z", "tZ_ign", "W", "sum", -100, 0.1, ""),
    ("ce_ls_w_ign_none", "ce", "Z", "tZ_ign", "W", "none", -100, 0.1, ""),
    ("ce_ls_one", "ce", "Z", "tZ", None, "mean", -100, 1.0, ""),
    ("ce_u16", "ce", "Z", "t_u16", None, "mean", -100, 0, ""),
    ("ce_prob_mean", "ce", "Z", "P", None, "mean", -100, 0, ""),
    ("ce_prob_sum", "ce", "Z", "P", None, "sum", -100, 0, ""),
    ("ce_prob_none", "ce", "Z", "P", None, "none", -100, 0, ""),
    ("ce_prob_w_mean", "ce", "Z", "P", "W", "mean", -100, 0, ""),
    ("ce_prob_w_none", "ce", "Z", "P", "W", "none", -100, 0, ""),
    ("ce_prob_ls_mean", "ce", "Z", "P", None, "mean", -100, 0.2, ""),
    ("ce_prob_nd_w_ls", "ce", "R", "PR", "WR", "mean", -100, 0.1, ""),
    ("ce_prob_nd_none", "ce", "R", "PR", None, "none", -100, 0, ""),
    ("ce_4d_mean", "ce", "x4", "t4", None, "mean", -100, 0, ""),
    ("ce_4d_sum", "ce", "x4", "t4", None, "sum", -100, 0, ""),
    ("ce_4d_none", "ce", "x4", "t4", None, "none", -100, 0, ""),
    ("ce_4d_w_ls_mean", "ce", "x4", "t4", "W", "mean", -100, 0.2, ""),
    ("ce_3d_w_ls_mean", "ce", "R", "tR", "WR", "mean", -100, 0.05, ""),
    ("ce_3d_w_ls_none", "ce", "R", "tR", "WR", "none", -100, 0.05, ""),
    ("ce_big_mean", "ce", "L", "tL", None, "mean", -100, 0, ""),
    ("ce_1d_mean", "ce", "z1", "t0d_2", None, "mean", -100, 0, ""),
    ("ce_1d_none", "ce", "z1", "t0d_2", "W", "none", -100, 0.1, ""),
    ("ce_f64_w_ls_mean", "ce", "Z64", "tZ", "W64", "mean", -100, 0.1, ""),
    ("ce_f64_prob_none", "ce", "Z64", "P64", None, "none", -100, 0, ""),
    ("ce_f16_mean", "ce", "Z16", "tZ", None, "mean", -100, 0, ""),
    ("ce_float_allowed", "ce", "Z", "tZ_f32", None, "sum", -100, 0, "--allow-float-targets"),
    ("ce_allign_ls", "ce", "Z", "t_allign", None, "sum", -100, 0.1, ""),
    ("nll_empty_mean", "nll", "E", "tE", None, "mean", -100, 0, ""),
    ("nll_empty_none", "nll", "E", "tE", "W", "none", -100, 0, ""),
    ("ce_empty_sum", "ce", "E", "tE", None, "sum", -100, 0.1, ""),
    ("nll_1d_ignored_mean", "nll", "x1", "t0d", None, "mean", 1, 0, ""),
    ("ce_masked_row_ignored", "ce", "Zinf", "t_inf", None, "mean", -100, 0, ""),
    ("ce_masked_logit", "ce", "Zmask", "t_mask2", None, "mean", -100, 0, ""),
    ("ce_masked_target", "ce", "Zmask", "t_mask1", None, "none", -100, 0, ""),
    ("ce_masked_ls", "ce", "Zmask", "t_mask2", None, "sum", -100, 0.1, ""),
]

with open(os.path.join(out, "cases.tsv"), "w") as f:
    for name, op, x, t, w, red, ii, ls, extra in cases:
        xv, tv = arrays[x], arrays[t]
        if "--allow-float-targets" in extra:
            tv = tv.astype(np.int64)
        loss, grad = reference(op, xv, tv, None if w is None else arrays[w], red, ii, ls)
        np.save(os.path.join(out, "ref", name + ".loss.npy"), loss)
        np.save(os.path.join(out, "ref", name + ".grad.npy"), grad)
        args = ["--op", "nll" if op == "nll" else "cross-entropy", "--input", x + ".npy",
                "--target", t + ".npy", "--reduction", red]
        if w is not None:
            args += ["--weight", w + ".npy"]
        if ii != -100:
            args += ["--ignore-index", str(ii)]
        if ls:
            args += ["--label-smoothing", repr(ls)]
        if extra:
            args += extra.split()
        f.write(name + "\t" + " ".join(args) + "\n")


# ---- .npy header variants and malformed files ----

def npy_bytes(header, data=b"", version=(1, 0), pad=True):
    """A .npy file with an exact header text (padded like NumPy's unless pad is False)."""
    h = header.encode("utf-8")
    lenbytes = 2 if version[0] == 1 else 4
    if pad:
        total = 6 + 2 + lenbytes + len(h) + 1
        h += b" " * ((-total) % 64) + b"\n"
    fmt = "<H" if lenbytes == 2 else "<I"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(h)) + h + data


def write(name, content):
    with open(os.path.join(out, name), "wb") as f:
        f.write(content)


Xb = X.tobytes()
tb = np.array([0, 1, 2], np.int64).tobytes()
# Valid variants that the reader must accept (all equal to X / t012).
write("v2_X.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }", Xb, (2, 0)))
write("v3_X.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }", Xb, (3, 0)))
write("order_X.npy", npy_bytes("{ 'shape' : (3,3) , \"descr\":'<f4','fortran_order':False}", Xb))
write("nopad_t.npy", npy_bytes("{'descr':'<i8','fortran_order':False,'shape':(3,)}", tb, pad=False))
write("fortran1d_t.npy", npy_bytes("{'descr': '<i8', 'fortran_order': True, 'shape': (3,), }", tb))
write("eq_t.npy", npy_bytes("{'descr': '=i8', 'fortran_order': False, 'shape': (3,), }", tb))
# Malformed or unsupported files.
write("empty.npy", b"")
write("notnpy.npy", b"this is not a numpy file at all, just text\n")
write("badversion.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }", Xb, (9, 0)))
write("trunc_header.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }", Xb)[:40])
write("trunc_data.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }", Xb[:20]))
write("badheader.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False 'shape': (3, 3), }", Xb))
write("missingkey.npy", npy_bytes("{'descr': '<f4', 'shape': (3, 3), }", Xb))
write("negdim.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3, -3), }", Xb))
write("absurd_header.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{'descr'")
write("huge_shape.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", Xb))
write("huge_bytes.npy", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,), }", Xb))
write("bigdim.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", Xb))
write("fortran_X.npy", npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 3), }", Xb))
write("bigendian_X.npy", npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (3, 3), }", X.astype(">f4").tobytes()))
write("object.npy", npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", b"\0" * 24))
write("structured.npy", npy_bytes("{'descr': [('a', '<f4'), ('b', '<i8')], 'fortran_order': False, 'shape': (3,), }", b"\0" * 36))
write("complex.npy", npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (3, 3), }", b"\0" * 72))
