"""Exceptions: class, status, fields and the library's message; nothing written on error."""

import ctypes
import re

import numpy as np
import pytest
import torch

import nll
from nll import _capi


def raises(cls, fn, *args, **kw):
    with pytest.raises(cls) as info:
        fn(*args, **kw)
    return info.value


def test_hierarchy():
    for cls in (nll.TargetDtypeError, nll.TargetRangeError, nll.ShapeError,
                nll.NonFiniteError, nll.DeviceError, nll.ArgumentError, nll.DtypeError,
                nll.LayoutError, nll.TargetNotWholeError, nll.OutOfMemoryError):
        assert issubclass(cls, nll.Error)
    assert issubclass(nll.Error, ValueError)
    assert issubclass(nll.TargetRangeError, IndexError)  # what PyTorch raises for it
    assert issubclass(nll.TargetNotWholeError, nll.TargetDtypeError)


def test_target_range_fields_and_message():
    x = np.zeros((4, 5), np.float32)
    e = raises(nll.TargetRangeError, nll.nll_loss, x, np.array([1, 2, 3, 5]))
    assert e.status == 60 and e.name == "NLL_ERROR_TARGET_RANGE"
    assert e.function == "nll_loss_forward" and e.tensor == "target"
    assert e.index == (3,) and e.flat_index == 3
    assert e.value == 5 and isinstance(e.value, int)
    assert e.count == 1
    assert str(e) == (
        "nll_loss_forward: target[3] = 5 is outside the class range [0, 5) and is not "
        "ignore_index (-100); 1 of 4 targets are out of range (targets seen: min 1, max 5); "
        "the labels look 1-based (min 1, max 5): subtract 1")


def test_multi_index_points_at_the_element():
    x = np.zeros((2, 3, 4))
    t = np.zeros((2, 4), np.int64)
    t[1, 2] = 255
    e = raises(nll.TargetRangeError, nll.cross_entropy, x, t)
    assert e.index == (1, 2) and e.flat_index == 6 and t[e.index] == 255
    assert "target[6] (index [1, 2]) = 255" in str(e)
    assert "pass ignore_index=255" in str(e)
    # torch targets, and -1 padding
    tt = torch.zeros(2, 4, dtype=torch.long)
    tt[0, 3] = -1
    e = raises(nll.TargetRangeError, nll.cross_entropy, torch.zeros(2, 3, 4), tt)
    assert e.index == (0, 3) and e.value == -1 and "pass ignore_index=-1" in str(e)


def test_uint64_beyond_int64_is_exact():
    t = np.full(3, 2**63 + 5, np.uint64)
    e = raises(nll.TargetRangeError, nll.cross_entropy, np.zeros((3, 2)), t)
    assert e.value == 2**63 + 5 and e.index == (0,)


def test_float_targets():
    x = np.zeros((4, 3))
    e = raises(nll.TargetDtypeError, nll.cross_entropy, x, np.array([0, 1, 2, 1], np.float32))
    assert e.status == 41 and e.name == "NLL_ERROR_FLOAT_TARGET"
    assert "target has dtype float32, but class indices must be integers" in str(e)
    assert "all 4 values are whole numbers (min 0, max 2)" in str(e)
    # The C flag is named by its Python spelling.
    assert "pass allow_float_targets=True" in str(e) and "NLL_ALLOW" not in str(e)
    # Accepted on request, with the same values as int64.
    got = nll.cross_entropy(x, np.array([0, 1, 2, 1], np.float32), allow_float_targets=True)
    assert got == nll.cross_entropy(x, np.array([0, 1, 2, 1]))
    t = np.array([0, 1, 0.5, 1])
    e = raises(nll.TargetDtypeError, nll.cross_entropy, x, t)
    assert e.index == (2,) and e.value == 0.5 and "exact shape (4, 3)" in str(e)
    e = raises(nll.TargetNotWholeError, nll.cross_entropy, x, t, allow_float_targets=True)
    assert e.status == 61 and e.index == (2,) and e.value == 0.5 and e.count == 1
    assert str(e).startswith("nll_cross_entropy_forward: target[2] = 0.5 is not a whole number;"
                             " allow_float_targets=True accepts")


def test_bool_and_complex_targets():
    e = raises(nll.TargetDtypeError, nll.cross_entropy, np.zeros((2, 3)), np.zeros(2, bool))
    assert e.status == 42 and "target has dtype bool" in str(e)
    e = raises(nll.TargetDtypeError, nll.cross_entropy, torch.zeros(2, 3),
               torch.zeros(2, dtype=torch.bool))
    assert "bool" in str(e)
    e = raises(nll.TargetDtypeError, nll.cross_entropy, np.zeros((2, 3)),
               np.zeros(2, np.complex64))
    assert "complex64" in str(e)


