#!/usr/bin/python3
"""Conformance of libnll against PyTorch (torch.nn.functional, 1.13 CPU).

    test_conformance.py --lib build/lib/libnll.so --nll build/bin/nll [--cases 1500]
                        [--cli-cases 110] [--seed S] [--case K ...] [--threads T] [--verbose]

Parts:
  1. random cases through the C API (ctypes, nllc.py): nll_loss, cross_entropy with class
     indices and with probabilities, log_softmax; forward, backward, fused and in-place forms;
     float64/32/16 and bfloat16; every integer target dtype; strided, permuted, negative-stride,
     broadcast and offset layouts; outputs in strided buffers whose other bytes must stay as
     they were;
  2. the `nll loss` tool on .npy files (float64/float32);
  3. gradients against central finite differences (float64, C API);
  4. the documented deviations from PyTorch (errors where PyTorch silently accepts), and
     that a failing call leaves its outputs untouched.
Random cases also set NLL_CHECK_FINITE (-inf must pass) and NLL_ALLOW_FLOAT_TARGETS (whole-
number float16/32/64 class indices), and some rerun on a 3-thread context, whose results must
be bitwise identical to the 1-thread ones. After the random cases come fixed ones: the worked
examples of semantics.md section 15, in float32 and float64.

Each failure prints the case's parameters; `--case K` reruns case K alone (cases are
deterministic in --seed and K). Only the standard library, numpy and torch are used.

The reference is PyTorch in float64 on the very values the library sees (16-bit and float32
inputs are rounded first, then upcast): PyTorch 1.13 CPU has no float16 for these ops, and the
library computes 16-bit inputs in float32 and rounds each result once (a documented deviation
from PyTorch's 16-bit accumulation), so the float64 result rounded to the output dtype is what
it should return. Tolerances (per element, |got - ref| <= atol + rtol * |ref|):

  float64   rtol 1e-10, atol 1e-12 * scale
  float32   rtol 1e-5,  atol 1e-6  * scale
  float16   rtol 2^-11 (half an ulp), atol 2^-11 * max|ref| + 2^-20 * scale + 2^-25
  bfloat16  rtol 2^-8  (half an ulp), atol 2^-8  * max|ref| + 2^-20 * scale

where scale is the magnitude of what is summed or cancelled to get the value (the largest
|ref|, the reduction of |per-sample loss| for mean/sum, and for cross-entropy gradients the
largest sum of |d loss / d log_softmax| over a row, since p - 1 cancels). NaN must be NaN where
PyTorch gives NaN, +-inf must match exactly. nll_loss 'none' (forward) and its backward for
none/sum are single products, so they must be exact (the float64 product of two 16-bit or
float32 values is exact, so the rounded reference is the correctly rounded answer).
float32 is held to the float64 reference too (stricter than PyTorch float32 against libnll).

PyTorch 1.13 behaviour handled on purpose (semantics.md, "Where libnll deliberately differs"):
  - a (C) input with a (C) target: 1.13 silently uses target[0]; the library rejects it, so
    random cases never build it and deviation_checks() expects NLL_ERROR_TARGET_SHAPE;
  - label_smoothing < 0 or NaN: 1.13 treats it as 0; the library rejects it (deviation);
  - 16-bit mean/weights: 1.13 accumulates (and rounds the weight sum) in 16 bits; the
    reference is float64 on the 16-bit values instead;
  - 1-D input with an ignored target under mean: NaN, as on PyTorch's CPU (no special case);
  - integer targets other than int64 (and float targets under NLL_ALLOW_FLOAT_TARGETS) are
    given to PyTorch as int64.
"""

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import gen  # noqa: E402
import nllc  # noqa: E402

torch.set_num_threads(1)

SENTINEL = -768.0  # exactly representable in every float dtype; never a plausible result

TOL = {
    # dtype: (rtol, atol per unit of scale, atol per unit of max|ref|, absolute atol)
    "float64": (1e-10, 1e-12, 1e-12, 0.0),
    "float32": (1e-5, 1e-6, 1e-6, 0.0),
    "float16": (2.0**-11, 2.0**-20, 2.0**-11, 2.0**-25),
    "bfloat16": (2.0**-8, 2.0**-20, 2.0**-8, 0.0),
}


# ---------------------------------------------------------------------------------------------
# Comparison

class Check:
    """The outcome of one comparison."""

    def __init__(self, ok, max_abs=0.0, max_rel=0.0, ratio=0.0, msg=""):
        self.ok, self.max_abs, self.max_rel, self.ratio, self.msg = ok, max_abs, max_rel, ratio, msg


def _fmt_pos(shape, flat):
    if not shape:
        return "[]"
    return str(list(np.unravel_index(int(flat), shape)))


def compare(name, got, ref, dtype, scale=0.0, exact=False):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.size != ref.size:
        return Check(False, msg="%s: %d elements, expected %d" % (name, got.size, ref.size))
    shape = ref.shape
    g = got.reshape(-1)
    r = ref.reshape(-1)
    if r.size == 0:
        return Check(True)
    gn, rn = np.isnan(g), np.isnan(r)
    bad = np.nonzero(gn != rn)[0]
    if bad.size:
        k = bad[0]
        return Check(False, msg="%s: NaN mismatch at %s: got %r, expected %r (%d positions)"
                     % (name, _fmt_pos(shape, k), g[k], r[k], bad.size))
    rinf = np.isinf(r)
    ginf = np.isinf(g)
    if dtype != "float64":
        # A finite reference beyond the dtype's range rounds to +-inf: that is the answer.
        with np.errstate(over="ignore"):
            rq = gen.quantize(np.where(rn | rinf, 0.0, r), dtype)
        over = np.isinf(rq) & ~rinf
        if over.any():
            r = np.where(over, rq, r)
            rinf = np.isinf(r)
    bad = np.nonzero((rinf | ginf) & ~rn & (g != r))[0]
    if bad.size:
        k = bad[0]
        return Check(False, msg="%s: infinity mismatch at %s: got %r, expected %r (%d positions)"
                     % (name, _fmt_pos(shape, k), g[k], r[k], bad.size))
    fin = ~(rn | rinf)
    if not fin.any():
        return Check(True)
    gf, rf = g[fin], r[fin]
    diff = np.abs(gf - rf)
    maxref = float(np.max(np.abs(rf)))
    if exact:
        expect = gen.quantize(rf, dtype)
        badx = np.nonzero(gf != expect)[0]
        if badx.size:
            k = badx[0]
            pos = np.nonzero(fin)[0][k]
            return Check(False, float(diff.max()), 0.0, math.inf,
                         "%s: not exact at %s: got %r, expected %r (correctly rounded; %d "
                         "positions)" % (name, _fmt_pos(shape, pos), gf[k], expect[k], badx.size))
    rtol, a_scale, a_ref, a_abs = TOL[dtype]
    if dtype in ("float64", "float32"):
        s = max(maxref, scale if np.isfinite(scale) else 0.0)
        atol = a_scale * s
    else:
        atol = a_ref * maxref + a_scale * (scale if np.isfinite(scale) else 0.0) + a_abs
    tol = atol + rtol * np.abs(rf)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_arr = np.where(tol > 0, diff / np.where(tol > 0, tol, 1), np.where(diff > 0, np.inf, 0))
    big = np.abs(rf) >= 1e-3 * maxref
    max_rel = float(np.max(diff[big] / np.abs(rf[big]))) if big.any() and maxref > 0 else 0.0
    ratio = float(ratio_arr.max())
    ok = ratio <= 1.0
    msg = ""
    if not ok:
        k = int(np.argmax(ratio_arr))
        pos = np.nonzero(fin)[0][k]
        msg = ("%s: at %s got %.17g, expected %.17g (|diff| %.3g > tol %.3g; %d of %d elements "
               "out of tolerance)" % (name, _fmt_pos(shape, pos), gf[k], rf[k], diff[k], tol[k],
                                      int((ratio_arr > 1).sum()), rf.size))
    return Check(ok, float(diff.max()), max_rel, ratio, msg)


