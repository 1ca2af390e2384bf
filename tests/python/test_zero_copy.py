"""No copies: the library sees the caller's data pointers, writes in-place gradients into the
caller's buffer, and results come back as the caller's array type."""

import contextlib
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nll
import nll.functional as nf
import nll.torch as nt
from conftest import assert_close


@contextlib.contextmanager
def observe():
    """Records (function, {name: address the library sees}) of every library call."""
    calls = []

    def hook(fn, tensors):
        calls.append((fn, {k: b.address for k, b in tensors.items()}))

    nf._observer = hook
    try:
        yield calls
    finally:
        nf._observer = None


class Wrapped:
    """A minimal third-party producer (like a JAX or CuPy array on the host): nothing but the
    DLPack protocol. Results come back through this module's from_dlpack."""

    def __init__(self, arr):
        self.arr = arr

    def __dlpack__(self, stream=None):
        return self.arr.__dlpack__()

    def __dlpack_device__(self):
        return self.arr.__dlpack_device__()


def from_dlpack(x):  # found by nll through type(Wrapped(...)).__module__
    return Wrapped(np.from_dlpack(x))


def test_numpy_pointers(rng):
    x = rng.standard_normal((4, 6))
    t = rng.integers(0, 6, 4)
    w = rng.uniform(size=6)
    with observe() as calls:
        nll.cross_entropy(x, t, w)
    fn, seen = calls[0]
    assert fn == "nll_cross_entropy_forward"
    assert seen["input"] == x.ctypes.data
    assert seen["target"] == t.ctypes.data
    assert seen["weight"] == w.ctypes.data


def test_strided_and_read_only_views_are_not_copied(rng):
    big = rng.standard_normal((8, 12))
    view = big[::2, ::-3]  # non-contiguous, negative stride
    t = np.broadcast_to(np.array([1]), (4,))  # read-only, stride 0
    with observe() as calls:
        got = nll.cross_entropy(view, t)
    seen = calls[0][1]
    assert seen["input"] == view.ctypes.data and seen["target"] == t.ctypes.data
    assert_close(got, F.cross_entropy(torch.from_numpy(view.copy()), torch.ones(4).long()))


def test_torch_pointers(rng):
    x = torch.randn(5, 7)[:, 1:]  # a view with a storage offset
    t = torch.randint(0, 6, (5,))
    with observe() as calls:
        out = nll.cross_entropy(x, t, reduction="none")
    seen = calls[0][1]
    assert seen["input"] == x.data_ptr() and seen["target"] == t.data_ptr()
    assert seen["loss"] == out.data_ptr()
    assert isinstance(out, torch.Tensor)


def test_inplace_gradient_lands_in_the_callers_buffer(rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    t = rng.integers(0, 5, 4)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    F.cross_entropy(xt, torch.from_numpy(t)).backward()
    address = x.ctypes.data
    loss, grad = nll.cross_entropy_with_grad(x, t, inplace=True)
    assert grad is x and x.ctypes.data == address
    assert_close(x, xt.grad)  # the logits are now their gradient

    y = torch.from_numpy(rng.standard_normal((4, 5)))
    ref = y.clone().requires_grad_()
    F.cross_entropy(ref, torch.from_numpy(t)).backward()
    with observe() as calls:
        _, g = nll.cross_entropy_with_grad(y, torch.from_numpy(t), inplace=True)
    assert calls[0][1]["grad_input"] == y.data_ptr() and g is y
    assert_close(y, ref.grad)


def test_generic_dlpack_producer(rng):
    x = rng.standard_normal((3, 4))
    t = rng.integers(0, 4, 3)
    with observe() as calls:
        out = nll.cross_entropy(Wrapped(x), Wrapped(t), reduction="none")
    seen = calls[0][1]
    assert seen["input"] == x.ctypes.data and seen["target"] == t.ctypes.data
    assert isinstance(out, Wrapped)  # through this module's from_dlpack
    assert_close(out.arr, F.cross_entropy(torch.from_numpy(x), torch.from_numpy(t),
                                          reduction="none"))
    # torch's capsule, too (bfloat16 included: its result comes back as a torch tensor only
    # through the torch path; through a generic producer numpy cannot hold it).
    tx = torch.from_numpy(x).float()
    with observe() as calls:
        out = nll.log_softmax(Wrapped(tx), 1)
    assert calls[0][1]["input"] == tx.data_ptr()
    assert_close(out.arr, F.log_softmax(tx, 1))
    with pytest.raises(nll.DtypeError, match="numpy has no bfloat16"):
        nll.log_softmax(Wrapped(tx.bfloat16()), 1)


def test_result_types(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    t = rng.integers(0, 4, 3)
    r = nll.cross_entropy(x, t)
    assert isinstance(r, np.ndarray) and r.shape == () and r.dtype == np.float32
    r = nll.cross_entropy(torch.from_numpy(x).bfloat16(), torch.from_numpy(t))
    assert isinstance(r, torch.Tensor) and r.dtype == torch.bfloat16
    r = nll.log_softmax(torch.from_numpy(x).half(), 1)
    assert r.dtype == torch.float16 and r.shape == (3, 4)


def test_autograd_uses_the_forward_gradient():
    x = torch.randn(6, 5, requires_grad=True)
    t = torch.randint(0, 5, (6,))
    with observe() as calls:
        loss = nt.cross_entropy(x, t)
    assert [c[0] for c in calls] == ["nll_cross_entropy_fused"]
    fused_grad_address = calls[0][1]["grad_input"]
    with observe() as calls:
        loss.backward()
    assert calls == []  # backward made no library call: the gradient came from the forward
    assert x.grad.data_ptr() == fused_grad_address  # handed over, not copied
    ref = x.detach().clone().requires_grad_()
    F.cross_entropy(ref, t).backward()
    assert_close(x.grad, ref.grad)


def test_torch_is_not_imported_by_nll():
    # numpy users do not pay for torch: nll.torch is loaded on first use only.
    src = "import sys, nll; assert 'torch' not in sys.modules, 'torch imported'"
    import subprocess
    subprocess.run([sys.executable, "-c", src], check=True)
