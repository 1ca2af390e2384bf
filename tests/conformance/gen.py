"""Case generation for the conformance suite: random but reproducible cases, tensor layouts
(contiguous, permuted, stepped, negative strides, broadcast, odd strides on size-1 dims,
offsets through the data pointer or byte_offset) and dtype rounding.

Every case is a plain dict of parameters plus its own seed, so a failing case can be rebuilt
alone (test_conformance.py --case K).
"""

import numpy as np
import torch

import nllc

FLOAT_DTYPES = ("float64", "float32", "float16", "bfloat16")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")

_NP_FLOAT = {"float64": np.float64, "float32": np.float32, "float16": np.float16}


def quantize(values, dtype):
    """float64 values rounded (to nearest even) to `dtype`, returned as float64."""
    v = np.asarray(values, dtype=np.float64)
    if dtype == "bfloat16":
        # (np.ascontiguousarray makes a 0-d array 1-d: reshape back)
        return torch.from_numpy(np.ascontiguousarray(v)).to(torch.bfloat16).to(
            torch.float64).numpy().reshape(v.shape)
    return v.astype(_NP_FLOAT[dtype]).astype(np.float64)


FLOAT_TARGET_RANGE = {"float16": (-2048, 2048), "float32": (-2**24, 2**24),
                      "float64": (-2**53, 2**53)}


def int_range(dtype):
    """The whole numbers a target dtype holds exactly (floats: NLL_ALLOW_FLOAT_TARGETS)."""
    if dtype in FLOAT_TARGET_RANGE:
        return FLOAT_TARGET_RANGE[dtype]
    info = np.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


def make_flat_buffer(n, dtype, fill):
    """A flat buffer of n elements of `dtype` filled with `fill`."""
    n = max(int(n), 1)
    if dtype == "bfloat16":
        return torch.full((n,), float(fill), dtype=torch.bfloat16)
    if dtype in _NP_FLOAT:
        return np.full(n, fill, dtype=_NP_FLOAT[dtype])
    return np.full(n, fill, dtype=np.dtype(dtype))


def _store(buf, idx, values):
    if isinstance(buf, np.ndarray):
        buf[idx.reshape(-1)] = np.asarray(values).reshape(-1).astype(buf.dtype)
    else:
        buf[torch.from_numpy(idx.reshape(-1))] = torch.from_numpy(
            np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))).to(buf.dtype)


LAYOUTS = ("contig", "contig_null", "perm", "step", "neg", "perm_step", "perm_neg_step",
           "bcast", "odd1", "offset")


def layout_strides(shape, kind, rng):
    """Element strides for `shape` under layout `kind`; returns (strides, compact)."""
    nd = len(shape)
    if kind in ("contig", "contig_null") or nd == 0:
        return None, True
    order = list(range(nd))
    steps = [1] * nd
    if "perm" in kind:
        order = list(rng.permutation(nd))
    if "step" in kind or kind == "offset":
        steps = [int(rng.integers(1, 4)) for _ in range(nd)]
        if kind == "offset":
            steps = [1] * nd
    strides = [0] * nd
    acc = 1
    for d in reversed(order):
        strides[d] = acc * steps[d]
        acc = strides[d] * max(shape[d], 1)
    if "neg" in kind:
        flip = [d for d in range(nd) if rng.random() < 0.6] or [int(rng.integers(nd))]
        for d in flip:
            strides[d] = -strides[d]
    if kind == "odd1":
        # Any stride is legal on a size-1 dimension; numpy/torch produce such strides.
        for d in range(nd):
            if shape[d] == 1:
                strides[d] = int(rng.choice([0, 7, -3, 1000]))
    return strides, False


def place(values, dtype, kind, rng, fill, allow_bcast=True):
    """Lay `values` (a float64/int array) out in a fresh buffer of `dtype` under layout `kind`.

    Returns (Tensor, values) where values may have changed for the broadcast layout (made
    constant along the broadcast dimension).
    """
    values = np.asarray(values)
    shape = values.shape
    use_byte_offset = bool(rng.random() < 0.5)
    if kind == "bcast":
        cand = [d for d in range(len(shape)) if shape[d] > 1]
        if not allow_bcast or not cand or values.size == 0:
            kind = "perm_step"
        else:
            d = int(rng.choice(cand))
            first = np.take(values, [0], axis=d)
            values = np.ascontiguousarray(np.broadcast_to(first, shape))
            strides, _ = layout_strides(shape, "step", rng)
            strides = list(strides)
            strides[d] = 0
            return _finish(values, dtype, shape, strides, rng, fill, use_byte_offset, False), values
    strides, compact = layout_strides(shape, kind, rng)
    if compact:
        pad = 0 if kind == "contig_null" else int(rng.integers(0, 3))
        return _finish(values, dtype, shape, None, rng, fill, use_byte_offset,
                       kind == "contig_null", pad=pad), values
    return _finish(values, dtype, shape, strides, rng, fill, use_byte_offset, False), values