# ---------------------------------------------------------------------------------------------
# References (PyTorch, float64)

RED_ENUM = {"none": 0, "mean": 1, "sum": 2}


def _t(a):
    a = np.asarray(a, dtype=np.float64)
    return torch.from_numpy(np.ascontiguousarray(a).reshape(a.shape))


def torch_loss(op, x, target, weight, reduction, ii, eps):
    if op == "nll":
        return F.nll_loss(x, target, weight=weight, ignore_index=ii, reduction=reduction)
    return F.cross_entropy(x, target, weight=weight, ignore_index=ii, reduction=reduction,
                           label_smoothing=eps)


def reference_loss(case, vals):
    """PyTorch's loss, total_weight and gradients (upstream grad_loss, and upstream ones)."""
    op, red = case["op"], case["reduction"]
    ii, eps = case["ignore_index"], case["label_smoothing"]
    shape = case["shape"]
    x = _t(vals["input"]).requires_grad_(True)
    if op == "cep":
        target = _t(vals["target"])
    else:
        tv = np.asarray(vals["target"], dtype=np.int64)
        target = torch.from_numpy(np.ascontiguousarray(tv).reshape(tv.shape))
    w = None if vals["weight"] is None else _t(vals["weight"])
    loss = torch_loss(op, x, target, w, red, ii, eps)
    g = _t(vals["grad_loss"])
    if case.get("grad_null"):
        g = torch.ones_like(loss)
    ref = {"loss": loss.detach().numpy().copy()}
    if x.numel():
        ref["grad"] = torch.autograd.grad(loss, x, g, retain_graph=True)[0].numpy().copy()
        ref["grad1"] = torch.autograd.grad(loss, x, torch.ones_like(loss))[0].numpy().copy()
    else:
        ref["grad"] = np.zeros(shape)
        ref["grad1"] = np.zeros(shape)
    with torch.no_grad():
        none = torch_loss(op, x, target, w, "none", ii, eps).numpy()
    C = shape[gen.class_axis(shape)]
    # total_weight from ATen's nll_loss_forward on the (samples, C) flattening. For 'none' it
    # is 0 except for a 1-D input, where it is w[t] (PyTorch's scalar path).
    if op != "cep":
        with torch.no_grad():
            if len(shape) == 1:
                x2, t2 = x.detach(), target
            else:
                x2 = x.detach().movedim(1, -1).reshape(-1, C)
                t2 = target.reshape(-1)
            tw = torch.ops.aten.nll_loss_forward(x2, t2, w, RED_ENUM[red], ii)[1]
        ref["tw"] = float(tw)
    # Scales for the tolerance. D: what a mean divides by.
    D = 1.0
    if red == "mean":
        D = float(none.size) if op == "cep" else ref["tw"]
    with np.errstate(all="ignore"):
        absn = np.abs(none)
        absn = absn[np.isfinite(absn)]
        fwd_scale = float(absn.sum() / abs(D)) if (absn.size and D != 0) else 0.0
        if not np.isfinite(fwd_scale):
            fwd_scale = 0.0
    ref["fwd_scale"] = fwd_scale
    ref["grad_scale"] = grad_scale(case, vals, g.numpy(), D)
    ref["grad1_scale"] = grad_scale(case, vals, np.ones_like(g.numpy()), D)
    return ref


def grad_scale(case, vals, g, D):
    """The largest sum over a row of |d loss / d log_softmax| (cross-entropy): what p - delta
    style cancellation in the gradient is relative to. 0 for nll_loss (no cancellation)."""
    op = case["op"]
    if op == "nll" or D == 0 or not np.isfinite(D):
        return 0.0
    shape = case["shape"]
    ca = gen.class_axis(shape)
    C = shape[ca]
    eps = case["label_smoothing"]
    w = np.ones(C) if vals["weight"] is None else np.abs(vals["weight"])
    gs = np.abs(np.broadcast_to(g, gen.sample_shape(shape))).reshape(-1)
    if op == "ce":
        t = np.asarray(vals["target"], dtype=np.int64).reshape(-1)
        valid = (t != case["ignore_index"]) & (t >= 0) & (t < C)
        wt = np.where(valid, w[np.clip(t, 0, C - 1)], 0.0)
        s = gs / abs(D) * ((eps / C) * w.sum() * valid + (1 - eps) * wt)
    else:
        q = np.moveaxis(np.abs(vals["target"]), ca, -1).reshape(-1, C)
        if eps > 0:
            q = q * (1 - eps) + eps / C
        s = gs / abs(D) * (np.abs(q) * w).sum(axis=1)
    with np.errstate(all="ignore"):
        s = s[np.isfinite(s)]
    return 2.0 * float(s.max()) if s.size else 0.0