def test_shapes():
    e = raises(nll.ShapeError, nll.cross_entropy, np.zeros((3, 5)), np.zeros(2, np.int64))
    assert e.status == 21 and e.index is None and e.value is None
    assert "target shape (2) does not match input shape (3, 5)" in str(e)
    e = raises(nll.ShapeError, nll.cross_entropy, np.zeros((2, 3)), np.zeros((2, 4)))
    assert e.name == "NLL_ERROR_PROBABILITY_SHAPE"
    assert "probability targets need the input's exact shape" in str(e)
    e = raises(nll.ShapeError, nll.cross_entropy, np.zeros((2, 3)), np.zeros(2, np.int64),
               np.ones(4))
    assert e.name == "NLL_ERROR_WEIGHT_SHAPE" and e.tensor == "weight"
    e = raises(nll.ShapeError, nll.nll_loss, np.zeros(3), np.array([0, 1, 2]))
    assert "the target must be 0-d" in str(e)


def test_nonfinite():
    x = np.zeros((2, 3), np.float32)
    x[1, 1] = np.nan
    x[0, 2] = -np.inf  # allowed: a masked logit
    e = raises(nll.NonFiniteError, nll.cross_entropy, x, np.array([0, 1]), check_finite=True)
    assert e.status == 62 and e.tensor == "input" and e.index == (1, 1) and e.flat_index == 4
    assert np.isnan(e.value) and e.count == 1
    assert "input[4] (index [1, 1]) = nan is not finite" in str(e)
    # Without check_finite the NaN propagates, as in PyTorch.
    assert np.isnan(nll.cross_entropy(x, np.array([0, 1])))


def test_dtypes_and_options():
    e = raises(nll.DtypeError, nll.cross_entropy, np.zeros((2, 3)), np.zeros(2, np.int64),
               np.ones(3, np.float32))
    assert e.name == "NLL_ERROR_WEIGHT_DTYPE"
    assert "weight has dtype float32 but input has dtype float64" in str(e)
    e = raises(nll.DtypeError, nll.cross_entropy, np.zeros((2, 3), np.int64),
               np.zeros(2, np.int64))
    assert e.name == "NLL_ERROR_INPUT_DTYPE"
    e = raises(nll.DtypeError, nll.cross_entropy, np.zeros((2, 3)), np.array(["a", "b"]))
    assert e.name == "NLL_ERROR_UNSUPPORTED_DTYPE" and "<U1" in str(e)
    e = raises(nll.ArgumentError, nll.cross_entropy, np.zeros((2, 3)), np.zeros(2, np.int64),
               label_smoothing=-0.1)
    assert e.name == "NLL_ERROR_LABEL_SMOOTHING" and e.value is None
    e = raises(nll.ArgumentError, nll.cross_entropy, np.zeros((2, 3)), np.zeros(2, np.int64),
               reduction="avg")
    assert e.status == 2 and "'avg'" in str(e)
    e = raises(nll.ArgumentError, nll.log_softmax, np.zeros((2, 3)), 2)
    assert e.name == "NLL_ERROR_INVALID_DIM"
    e = raises(nll.ArgumentError, nll.cross_entropy, np.zeros((2, 3)), np.zeros((2, 3)),
               ignore_index=0)
    assert e.name == "NLL_ERROR_IGNORE_INDEX"
    raises(nll.ArgumentError, nll.set_num_threads, -1)


def test_error_writes_nothing():
    x = np.arange(6.0).reshape(2, 3)
    before = x.copy()
    with pytest.raises(nll.TargetRangeError):
        nll.cross_entropy_with_grad(x, np.array([0, 3]), inplace=True)
    assert np.array_equal(x, before)


class _FakeCuda:
    """A producer whose DLPack capsule says kDLCUDA (memory never touched: rejected first)."""

    def __init__(self, shape):
        self.host = np.zeros(shape, np.float32)
        self.shape_arr = (ctypes.c_int64 * len(shape))(*shape)
        m = _capi.DLManagedTensor()
        m.dl_tensor.data = self.host.ctypes.data
        m.dl_tensor.device = _capi.DLDevice(_capi.kDLCUDA, 0)
        m.dl_tensor.ndim = len(shape)
        m.dl_tensor.dtype = _capi.DLDataType(_capi.kDLFloat, 32, 1)
        m.dl_tensor.shape = self.shape_arr
        self.managed = m  # owned here: the capsule has no destructor

    def __dlpack_device__(self):
        return (_capi.kDLCUDA, 0)

    def __dlpack__(self, stream=None):
        new = ctypes.pythonapi.PyCapsule_New
        new.restype = ctypes.py_object
        new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        return new(ctypes.addressof(self.managed), b"dltensor", None)


def test_gpu_arrays_of_other_producers_are_refused_not_copied():
    # Host memory labelled cuda:0 by a producer that is neither torch nor CuPy: no output can
    # be allocated for it on a GPU, so the call is refused before the library runs (what the
    # library itself says about CUDA tensors is tests/unit/test_cuda.c's subject).
    x = _FakeCuda((2, 3))
    for call in (lambda: nll.cross_entropy(x, np.array([0, 1])), lambda: nll.log_softmax(x)):
        e = raises(nll.DeviceError, call)
        assert e.name == "NLL_ERROR_UNSUPPORTED_DEVICE" and e.tensor == "input"
        assert "input is on cuda:0 from _FakeCuda" in str(e) and "torch and CuPy" in str(e)