def _finish(values, dtype, shape, strides, rng, fill, use_byte_offset, null_strides, pad=None):
    if strides is None:
        st, acc = [], 1
        for s in reversed(shape):
            st.append(acc)
            acc *= max(s, 1)
        full_strides = list(reversed(st))
    else:
        full_strides = list(strides)
    empty = any(s == 0 for s in shape)
    lo = hi = 0
    if not empty:
        for n, s in zip(shape, full_strides):
            lo += min(0, (n - 1) * s)
            hi += max(0, (n - 1) * s)
    front = int(rng.integers(0, 4)) if pad is None else pad
    back = int(rng.integers(0, 4)) if pad is None else pad
    offset = front - lo
    size = offset + hi + 1 + back
    buf = make_flat_buffer(size, dtype, fill)
    t = nllc.Tensor(buf, shape, strides=strides, offset=offset, use_byte_offset=use_byte_offset,
                    null_strides=null_strides)
    if not empty:
        _store(buf, t.flat_indices(), values)
    return t


def snapshot(t):
    """A copy of a Tensor's whole buffer (as float64 or int), for untouched-memory checks."""
    return np.array(nllc.buf_to_numpy(t.buf), copy=True)


def untouched_ok(t, before):
    """True if every buffer element outside the tensor's own elements is unchanged."""
    now = nllc.buf_to_numpy(t.buf)
    mask = np.ones(now.shape[0], dtype=bool)
    if all(s > 0 for s in t.shape):
        mask[t.flat_indices().reshape(-1)] = False
    a, b = now[mask], before[mask]
    if a.dtype.kind == "f":
        return bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))
    return bool(np.all(a == b))


# ---------------------------------------------------------------------------------------------
# Random cases

OPS = ("nll", "ce", "cep", "lsm")


def _pick(rng, items, probs=None):
    if probs is not None:
        probs = np.asarray(probs, dtype=np.float64)
        probs = probs / probs.sum()
    return items[int(rng.choice(len(items), p=probs))]


# The larger shapes also cross the library's block size (2^15 elements of work), so several
# blocks (and threads) take part; the multi-threaded rerun must give identical bits.
BIG_SHAPES = [(64, 1000), (128, 37), (4, 100, 16), (2, 10, 8, 8), (3, 5, 4, 3, 2), (1000, 3),
              (1, 2, 300), (512, 300), (5000, 7), (8, 16, 32, 32), (2, 3, 40, 30, 20)]


def random_shape(rng, big=False):
    if big:
        return tuple(BIG_SHAPES[int(rng.integers(len(BIG_SHAPES)))])
    rank = _pick(rng, (1, 2, 3, 4, 5), (0.12, 0.38, 0.2, 0.18, 0.12))
    c = 1 if rng.random() < 0.08 else int(rng.integers(2, 13))
    if rank == 1:
        return (c,)
    n = 0 if rng.random() < 0.05 else int(rng.integers(1, 7))
    spatial = []
    for _ in range(rank - 2):
        spatial.append(0 if rng.random() < 0.05 else int(rng.integers(1, 5)))
    return (n, c) + tuple(spatial)