def reference_lsm(case, vals):
    dim = case["dim"]
    x = _t(vals["input"])
    y = torch.log_softmax(x, dim)
    ref = {"y": y.numpy().copy()}
    y16 = gen.quantize(ref["y"], case["dtype"])  # what the backward is given
    g = _t(vals["grad_output"])
    gi = torch.ops.aten._log_softmax_backward_data(g, _t(y16), dim, torch.float64)
    ref["y_in"] = y16
    ref["grad"] = gi.numpy().copy()
    with np.errstate(all="ignore"):
        if x.numel():
            s = np.abs(vals["grad_output"]).sum(axis=dim)
            s = s[np.isfinite(s)]
            ref["grad_scale"] = float(s.max()) if s.size else 0.0
            yy = np.abs(ref["y"])
            yy = yy[np.isfinite(yy)]
            ref["fwd_scale"] = float(yy.max()) if yy.size else 0.0
        else:
            ref["grad_scale"] = ref["fwd_scale"] = 0.0
    return ref


# ---------------------------------------------------------------------------------------------
# Running the library

class Result:
    def __init__(self, case, path, checks, error=None):
        self.case, self.path, self.checks, self.error = case, path, checks, error

    @property
    def ok(self):
        return self.error is None and all(c.ok for c in self.checks)


def make_out(shape, dtype, kind, rng):
    vals = np.full(shape, SENTINEL)
    t, _ = gen.place(vals, dtype, kind, rng, SENTINEL, allow_bcast=False)
    return t, gen.snapshot(t)


def inplace_layout(kind):
    # An output may not overlap itself: no broadcast, no stride-0 size-1 tricks.
    return {"bcast": "perm_step", "odd1": "perm"}.get(kind, kind)


def run_loss_case(ctx, lib, case, ctx_mt=None):
    vals = gen.build_values(case)
    rng = vals["rng"]
    dt, op, red = case["dtype"], case["op"], case["reduction"]
    shape = case["shape"]
    sshape = gen.sample_shape(shape)
    tdt = case["target_dtype"]
    results = []

    # A broadcast layout makes the values constant along one dimension: the reference is
    # computed after the layout, on the values the library actually sees.
    X, vals["input"] = gen.place(vals["input"], dt, case["input_layout"], rng, np.nan)
    # Memory around a target holds an out-of-range class (or NaN), so a stray read shows.
    tfill = np.nan if (op == "cep" or tdt.startswith("float")) else min(gen.int_range(tdt)[1], 99)
    T, vals["target"] = gen.place(vals["target"], tdt, case["target_layout"], rng, tfill)
    ref = reference_loss(case, vals)
    Wt = None
    if vals["weight"] is not None:
        Wt, _ = gen.place(vals["weight"], dt, case["weight_layout"], rng, np.nan)
    opts = lib.options(red, case["ignore_index"], case["label_smoothing"], Wt, case.get("flags", 0))
    in_snap = [(n, t, gen.snapshot(t)) for n, t in (("input", X), ("target", T), ("weight", Wt))
               if t is not None]
    loss_shape = sshape if red == "none" else ((1,) if case["loss_1elem"] else ())
    okind = case["out_layout"]

    def inputs_unchanged():
        for n, t, snap in in_snap:
            now = gen.snapshot(t)
            if not np.array_equal(now, snap, equal_nan=True):
                return Check(False, msg="%s was modified by the call" % n)
        return Check(True)

    def untouched(name, t, snap):
        if gen.untouched_ok(t, snap):
            return Check(True)
        return Check(False, msg="%s: bytes outside the tensor were written" % name)

    def run(path, fn):
        try:
            checks = fn()
            results.append(Result(case, path, checks))
        except nllc.NllError as e:
            results.append(Result(case, path, [], error=str(e)))

    fwd_exact = op == "nll" and red == "none"
    # forward
    def fwd():
        L, Ls = make_out(loss_shape, dt, okind, rng)
        checks = []
        if op == "nll":
            TW = None
            if case["tw"]:
                TW, TWs = make_out((), dt, "contig", rng)
            ctx.loss_forward(X, T, opts, L, TW)
            if TW is not None:
                checks.append(compare("total_weight", TW.read(), ref["tw"], dt))
                checks.append(untouched("total_weight", TW, TWs))
        else:
            ctx.cross_entropy_forward(X, T, opts, L)
        checks.append(compare("loss", L.read(), ref["loss"], dt, ref["fwd_scale"], exact=fwd_exact))
        checks.append(untouched("loss", L, Ls))
        checks.append(inputs_unchanged())
        return checks

    run("fwd", fwd)

    G = None
    if not case["grad_null"]:
        G, _ = gen.place(vals["grad_loss"], dt, "contig" if red != "none" else
                         gen._pick(rng, ("contig", "step", "perm", "neg")), rng, np.nan)
    bwd_exact = op == "nll" and red in ("none", "sum")

    def bwd():
        GI, GIs = make_out(shape, dt, okind, rng)
        if op == "nll":
            ctx.loss_backward(G, X, T, opts, GI)
        else:
            ctx.cross_entropy_backward(G, X, T, opts, GI)
        return [compare("grad_input", GI.read(), ref["grad"], dt, ref["grad_scale"],
                        exact=bwd_exact),
                untouched("grad_input", GI, GIs), inputs_unchanged()]

    run("bwd", bwd)
    if op == "nll":
        return results

    def bwd_inplace():
        XI, _ = gen.place(vals["input"], dt, inplace_layout(case["input_layout"]), rng, np.nan,
                          allow_bcast=False)
        snap = gen.snapshot(XI)
        ctx.cross_entropy_backward(G, XI, T, opts, XI)
        return [compare("grad_input (in place)", XI.read(), ref["grad"], dt, ref["grad_scale"]),
                untouched("grad_input (in place)", XI, snap)]

    run("bwd_inplace", bwd_inplace)

    def fused():
        L, Ls = make_out(loss_shape, dt, okind, rng)
        GI, GIs = make_out(shape, dt, okind, rng)
        ctx.cross_entropy_fused(X, T, opts, L, GI)
        return [compare("loss", L.read(), ref["loss"], dt, ref["fwd_scale"]),
                compare("grad_input", GI.read(), ref["grad1"], dt, ref["grad1_scale"]),
                untouched("loss", L, Ls), untouched("grad_input", GI, GIs), inputs_unchanged()]

    run("fused", fused)

    def fused_inplace():
        XI, _ = gen.place(vals["input"], dt, inplace_layout(case["input_layout"]), rng, np.nan,
                          allow_bcast=False)
        snap = gen.snapshot(XI)
        L, Ls = make_out(loss_shape, dt, okind, rng)
        ctx.cross_entropy_fused(XI, T, opts, L, XI)
        return [compare("loss", L.read(), ref["loss"], dt, ref["fwd_scale"]),
                compare("grad_input (in place)", XI.read(), ref["grad1"], dt, ref["grad1_scale"]),
                untouched("loss", L, Ls), untouched("grad_input (in place)", XI, snap)]

    run("fused_inplace", fused_inplace)
    if ctx_mt is not None and case.get("threads_check"):
        run("threads", lambda: threads_check(ctx, ctx_mt, case, X, T, G, opts, loss_shape, rng))
    return results


