"""Values of nll.nll_loss / cross_entropy / log_softmax against torch.nn.functional, on
generated cases, for numpy and torch inputs, every float dtype and several layouts."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nll
from conftest import assert_close

TARGET_DTYPES = [np.int64, np.int32, np.int16, np.uint8, np.int8, np.uint64]


def make_case(seed):
    """A random problem: numpy arrays and the keyword arguments of the call."""
    rng = np.random.default_rng(seed)
    ndim = int(rng.choice([1, 2, 2, 3, 4]))
    C = int(rng.integers(1, 7))
    if ndim == 1:
        shape = (C,)
    else:
        shape = (int(rng.integers(0, 5)) if seed % 11 == 0 else int(rng.integers(1, 5)), C)
        shape += tuple(int(rng.integers(1, 4)) for _ in range(ndim - 2))
    sample_shape = shape[:1] + shape[2:] if ndim > 1 else ()
    dtype = np.float64 if seed % 2 else np.float32
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    kw = {"reduction": str(rng.choice(["none", "mean", "sum"]))}
    tdtype = TARGET_DTYPES[seed % len(TARGET_DTYPES)]
    ignore = -100
    if rng.random() < 0.5:
        # An ignore_index the target dtype can hold: a class (ignored) or -1 (signed only).
        ignore = int(rng.integers(0, C)) if tdtype in (np.uint8, np.uint64) or rng.random() < .5 \
            else -1
        kw["ignore_index"] = ignore
    t = rng.integers(0, C, size=sample_shape)
    if ignore != -100 and t.size:
        t.reshape(-1)[rng.random(t.size) < 0.3] = ignore
    t = t.astype(tdtype)
    if rng.random() < 0.5:
        kw["weight"] = rng.uniform(0.1, 2.0, C).astype(dtype)
    return x, t, kw


def torch_kw(kw):
    out = dict(kw)
    if out.get("weight") is not None:
        out["weight"] = torch.from_numpy(out["weight"])
    return out


def strided(arr, rng):
    """The same values in a non-contiguous numpy view (every other element of a bigger one,
    reversed along the last axis)."""
    if arr.ndim == 0:
        return arr
    big = np.zeros(arr.shape[:-1] + (arr.shape[-1] * 2,), dtype=arr.dtype)
    view = big[..., ::-2]
    view[...] = arr
    assert not view.flags.c_contiguous or arr.shape[-1] <= 1
    return view


@pytest.mark.parametrize("seed", range(48))
def test_cross_entropy_and_nll_loss_numpy(seed):
    x, t, kw = make_case(seed)
    rng = np.random.default_rng(seed + 1000)
    ls = float(rng.choice([0.0, 0.0, 0.1, 0.7]))
    xs = strided(x, rng) if seed % 3 == 0 else x
    tt = torch.from_numpy(t.astype(np.int64))
    want = F.cross_entropy(torch.from_numpy(x), tt, label_smoothing=ls, **torch_kw(kw))
    got = nll.cross_entropy(xs, t, label_smoothing=ls, **kw)
    assert isinstance(got, np.ndarray) and got.dtype == x.dtype
    assert got.shape == tuple(want.shape)
    assert_close(got, want)

    logp = F.log_softmax(torch.from_numpy(x), dim=0 if x.ndim == 1 else 1)
    want = F.nll_loss(logp, tt, **torch_kw(kw))
    got = nll.nll_loss(logp.numpy(), t, **kw)
    assert_close(got, want)


@pytest.mark.parametrize("seed", range(24))
def test_torch_inputs_and_16_bit(seed):
    x, t, kw = make_case(seed)
    dtype = [torch.float64, torch.float32, torch.float16, torch.bfloat16][seed % 4]
    xt = torch.from_numpy(x).to(dtype)
    if seed % 5 == 0 and xt.dim() >= 2:
        xt = xt.transpose(0, -1).contiguous().transpose(0, -1)  # same values, other strides
    tt = torch.from_numpy(t.astype(np.int64))
    kwt = torch_kw(kw)
    if kwt.get("weight") is not None:
        kwt["weight"] = kwt["weight"].to(dtype)
    # The reference: float64 on the very values the library sees.
    ref_kw = dict(kwt)
    if ref_kw.get("weight") is not None:
        ref_kw["weight"] = ref_kw["weight"].double()
    want = F.cross_entropy(xt.double(), tt, **ref_kw).to(dtype)
    # torch has no uint64: that target stays numpy (mixed producers on the host are fine).
    target = t if t.dtype == np.uint64 else torch.from_numpy(t)
    got = nll.cross_entropy(xt, target, **kwt)
    assert isinstance(got, torch.Tensor) and got.dtype == dtype
    assert_close(got, want, dtype)


@pytest.mark.parametrize("seed", range(12))
def test_probability_targets(seed):
    rng = np.random.default_rng(seed)
    shape = [(5,), (3, 4), (2, 3, 2)][seed % 3]
    x = rng.standard_normal(shape)
    q = F.softmax(torch.from_numpy(rng.standard_normal(shape)), dim=0 if len(shape) == 1 else 1)
    w = rng.uniform(0.5, 2, shape[0 if len(shape) == 1 else 1]) if seed % 2 else None
    for reduction in ("none", "mean", "sum"):
        for ls in (0.0, 0.25):
            want = F.cross_entropy(torch.from_numpy(x), q, reduction=reduction,
                                   label_smoothing=ls,
                                   weight=torch.from_numpy(w) if w is not None else None)
            got = nll.cross_entropy(x, q.numpy(), w, reduction=reduction, label_smoothing=ls)
            assert_close(got, want)


@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_log_softmax(rng, dim):
    x = rng.standard_normal((3, 4, 5)) * 10
    x[0, 0, :] = -np.inf  # a masked row gives NaN, as in PyTorch (when dim is the last axis)
    want = F.log_softmax(torch.from_numpy(x), dim=dim)
    assert_close(nll.log_softmax(x, dim), want)
    assert_close(nll.log_softmax(torch.from_numpy(x).float(), dim), want.float())


def test_default_dim_is_one(rng):
    x = rng.standard_normal((2, 3))
    assert_close(nll.log_softmax(x), F.log_softmax(torch.from_numpy(x), dim=1))


def test_backward_functions_on_numpy(rng):
    x = rng.standard_normal((4, 3))
    t = np.array([0, 2, -100, 1])
    w = np.array([0.5, 1.0, 2.0])
    for reduction in ("none", "mean", "sum"):
        xt = torch.from_numpy(x).requires_grad_()
        loss = F.cross_entropy(xt, torch.from_numpy(t), weight=torch.from_numpy(w),
                               reduction=reduction, label_smoothing=0.2)
        g = torch.from_numpy(rng.standard_normal(loss.shape))
        loss.backward(g)
        got = nll.cross_entropy_backward(g.numpy(), x, t, w, reduction=reduction,
                                         label_smoothing=0.2)
        assert_close(got, xt.grad)

        lp = F.log_softmax(torch.from_numpy(x), 1).detach().requires_grad_()
        loss = F.nll_loss(lp, torch.from_numpy(t), weight=torch.from_numpy(w),
                          reduction=reduction)
        loss.backward(g)
        got = nll.nll_loss_backward(g.numpy(), lp.detach().numpy(), t, w, reduction=reduction)
        assert_close(got, lp.grad)

    xt = torch.from_numpy(x).requires_grad_()
    y = F.log_softmax(xt, 1)
    g = torch.from_numpy(rng.standard_normal(y.shape))
    y.backward(g)
    assert_close(nll.log_softmax_backward(g.numpy(), y.detach().numpy(), 1), xt.grad)


def test_fused_matches_forward_and_backward(rng):
    x = rng.standard_normal((6, 5)).astype(np.float32)
    t = rng.integers(0, 5, 6)
    for reduction in ("none", "mean", "sum"):
        loss, grad = nll.cross_entropy_with_grad(x, t, reduction=reduction)
        xt = torch.from_numpy(x).requires_grad_()
        want = F.cross_entropy(xt, torch.from_numpy(t), reduction=reduction)
        want.sum().backward()
        assert_close(loss, want)
        assert_close(grad, xt.grad)


def test_lists_and_scalars(rng):
    x = [[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]]
    got = nll.cross_entropy(x, [2, 0])
    want = F.cross_entropy(torch.tensor(x, dtype=torch.float64), torch.tensor([2, 0]))
    assert isinstance(got, np.ndarray)
    assert_close(got, want)
    # A 1-D input takes a 0-d target.
    got = nll.cross_entropy(np.array(x[0]), 2)
    assert_close(got, F.cross_entropy(torch.tensor(x[0], dtype=torch.float64), torch.tensor(2)))


def test_threads_give_identical_results(rng):
    x = rng.standard_normal((257, 33))
    t = rng.integers(0, 33, 257)
    one = nll.cross_entropy(x, t)
    nll.set_num_threads(3)
    try:
        assert nll.get_num_threads() == 3
        three = nll.cross_entropy(x, t)
    finally:
        nll.set_num_threads(1)
    assert one.tobytes() == three.tobytes()