def random_case(index, seed):
    """The parameters of case `index` (deterministic in (seed, index))."""
    rng = np.random.default_rng([seed, index])
    op = _pick(rng, OPS, (0.28, 0.37, 0.15, 0.20))
    dtype = _pick(rng, FLOAT_DTYPES, (0.3, 0.3, 0.2, 0.2))
    big = rng.random() < 0.03
    shape = random_shape(rng, big)
    case = {
        "index": index,
        "seed": int(rng.integers(2**31)),
        "op": op,
        "dtype": dtype,
        "shape": shape,
        "input_layout": _pick(rng, LAYOUTS, (4, 1, 2, 1.5, 1, 1, 1, 0.7, 0.5, 1)),
        "out_layout": _pick(rng, ("contig", "contig_null", "perm", "step", "neg", "offset"),
                            (5, 1, 1, 1, 1, 1)),
        "scale": float(_pick(rng, (1.0, 3.0, 0.3), (0.6, 0.3, 0.1))),
        "neginf": _pick(rng, ("none", "some", "target", "row"), (0.8, 0.1, 0.04, 0.06)),
    }
    if op == "lsm":
        nd = len(shape)
        if rng.random() < 0.7:
            dim = 0 if nd == 1 else 1
        else:
            dim = int(rng.integers(nd))
        if rng.random() < 0.3:
            dim -= nd
        case["dim"] = dim
        case["special"] = _pick(rng, ("none", "nan", "posinf", "huge"), (0.85, 0.05, 0.05, 0.05))
        case["threads_check"] = bool(big or rng.random() < 0.1)
        return case
    case["reduction"] = _pick(rng, ("none", "mean", "sum"))
    case["weight"] = _pick(rng, ("none", "rand", "zeros"), (0.45, 0.35, 0.2))
    case["weight_layout"] = _pick(rng, ("contig", "step", "neg", "offset"), (3, 1, 1, 1))
    case["grad_null"] = bool(rng.random() < 0.15)
    case["loss_1elem"] = bool(rng.random() < 0.15)  # a (1,) loss for mean/sum
    case["tw"] = bool(rng.random() < 0.8)  # pass total_weight (nll only)
    case["target_layout"] = _pick(rng, LAYOUTS, (4, 1, 2, 1.5, 1, 1, 1, 0.7, 0.5, 1))
    if op == "cep":
        case["ignore_index"] = int(_pick(rng, (-100, -1, -7), (0.6, 0.3, 0.1)))
        case["prob_kind"] = _pick(rng, ("simplex", "zeros", "onehot", "free"), (0.5, 0.2, 0.15, 0.15))
        case["target_dtype"] = dtype
    else:
        c = shape[1] if len(shape) > 1 else shape[0]
        ii_kind = _pick(rng, ("default", "inrange", "minus1", "255", "big"), (0.5, 0.22, 0.2, 0.05, 0.03))
        ii = {"default": -100, "minus1": -1, "255": 255, "big": 2**40 + 3,
              "inrange": int(rng.integers(0, max(c, 1)))}[ii_kind]
        case["ignore_index"] = ii
        case["ignore_frac"] = float(_pick(rng, (0.0, 0.2, 1.0), (0.3, 0.6, 0.1)))
        tdt = _pick(rng, INT_DTYPES, (1, 1, 1, 5, 1, 1, 1, 1))
        if c - 1 > int_range(tdt)[1]:
            tdt = "int64"  # the classes do not fit (e.g. C = 1000 in int8)
        if rng.random() < 0.06:
            # Whole-number float class indices, accepted with NLL_ALLOW_FLOAT_TARGETS.
            tdt = _pick(rng, ("float16", "float32", "float64"))
            if case["ignore_index"] > 2048:
                case["ignore_index"] = -100
            case["flags"] = nllc.NLL_ALLOW_FLOAT_TARGETS
        case["target_dtype"] = tdt
        if op == "nll":
            case["nll_input"] = _pick(rng, ("logp", "free"), (0.85, 0.15))
    if rng.random() < 0.2:
        # -inf is allowed under NLL_CHECK_FINITE; random loss cases hold no NaN or +inf.
        case["flags"] = case.get("flags", 0) | nllc.NLL_CHECK_FINITE
    case["threads_check"] = bool(big or rng.random() < 0.1)
    if op in ("ce", "cep"):
        case["label_smoothing"] = float(_pick(rng, (0.0, 0.1, 0.5, 1.0), (0.4, 0.2, 0.2, 0.2)))
    else:
        case["label_smoothing"] = 0.0
    return case


def class_axis(shape):
    return 0 if len(shape) == 1 else 1


def sample_shape(shape):
    ca = class_axis(shape)
    return tuple(s for i, s in enumerate(shape) if i != ca)