def threads_check(ctx, ctx_mt, case, X, T, G, opts, loss_shape, rng):
    """The thread count never changes a result: one thread and several give identical bits."""
    dt, shape, op = case["dtype"], case["shape"], case["op"]
    outs = []
    for c in (ctx, ctx_mt):
        L, _ = make_out(loss_shape, dt, "contig", rng)
        GI, _ = make_out(shape, dt, "contig", rng)
        GB, _ = make_out(shape, dt, "contig", rng)
        if op == "nll":
            c.loss_forward(X, T, opts, L, None)
            c.loss_backward(G, X, T, opts, GB)
            outs.append((L.read(), GB.read()))
        else:
            c.cross_entropy_fused(X, T, opts, L, GI)
            c.cross_entropy_backward(G, X, T, opts, GB)
            L2, _ = make_out(loss_shape, dt, "contig", rng)
            c.cross_entropy_forward(X, T, opts, L2)
            outs.append((L.read(), GI.read(), GB.read(), L2.read()))
    checks = []
    for k, (a, b) in enumerate(zip(outs[0], outs[1])):
        same = bool(np.array_equal(a, b, equal_nan=True))
        checks.append(Check(bool(same), msg="" if same else
                            "output %d differs between 1 and %d threads (max |diff| %g)"
                            % (k, ctx_mt.threads(), float(np.nanmax(np.abs(a - b))) if a.size else 0)))
    return checks


def run_lsm_case(ctx, lib, case, ctx_mt=None):
    vals = gen.build_values(case)
    rng = vals["rng"]
    dt, shape, dim = case["dtype"], case["shape"], case["dim"]
    X, xv = gen.place(vals["input"], dt, case["input_layout"], rng, np.nan)
    vals["input"] = xv
    ref = reference_lsm(case, vals)
    okind = case["out_layout"]
    results = []
    xsnap = gen.snapshot(X)

    def run(path, fn):
        try:
            results.append(Result(case, path, fn()))
        except nllc.NllError as e:
            results.append(Result(case, path, [], error=str(e)))

    def unchanged(name, t, snap):
        if np.array_equal(gen.snapshot(t), snap, equal_nan=True):
            return Check(True)
        return Check(False, msg="%s was modified by the call" % name)

    def untouched(name, t, snap):
        if gen.untouched_ok(t, snap):
            return Check(True)
        return Check(False, msg="%s: bytes outside the tensor were written" % name)

    def fwd():
        Y, Ys = make_out(shape, dt, okind, rng)
        ctx.log_softmax_forward(X, dim, Y)
        return [compare("output", Y.read(), ref["y"], dt, ref["fwd_scale"]),
                untouched("output", Y, Ys), unchanged("input", X, xsnap)]

    def fwd_inplace():
        XI, _ = gen.place(vals["input"], dt, inplace_layout(case["input_layout"]), rng, np.nan,
                          allow_bcast=False)
        snap = gen.snapshot(XI)
        ctx.log_softmax_forward(XI, dim, XI)
        return [compare("output (in place)", XI.read(), ref["y"], dt, ref["fwd_scale"]),
                untouched("output (in place)", XI, snap)]

    Yin, yv = gen.place(ref["y_in"], dt, gen._pick(rng, ("contig", "perm", "step", "neg")), rng,
                        np.nan, allow_bcast=False)
    G, gv = gen.place(vals["grad_output"], dt, gen._pick(rng, gen.LAYOUTS), rng, np.nan)
    if not np.array_equal(gv, vals["grad_output"]):
        vals["grad_output"] = gv
        ref = reference_lsm(case, vals)
    in_snaps = [("output", Yin, gen.snapshot(Yin)), ("grad_output", G, gen.snapshot(G))]

    def bwd():
        GI, GIs = make_out(shape, dt, okind, rng)
        ctx.log_softmax_backward(G, Yin, dim, GI)
        return [compare("grad_input", GI.read(), ref["grad"], dt, ref["grad_scale"]),
                untouched("grad_input", GI, GIs)] + [unchanged(n, t, s) for n, t, s in in_snaps]

    def bwd_inplace():
        GG, _ = gen.place(vals["grad_output"], dt, inplace_layout(case["input_layout"]), rng,
                          np.nan, allow_bcast=False)
        snap = gen.snapshot(GG)
        ctx.log_softmax_backward(GG, Yin, dim, GG)
        return [compare("grad_input (in place)", GG.read(), ref["grad"], dt, ref["grad_scale"]),
                untouched("grad_input (in place)", GG, snap)]

    run("fwd", fwd)
    run("fwd_inplace", fwd_inplace)
    run("bwd", bwd)
    run("bwd_inplace", bwd_inplace)

    def threads():
        outs = []
        for c in (ctx, ctx_mt):
            Y, _ = make_out(shape, dt, "contig", rng)
            GI, _ = make_out(shape, dt, "contig", rng)
            c.log_softmax_forward(X, dim, Y)
            c.log_softmax_backward(G, Yin, dim, GI)
            outs.append((Y.read(), GI.read()))
        same = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(outs[0], outs[1]))
        return [Check(same, msg="" if same else "results differ between 1 and %d threads"
                      % ctx_mt.threads())]

    if ctx_mt is not None and case.get("threads_check"):
        run("threads", threads)
    return results


def run_case(ctx, lib, case, ctx_mt=None):
    if case["op"] == "lsm":
        return run_lsm_case(ctx, lib, case, ctx_mt)
    return run_loss_case(ctx, lib, case, ctx_mt)


# ---------------------------------------------------------------------------------------------
# Fixed cases: the checklist's worked examples (semantics.md section 15) that random cases
# rarely hit exactly, expressed as explicit parameter sets run through the same machinery.

