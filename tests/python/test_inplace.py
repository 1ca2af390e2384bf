"""inplace=True writes the gradient into the caller's own memory or refuses (issue 18, items
4, 5 and 7): never into a copy the caller cannot see, never into an immutable JAX array, and
never behind autograd's back."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nll
from conftest import assert_close


def _logits(rng, dtype=np.float64):
    return rng.standard_normal((4, 5)).astype(dtype)


def _reference_grad(x, t):
    ref = torch.from_numpy(np.array(x, dtype=np.float64)).requires_grad_()
    F.cross_entropy(ref, torch.from_numpy(t)).backward()
    return ref.grad


def _refused(x, t, *fragments):
    with pytest.raises(nll.InplaceError) as info:
        nll.cross_entropy_with_grad(x, t, inplace=True)
    e = info.value
    # an nll.Error (a ValueError) that is also what torch raises for refused in-place writes
    assert isinstance(e, nll.Error) and isinstance(e, RuntimeError)
    assert e.name == "NLL_ERROR_OVERLAP" and e.tensor == "input"
    assert str(e).startswith("cross_entropy_with_grad: inplace=True writes the gradient over")
    assert "or use inplace=False" in str(e)
    for fragment in fragments:
        assert fragment in str(e)
    return e


# --- item 4: inputs that the binding reads from a copy -------------------------------------

def test_byte_swapped_input_is_refused_not_left_untouched(rng):
    x = _logits(rng).astype(">f8")
    t = rng.integers(0, 5, 4)
    before = x.copy()
    _refused(x, t, "non-native byte order (dtype >f8)", "newbyteorder('=')")
    assert np.array_equal(x, before)
    # without inplace the copy is fine, and so is the fix the message gives
    loss, grad = nll.cross_entropy_with_grad(x, t)
    assert_close(grad, _reference_grad(x, t))
    native = x.astype(x.dtype.newbyteorder("="))
    _, g = nll.cross_entropy_with_grad(native, t, inplace=True)
    assert g is native
    assert_close(native, _reference_grad(x, t))


def test_list_input_is_refused(rng):
    x = _logits(rng).tolist()
    before = [row[:] for row in x]
    t = rng.integers(0, 5, 4)
    _refused(x, t, "input is a list, not an array", "np.asarray(input)")
    assert x == before


def test_strides_that_are_not_whole_elements_are_refused(rng):
    records = np.zeros(4, dtype=[("tag", "i1"), ("x", "f8", (5,))])
    records["x"] = _logits(rng)
    view = records["x"]  # strides (41, 8): not a multiple of 8
    assert view.strides[0] % view.itemsize
    t = rng.integers(0, 5, 4)
    before = view.copy()
    _refused(view, t, "byte strides (41, 8)", "np.ascontiguousarray(input)")
    assert np.array_equal(view, before)


def test_read_only_numpy_still_refused(rng):
    x = _logits(rng)
    x.flags.writeable = False
    e = _refused(x, rng.integers(0, 5, 4), "read-only")
    assert isinstance(e, nll.LayoutError)


def test_pending_negation_is_refused_in_place():
    base = torch.randn(4, 5, dtype=torch.float64)
    x = torch.complex(0 * base, base).conj().imag  # reads as -base; memory holds base
    assert x.is_neg()
    t = torch.tensor([0, 1, 2, 3])
    _refused(x, t, "pending negation (is_neg() is True", "input.resolve_neg()")
    assert torch.equal(x, -base)  # untouched


# --- item 5: JAX arrays are immutable -----------------------------------------------------

class ArrayImpl:
    """Stands in for jax.Array where jax is not installed: a host buffer exported by DLPack,
    with the module name JAX's array type has."""

    def __init__(self, arr):
        self.arr = arr

    def __dlpack__(self, stream=None):
        return self.arr.__dlpack__()

    def __dlpack_device__(self):
        return self.arr.__dlpack_device__()


ArrayImpl.__module__ = "jaxlib.xla_extension"


def test_jax_like_array_is_not_overwritten(rng):
    x = _logits(rng)
    before = x.copy()
    t = rng.integers(0, 5, 4)
    _refused(ArrayImpl(x), t, "input is a JAX array (ArrayImpl)", "immutable")
    assert np.array_equal(x, before)
    loss, grad = nll.cross_entropy_with_grad(ArrayImpl(x), t)  # a new array is fine
    assert_close(np.asarray(getattr(grad, "arr", grad)), _reference_grad(x, t))


def test_real_jax_array_is_not_overwritten(rng):
    jnp = pytest.importorskip("jax.numpy")
    x = jnp.asarray(_logits(rng, np.float32))
    before = np.array(x)
    t = rng.integers(0, 5, 4)
    _refused(x, t, "JAX array", "immutable")
    assert np.array_equal(np.array(x), before)


# --- item 7: autograd -----------------------------------------------------------------------

def test_inplace_bumps_the_version_counter(rng):
    x = torch.from_numpy(_logits(rng))
    w = torch.ones(5, dtype=torch.float64, requires_grad=True)
    product = (x * w).sum()  # saves x for w's gradient
    version = x._version
    nll.cross_entropy_with_grad(x, torch.from_numpy(rng.integers(0, 5, 4)), inplace=True)
    assert x._version > version
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        product.backward()  # would otherwise use the gradient as if it were the logits


def test_leaf_that_requires_grad_is_refused(rng):
    x = torch.from_numpy(_logits(rng)).requires_grad_()
    before = x.detach().clone()
    t = torch.from_numpy(rng.integers(0, 5, 4))
    _refused(x, t, "leaf tensor that requires grad", "torch.no_grad()")
    assert torch.equal(x.detach(), before)
    y = x * 2  # not a leaf: autograd could not record the write either
    _refused(y, t, "autograd cannot record")
    with torch.no_grad():  # as torch itself allows (what optimizers do)
        _, g = nll.cross_entropy_with_grad(x, t, inplace=True)
    assert g is x
    assert_close(x.detach(), _reference_grad(before.numpy(), t.numpy()))


def test_inference_tensors_have_no_version_to_bump(rng):
    with torch.inference_mode():
        x = torch.from_numpy(_logits(rng)).clone()
    t = torch.from_numpy(rng.integers(0, 5, 4))
    ref = _reference_grad(x.numpy(), t.numpy())
    _, g = nll.cross_entropy_with_grad(x, t, inplace=True)
    assert g is x
    assert_close(x, ref)