def build_values(case):
    """The float64 values (already rounded to the case's dtype) of every tensor of a case."""
    if case.get("fixed"):
        return _fixed_values(case)
    rng = np.random.default_rng(case["seed"])
    dtype, shape, op = case["dtype"], case["shape"], case["op"]
    ca = class_axis(shape)
    C = shape[ca]
    sshape = sample_shape(shape)
    logits = rng.standard_normal(shape) * case["scale"]
    vals = {}
    if op == "nll" and case.get("nll_input") == "logp":
        with np.errstate(all="ignore"):
            m = logits.max(axis=ca, keepdims=True) if logits.size else logits
            x = logits - m
            x = x - np.log(np.exp(x).sum(axis=ca, keepdims=True))
    else:
        x = logits
    x = np.array(x, dtype=np.float64)
    # Targets first (the -inf placement may want them).
    if op in ("nll", "ce"):
        tdt = case["target_dtype"]
        lo, hi = int_range(tdt)
        t = rng.integers(0, max(C, 1), size=sshape).astype(np.int64)
        ii = case["ignore_index"]
        if case["ignore_frac"] > 0 and lo <= ii <= hi and t.size:
            mask = rng.random(sshape) < case["ignore_frac"]
            t[mask] = ii
        vals["target"] = t
    elif op == "cep":
        q = None
        kind = case["prob_kind"]
        xs = np.moveaxis(rng.standard_normal(shape) * 2, ca, -1)
        if kind == "simplex":
            e = np.exp(xs)
            q = e / e.sum(axis=-1, keepdims=True)
        elif kind == "zeros":
            e = np.exp(xs) * (rng.random(xs.shape) < 0.5)
            s = e.sum(axis=-1, keepdims=True)
            q = np.where(s > 0, e / np.where(s > 0, s, 1), 0.0)
        elif kind == "onehot":
            q = np.zeros(xs.shape)
            if q.size:
                idx = rng.integers(0, C, size=xs.shape[:-1])
                np.put_along_axis(q, idx[..., None], 1.0, axis=-1)
        else:  # nothing checks that rows are distributions
            q = rng.random(xs.shape) * 1.5
        vals["target"] = quantize(np.moveaxis(q, -1, ca), dtype)
    # -inf logits (a masked logit, or log-probability of zero)
    ni = case["neginf"]
    if ni != "none" and x.size:
        xc = np.moveaxis(x, ca, -1)  # a view: writes go to x
        rows = xc.reshape(-1, C)
        nrows = rows.shape[0]
        if ni == "some":
            mask = rng.random(rows.shape) < 0.15
            rows[mask] = -np.inf
        elif ni == "target" and op in ("nll", "ce"):
            tflat = np.array(vals["target"]).reshape(-1)
            for r in range(nrows):
                if 0 <= tflat[r] < C and rng.random() < 0.4:
                    rows[r, tflat[r]] = -np.inf
        else:  # whole rows: log_softmax gives NaN, cross_entropy a NaN loss and gradient
            r = int(rng.integers(nrows))
            rows[r, :] = -np.inf
        x = np.moveaxis(rows.reshape(xc.shape), -1, ca)
    if op == "lsm":
        sp = case["special"]
        if sp != "none" and x.size:
            flat = x.reshape(-1)
            k = int(rng.integers(flat.size))
            flat[k] = {"nan": np.nan, "posinf": np.inf, "huge": 1e4}[sp]
            x = flat.reshape(shape)
    vals["input"] = quantize(x, dtype)
    if op != "lsm":
        w = None
        if case["weight"] == "rand":
            w = rng.uniform(0.1, 2.0, size=C)
        elif case["weight"] == "zeros":
            w = rng.uniform(0.1, 2.0, size=C) * (rng.random(C) < 0.5)
            if rng.random() < 0.2:
                w[:] = 0.0
        vals["weight"] = None if w is None else quantize(w, dtype)
        red = case["reduction"]
        gshape = () if red != "none" else sshape
        vals["grad_loss"] = quantize(rng.standard_normal(gshape), dtype)
    else:
        vals["grad_output"] = quantize(rng.standard_normal(shape), dtype)
    vals["rng"] = rng
    return vals


def _fixed_values(case):
    """A fixed case carries its input, target and weight (_x, _t, _w) itself."""
    rng = np.random.default_rng(case["seed"])
    dt = case["dtype"]
    sshape = sample_shape(case["shape"])
    gshape = () if case["reduction"] != "none" else sshape
    return {"input": quantize(case["_x"], dt),
            "target": (quantize(case["_t"], dt) if case["op"] == "cep"
                       else np.asarray(case["_t"], dtype=np.int64)),
            "weight": None if case["_w"] is None else quantize(case["_w"], dt),
            "grad_loss": quantize(rng.standard_normal(gshape), dt),
            "rng": rng}


def describe(case):
    keys = ["index", "fixed", "op", "dtype", "shape", "reduction", "weight", "ignore_index",
            "ignore_frac", "label_smoothing", "target_dtype", "input_layout", "target_layout",
            "out_layout", "neginf", "prob_kind", "nll_input", "dim", "special", "scale",
            "grad_null", "loss_1elem", "flags", "seed"]
    text = ", ".join("%s=%s" % (k, case[k]) for k in keys if k in case)
    if case.get("fixed"):
        text += ", input=%s, target=%s, weight=%s" % (
            np.asarray(case["_x"]).tolist(), np.asarray(case["_t"]).tolist(),
            None if case["_w"] is None else np.asarray(case["_w"]).tolist())
    return text