def fixed_cases(start):
    X = [[-1, -2, -3], [-0.5, -1.5, -2.5], [-0.1, -0.2, -0.3]]
    Z = [[1, 2, 3], [1, 1, 1], [0, -1, 2]]
    W = [1, 2, 3]
    P = [[0.1, 0.2, 0.7], [1, 0, 0], [0.3, 0.3, 0.4]]
    x4 = (np.arange(24).reshape(2, 3, 2, 2) / 7).tolist()
    t4 = [[[0, 1], [2, -100]], [[1, 1], [0, 2]]]
    specs = []
    for red in ("mean", "sum", "none"):
        for w in (None, W, [0, 0, 0], [1, -2, 1], [1, np.inf, 1]):
            specs.append(("nll", X, [0, 1, 2], w, red, -100, 0.0))
            specs.append(("nll", X, [0, -100, 2], w, red, -100, 0.0))
            specs.append(("nll", X, [-100] * 3, w, red, -100, 0.0))
        specs += [
            ("nll", X, [0, 1, 2], None, red, 1, 0.0),
            ("nll", X, [0, -1, 2], None, red, -1, 0.0),
            ("nll", X, [0, 5, 2], None, red, 5, 0.0),
            ("nll", X[0], 1, None, red, -100, 0.0),
            ("nll", X[0], 1, W, red, -100, 0.0),
            ("nll", X[0], -100, None, red, -100, 0.0),  # CPU: NaN under mean; ours too
            ("nll", X[0], -100, W, red, -100, 0.0),
            ("nll", [[np.nan, 0, 0], [0, 0, 0]], [1, 0], None, red, -100, 0.0),
            ("nll", [[np.nan, 0, 0], [0, 0, 0]], [0, 0], None, red, -100, 0.0),
            ("nll", [[-np.inf, 0, 0], [0, 0, 0]], [0, 0], None, red, -100, 0.0),
            ("nll", [[2.0, 0.5]], [0], None, red, -100, 0.0),
            ("ce", Z, [2, 0, 1], None, red, -100, 0.0),
            ("ce", Z, [2, 0, 1], W, red, -100, 0.0),
            ("ce", Z, [2, 0, 1], None, red, -100, 0.1),
            ("ce", Z, [2, 0, 1], W, red, -100, 0.1),
            ("ce", Z, [2, -100, 1], W, red, -100, 0.1),
            ("ce", Z, [-100] * 3, None, red, -100, 0.1),
            ("ce", Z, [2, 0, 1], None, red, -100, 1.0),
            ("ce", Z[:2], [2, 0], W, red, -100, 0.3),
            # Every valid target has weight 0 while the smoothing term is not 0: PyTorch's mean
            # is (1 - e) * (0 / 0) + (e / C) * (s / 0) = NaN (also for e = 1: 0 * NaN).
            ("ce", Z, [0, 0, 0], [0, 1, 1], red, -100, 0.1),
            ("ce", Z, [0, 0, 0], [0, 1, 1], red, -100, 1.0),
            ("ce", Z, [0, 0, 0], [0, 0, 0], red, -100, 0.1),
            ("cep", Z[:2], [[0, 0, 1], [1, 0, 0]], W, red, -100, 0.3),
            ("cep", Z, P, None, red, -100, 0.0),
            ("cep", Z, P, W, red, -100, 0.0),
            ("cep", Z, P, None, red, -100, 0.2),
            ("ce", x4, t4, None, red, -100, 0.0),
            ("ce", x4, t4, W, red, -100, 0.0),
            ("ce", x4, t4, W, red, -100, 0.2),
            ("ce", [[0, -np.inf, 1]], [2], None, red, -100, 0.0),
            ("ce", [[0, -np.inf, 1]], [1], None, red, -100, 0.0),
            ("ce", [[0, -np.inf, 1]], [2], None, red, -100, 0.1),
            ("ce", [[-np.inf] * 3], [0], None, red, -100, 0.0),
            ("ce", [[-np.inf] * 3, [0, 1, 2]], [-100, 1], None, red, -100, 0.0),
            ("cep", [[0, -np.inf, 1]], [[0.5, 0, 0.5]], None, red, -100, 0.0),
            ("nll", np.zeros((0, 3)), np.zeros(0, dtype=np.int64), None, red, -100, 0.0),
            ("ce", np.zeros((2, 3, 0)), np.zeros((2, 0), dtype=np.int64), W, red, -100, 0.1),
            ("cep", np.zeros((0, 3)), np.zeros((0, 3)), None, red, -100, 0.0),
        ]
    cases = []
    for k, (op, x, t, w, red, ii, eps) in enumerate(specs):
        for dt in ("float32", "float64"):
            x_arr = np.array(x, dtype=np.float64)
            case = {"index": start + len(cases), "seed": 1000 + len(cases), "op": op,
                    "dtype": dt, "shape": x_arr.shape, "input_layout": "contig",
                    "out_layout": "contig", "reduction": red,
                    "weight": "fixed" if w is not None else "none", "weight_layout": "contig",
                    "grad_null": False, "loss_1elem": False, "tw": True,
                    "target_layout": "contig", "ignore_index": ii, "label_smoothing": eps,
                    "target_dtype": dt if op == "cep" else "int64", "fixed": True,
                    "_x": x_arr, "_t": np.array(t), "_w": None if w is None else np.array(w, dtype=np.float64)}
            cases.append(case)
    return cases




# ---------------------------------------------------------------------------------------------
# Deviations from PyTorch that the library documents: these must be errors, and errors must
# leave the outputs untouched.

def deviation_checks(ctx, lib):
    out = []
    rng = np.random.default_rng(7)

    def expect_error(name, fn, statuses, outs):
        snaps = [gen.snapshot(o) for o in outs]
        try:
            fn()
        except nllc.NllError as e:
            okst = e.name in statuses
            same = all(np.array_equal(gen.snapshot(o), s, equal_nan=True) for o, s in zip(outs, snaps))
            msg = ""
            if not okst:
                msg = "%s: expected %s, got %s: %s" % (name, "/".join(statuses), e.name, e.message)
            elif not same:
                msg = "%s: an output was written by a failing call" % name
            elif not e.message:
                msg = "%s: empty nll_last_error" % name
            out.append((name, okst and same and bool(e.message), msg))
            return
        out.append((name, False, "%s: expected %s, the call succeeded" % (name, "/".join(statuses))))

    x = nllc.from_numpy(np.array([-1.0, -2.0, -3.0]))
    t1 = nllc.from_numpy(np.array([1, 2, 0], dtype=np.int64))
    L, _ = make_out((), "float64", "contig", rng)
    # PyTorch 1.13 silently uses target[0]; the library (like newer PyTorch) rejects it.
    expect_error("nll 1-D input with 1-D target",
                 lambda: ctx.loss_forward(x, t1, lib.options("mean"), L, None),
                 ("NLL_ERROR_TARGET_SHAPE",), [L])
    # (C) input with a (C) int64 target: PyTorch takes the probability path and rejects it.
    expect_error("cross_entropy 1-D input with int (C) target",
                 lambda: ctx.cross_entropy_forward(x, t1, lib.options("mean"), L),
                 ("NLL_ERROR_TARGET_SHAPE", "NLL_ERROR_TARGET_DTYPE", "NLL_ERROR_PROBABILITY_SHAPE"),
                 [L])
    Z = nllc.from_numpy(np.array([[1.0, 2, 3], [1, 1, 1], [0, -1, 2]]))
    tz = nllc.from_numpy(np.array([2, 0, 1], dtype=np.int64))
    for eps in (-0.5, float("nan"), 1.5, float("inf"), -float("inf")):
        # PyTorch treats negative and NaN smoothing as 0; the library rejects them.
        expect_error("cross_entropy label_smoothing=%r" % eps,
                     lambda: ctx.cross_entropy_forward(Z, tz, lib.options("mean", -100, eps), L),
                     ("NLL_ERROR_LABEL_SMOOTHING",), [L])
    expect_error("nll_loss label_smoothing=0.1",
                 lambda: ctx.loss_forward(Z, tz, lib.options("mean", -100, 0.1), L, None),
                 ("NLL_ERROR_LABEL_SMOOTHING",), [L])
    P = nllc.from_numpy(np.array([[0.1, 0.2, 0.7], [1.0, 0, 0], [0.3, 0.3, 0.4]]))
    expect_error("probability target with ignore_index=0",
                 lambda: ctx.cross_entropy_forward(Z, P, lib.options("mean", 0), L),
                 ("NLL_ERROR_IGNORE_INDEX",), [L])
    tbad = nllc.from_numpy(np.array([0, 3, 1], dtype=np.int64))
    GI, _ = make_out((3, 3), "float64", "contig", rng)
    for red in ("none", "mean", "sum"):
        L3, _ = make_out((3,) if red == "none" else (), "float64", "contig", rng)
        expect_error("nll target out of range (%s)" % red,
                     lambda: ctx.loss_forward(Z, tbad, lib.options(red), L3, None),
                     ("NLL_ERROR_TARGET_RANGE",), [L3])
        # PyTorch's CPU 'none' backward writes out of bounds here; the library checks.
        expect_error("nll backward target out of range (%s)" % red,
                     lambda: ctx.loss_backward(None, Z, tbad, lib.options(red), GI),
                     ("NLL_ERROR_TARGET_RANGE",), [GI])
        expect_error("cross_entropy fused target out of range (%s)" % red,
                     lambda: ctx.cross_entropy_fused(Z, tbad, lib.options(red), L3, GI),
                     ("NLL_ERROR_TARGET_RANGE",), [L3, GI])
    # -100 is out of range when ignore_index is -1
    tm = nllc.from_numpy(np.array([0, -100, 2], dtype=np.int64))
    expect_error("target -100 with ignore_index=-1",
                 lambda: ctx.loss_forward(Z, tm, lib.options("mean", -1), L, None),
                 ("NLL_ERROR_TARGET_RANGE",), [L])
    # uint8 255 is not -100
    tu = nllc.from_numpy(np.array([0, 255, 2], dtype=np.uint8))
    expect_error("uint8 target 255 with ignore_index=-100",
                 lambda: ctx.loss_forward(Z, tu, lib.options("mean"), L, None),
                 ("NLL_ERROR_TARGET_RANGE",), [L])
    return out


# ---------------------------------------------------------------------------------------------
# Finite differences (float64, C API)

def fd_checks(ctx, lib, seed, count=24):
    """Analytic gradients (backward, fused) against central differences of the forward."""
    out = []
    for k in range(count):
        rng = np.random.default_rng([seed, 99, k])
        op = ("ce", "cep", "nll", "lsm", "ce", "ce")[k % 6]
        shape = [(3, 4), (2, 3, 2), (5,), (2, 4, 2, 2), (4, 1), (3, 5)][int(rng.integers(6))]
        if op == "cep" and len(shape) == 1:
            shape = (2, 5)
        red = ("none", "mean", "sum")[int(rng.integers(3))]
        ca = gen.class_axis(shape)
        C = shape[ca]
        sshape = gen.sample_shape(shape)
        x = rng.standard_normal(shape) * 2
        analytic = []  # (name, gradient, upstream)
        if op == "lsm":
            dim = int(rng.integers(len(shape))) - (len(shape) if rng.random() < 0.3 else 0)
            g = rng.standard_normal(shape)

            def f(xx, gg):
                Y = nllc.from_numpy(np.zeros(shape))
                ctx.log_softmax_forward(nllc.from_numpy(xx), dim, Y)
                return float((Y.read() * gg).sum())

            Y = nllc.from_numpy(np.zeros(shape))
            ctx.log_softmax_forward(nllc.from_numpy(x), dim, Y)
            GI = nllc.from_numpy(np.zeros(shape))
            ctx.log_softmax_backward(nllc.from_numpy(g), Y, dim, GI)
            analytic.append(("log_softmax_backward", GI.read(), g))
            desc = "lsm shape=%s dim=%d" % (shape, dim)
        else:
            w = rng.uniform(0.2, 2, C) if rng.random() < 0.5 else None
            eps = float(rng.choice([0.0, 0.1, 0.5, 1.0])) if op in ("ce", "cep") else 0.0
            ii = -100
            if op == "cep":
                e = np.exp(rng.standard_normal(shape))
                t = e / e.sum(axis=ca, keepdims=True)
            else:
                t = np.array(rng.integers(0, C, sshape), dtype=np.int64)
                if t.size > 1 and rng.random() < 0.5:
                    ii = int(rng.integers(0, C)) if rng.random() < 0.5 else -100
                    t.reshape(-1)[0] = ii
            g = np.array(rng.standard_normal(sshape if red == "none" else ()))
            Wt = None if w is None else nllc.from_numpy(w)
            opts = lib.options(red, ii, eps, Wt)
            lshape = sshape if red == "none" else ()
            T = nllc.from_numpy(t)

            def f(xx, gg):
                L = nllc.from_numpy(np.zeros(lshape))
                if op == "nll":
                    ctx.loss_forward(nllc.from_numpy(xx), T, opts, L, None)
                else:
                    ctx.cross_entropy_forward(nllc.from_numpy(xx), T, opts, L)
                return float((L.read() * gg).sum())

            GI = nllc.from_numpy(np.zeros(shape))
            G = nllc.from_numpy(g)
            if op == "nll":
                ctx.loss_backward(G, nllc.from_numpy(x), T, opts, GI)
                analytic.append(("nll_loss_backward", GI.read(), g))
            else:
                ctx.cross_entropy_backward(G, nllc.from_numpy(x), T, opts, GI)
                analytic.append(("cross_entropy_backward", GI.read(), g))
                L = nllc.from_numpy(np.zeros(lshape))
                GF = nllc.from_numpy(np.zeros(shape))
                ctx.cross_entropy_fused(nllc.from_numpy(x), T, opts, L, GF)
                analytic.append(("cross_entropy_fused", GF.read(), np.ones(lshape)))
            desc = "%s shape=%s reduction=%s weight=%s ignore_index=%d label_smoothing=%g" % (
                op, shape, red, w is not None, ii, eps)
        h = 1e-5
        for name, a, gg in analytic:
            fd = np.zeros(shape)
            for idx in np.ndindex(*shape):
                xp = x.copy()
                xp[idx] += h
                xm = x.copy()
                xm[idx] -= h
                fd[idx] = (f(xp, gg) - f(xm, gg)) / (2 * h)
            scale = max(float(np.abs(fd).max()) if fd.size else 0.0, 1e-3)
            err = float(np.abs(a - fd).max()) if fd.size else 0.0
            ok = err <= 1e-6 * scale
            out.append((desc + " " + name, ok, err / scale,
                        "" if ok else "%s: %s: max |analytic - finite difference| = %.3g (scale %.3g)"
                        % (desc, name, err, scale)))
    return out


# ---------------------------------------------------------------------------------------------
# The nll tool

def cli_cases(seed, count):
    cases = []
    for k in range(count):
        rng = np.random.default_rng([seed, 7, k])
        op = ("nll", "ce", "cep")[int(rng.choice(3, p=[0.35, 0.45, 0.2]))]
        dt = ("float64", "float32")[int(rng.integers(2))]
        rank = int(rng.choice([1, 2, 3, 4], p=[0.1, 0.5, 0.2, 0.2]))
        C = int(rng.integers(1, 8))
        if rank == 1:
            shape = (C,)
        else:
            shape = (int(rng.integers(0 if rng.random() < 0.05 else 1, 6)), C) + tuple(
                int(rng.integers(1, 4)) for _ in range(rank - 2))
        red = ("mean", "sum", "none")[int(rng.integers(3))]
        ii = -100
        if op != "cep" and rng.random() < 0.4:
            ii = int(rng.choice([-1, int(rng.integers(0, C))]))
        eps = float(rng.choice([0.0, 0.1, 0.5, 1.0])) if op != "nll" else 0.0
        cases.append({"index": k, "seed": int(rng.integers(2**31)), "op": op, "dtype": dt,
                      "shape": shape, "reduction": red, "ignore_index": ii,
                      "label_smoothing": eps,
                      "weight": ("none", "rand", "zeros")[int(rng.integers(3))],
                      "neginf": "some" if rng.random() < 0.15 else "none",
                      "ignore_frac": 0.3 if rng.random() < 0.5 else 0.0,
                      "target_dtype": "int64", "prob_kind": "simplex", "scale": 2.0,
                      "nll_input": "logp", "grad_null": False, "cli": True})
    return cases


def run_cli_case(nll, case, tmp):
    vals = gen.build_values(case)
    dt = case["dtype"]
    npdt = np.float64 if dt == "float64" else np.float32
    paths = {k: os.path.join(tmp, "%s.npy" % k) for k in ("input", "target", "weight", "loss", "grad")}
    for p in paths.values():
        if os.path.exists(p):
            os.unlink(p)
    np.save(paths["input"], vals["input"].astype(npdt))
    if case["op"] == "cep":
        np.save(paths["target"], np.asarray(vals["target"]).astype(npdt))
    else:
        np.save(paths["target"], np.asarray(vals["target"], dtype=np.int64))
    cmd = [nll, "loss", "--input", paths["input"], "--target", paths["target"],
           "--op", "nll" if case["op"] == "nll" else "cross-entropy",
           "--reduction", case["reduction"], "--ignore-index", str(case["ignore_index"]),
           "--out", paths["loss"], "--grad", paths["grad"], "--no-check-finite"]
    if case["op"] != "nll":
        cmd += ["--label-smoothing", repr(case["label_smoothing"])]
    if vals["weight"] is not None:
        np.save(paths["weight"], vals["weight"].astype(npdt))
        cmd += ["--weight", paths["weight"]]
    vals["grad_loss"] = np.ones(() if case["reduction"] != "none" else gen.sample_shape(case["shape"]))
    ref = reference_loss(case, vals)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if p.returncode != 0:
        return [Check(False, msg="exit status %d: %s" % (p.returncode,
                                                        p.stderr.decode(errors="replace").strip()[:400]))], cmd
    checks = []
    try:
        loss = np.load(paths["loss"])
        grad = np.load(paths["grad"])
    except Exception as e:  # noqa: BLE001
        return [Check(False, msg="reading the outputs: %s" % e)], cmd
    want_shape = gen.sample_shape(case["shape"]) if case["reduction"] == "none" else ()
    if loss.dtype != npdt or grad.dtype != npdt:
        checks.append(Check(False, msg="output dtypes %s/%s, expected %s" % (loss.dtype, grad.dtype, dt)))
    if loss.shape != tuple(want_shape):
        checks.append(Check(False, msg="loss shape %s, expected %s" % (loss.shape, tuple(want_shape))))
    if grad.shape != tuple(case["shape"]):
        checks.append(Check(False, msg="grad shape %s, expected %s" % (grad.shape, tuple(case["shape"]))))
    checks.append(compare("loss", loss, ref["loss"], dt, ref["fwd_scale"]))
    checks.append(compare("grad", grad, ref["grad"], dt, ref["grad_scale"]))
    return checks, cmd


def cli_error_checks(nll, tmp):
    """Exit statuses: 1 for input the library rejects, 2 for usage and file errors."""
    out = []
    x = os.path.join(tmp, "ex.npy")
    t = os.path.join(tmp, "et.npy")
    np.save(x, np.array([[-1.0, -2.0, -3.0], [-0.5, -1.5, -2.5]]))
    np.save(t, np.array([0, 3], dtype=np.int64))
    for name, args, want in (
            ("target out of range", ["loss", "--input", x, "--target", t], 1),
            ("missing file", ["loss", "--input", x + ".missing", "--target", t], 2),
            ("unknown option", ["loss", "--input", x, "--target", t, "--bogus"], 2),
            ("bad reduction", ["loss", "--input", x, "--target", t, "--reduction", "avg"], 2)):
        p = subprocess.run([nll] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        ok = p.returncode == want
        out.append(("cli " + name, ok, "" if ok else "cli %s: exit %d, expected %d (%s)" % (
            name, p.returncode, want, p.stderr.decode(errors="replace").strip()[:300])))
    return out


# ---------------------------------------------------------------------------------------------
# Driver

class Stats:
    def __init__(self):
        self.n = self.failed = 0
        self.max_abs = self.max_rel = self.ratio = 0.0

    def add(self, ok, checks):
        self.n += 1
        self.failed += 0 if ok else 1
        for c in checks:
            if np.isfinite(c.max_abs):
                self.max_abs = max(self.max_abs, c.max_abs)
            if np.isfinite(c.max_rel):
                self.max_rel = max(self.max_rel, c.max_rel)
            if np.isfinite(c.ratio):
                self.ratio = max(self.ratio, c.ratio)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", help="path to libnll.so (default: $NLL_LIB or the linker's search)")
    ap.add_argument("--nll", help="path to the nll tool (its part fails if missing)")
    ap.add_argument("--cases", type=int, default=1500, help="number of random C API cases")
    ap.add_argument("--cli-cases", type=int, default=110)
    ap.add_argument("--seed", type=int, default=20240607)
    ap.add_argument("--case", type=int, action="append", help="run only these case indices")
    ap.add_argument("--threads", type=int, default=None, help="nll_context_set_threads")
    ap.add_argument("--no-fixed", action="store_true")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()

    t0 = time.time()
    lib = nllc.Lib(args.lib)
    ctx = lib.context(args.threads)
    ctx_mt = lib.context(3)  # for the thread-count-independence checks
    print("libnll %s (%s), torch %s, numpy %s" % (lib.version()[1], lib.path, torch.__version__,
                                                 np.__version__))

    cases = [gen.random_case(i, args.seed) for i in range(args.cases)]
    if not args.no_fixed:
        cases += fixed_cases(args.cases)
    if args.case:
        cases = [c for c in cases if c["index"] in set(args.case)]
    stats = {}
    failures = []
    total = failed = 0
    for case in cases:
        try:
            results = run_case(ctx, lib, case, ctx_mt)
        except Exception as e:  # noqa: BLE001 -- a harness error is a failure, not a crash
            import traceback
            traceback.print_exc()
            results = [Result(case, "harness", [], error="harness error: %r" % (e,))]
        total += 1
        case_ok = True
        for r in results:
            key = (case["op"], case["dtype"], r.path)
            stats.setdefault(key, Stats()).add(r.ok, r.checks)
            if not r.ok:
                case_ok = False
                msgs = [r.error] if r.error else [c.msg for c in r.checks if not c.ok]
                failures.append("case %d [%s] %s: %s" % (case["index"], r.path, gen.describe(case),
                                                         "; ".join(msgs)))
        failed += 0 if case_ok else 1
        if args.verbose:
            print("case %d %s: %s" % (case["index"], "ok" if case_ok else "FAILED", gen.describe(case)))

    # Documented deviations
    if not args.case:
        for name, ok, msg in deviation_checks(ctx, lib):
            total += 1
            stats.setdefault(("deviation", "float64", "error"), Stats()).add(ok, [])
            if not ok:
                failed += 1
                failures.append("deviation [%s]: %s" % (name, msg))
        for name, ok, rel, msg in fd_checks(ctx, lib, args.seed):
            total += 1
            st = stats.setdefault(("finite-diff", "float64", "grad"), Stats())
            st.add(ok, [Check(ok, 0.0, rel, 0.0)])
            if not ok:
                failed += 1
                failures.append("finite differences [%s]: %s" % (name, msg))

    # The tool
    if args.nll and not args.case:
        if not (os.path.isfile(args.nll) and os.access(args.nll, os.X_OK)):
            n = args.cli_cases
            total += n
            failed += n
            failures.append("cli: the nll tool %s does not exist or is not executable: all %d "
                            "CLI cases fail" % (args.nll, n))
            stats.setdefault(("cli", "-", "loss+grad"), Stats()).n += n
            stats[("cli", "-", "loss+grad")].failed += n
        else:
            with tempfile.TemporaryDirectory(prefix="nll-conf-") as tmp:
                for case in cli_cases(args.seed, args.cli_cases):
                    total += 1
                    try:
                        checks, cmd = run_cli_case(args.nll, case, tmp)
                    except Exception as e:  # noqa: BLE001
                        checks, cmd = [Check(False, msg="harness error: %r" % (e,))], []
                    ok = all(c.ok for c in checks)
                    stats.setdefault(("cli-" + case["op"], case["dtype"], "loss+grad"), Stats()).add(ok, checks)
                    if not ok:
                        failed += 1
                        failures.append("cli case %d %s: %s\n    command: %s" % (
                            case["index"], gen.describe(case),
                            "; ".join(c.msg for c in checks if not c.ok), " ".join(cmd)))
                for name, ok, msg in cli_error_checks(args.nll, tmp):
                    total += 1
                    stats.setdefault(("cli-errors", "-", "exit"), Stats()).add(ok, [])
                    if not ok:
                        failed += 1
                        failures.append(msg)

    ctx.close()
    ctx_mt.close()
    print("%-12s %-9s %-14s %6s %6s %12s %12s %10s" % ("op", "dtype", "path", "runs", "failed",
                                                       "max |err|", "max rel", "max err/tol"))
    for key in sorted(stats):
        s = stats[key]
        print("%-12s %-9s %-14s %6d %6d %12.3g %12.3g %10.3g" % (key[0], key[1], key[2], s.n, s.failed,
                                                                 s.max_abs, s.max_rel, s.ratio))
    for f in failures:
        print("FAIL " + f)
    print("time: %.1f s" % (time.time() - t0))
    print("conformance: %d cases, %d failed" % (total, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
