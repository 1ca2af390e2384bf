"""ctypes binding of libnll's C API (include/nll.h), for the conformance tests.

Tensors are handed to the library as DLPack DLTensors built directly over Python-owned
memory: a flat numpy array (any numpy dtype the library knows) or a flat torch tensor (needed
for bfloat16, which numpy lacks), plus an explicit element offset, shape and element strides.
That one form covers every layout the tests want: contiguous, transposed, stepped, negative
strides, broadcast (stride 0), and a start given either by the data pointer or by byte_offset.

Only the standard library, numpy, (optionally, for bfloat16) torch and the ctypes declarations
of python/nll/_capi.py (from the source tree) are used.
"""

import ctypes
import ctypes.util
import os
import sys

import numpy as np

try:  # torch is only needed for bfloat16 buffers
    import torch
except ImportError:  # pragma: no cover
    torch = None

# The C layouts (DLPack structs, nll_options, nll_error_detail, statuses) are declared once,
# in the Python package's ctypes module; the source tree's copy is used, so these tests need
# no pip install.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))

from nll import _capi  # noqa: E402
from nll._capi import (  # noqa: E402,F401  (re-exported for the tests)
    NLL_ALLOW_FLOAT_TARGETS, NLL_CHECK_FINITE, NLL_MAX_DIMS, NLL_OK, NLL_REDUCTION_MEAN,
    NLL_REDUCTION_NONE, NLL_REDUCTION_SUM, REDUCTIONS, STATUS, DLDataType, DLDevice, DLTensor,
    NllErrorDetail, NllOptions, declare, kDLBfloat, kDLCPU, kDLCUDA, kDLCUDAHost, kDLFloat,
    kDLInt, kDLUInt)


class NllError(Exception):
    """A non-OK status from the library, with its name, message and detail."""

    def __init__(self, function, status, name, message, detail=None):
        self.function = function
        self.status = status
        self.name = name
        self.message = message
        self.detail = detail
        super().__init__("%s returned %s (%d): %s" % (function, name, status, message))


# ---------------------------------------------------------------------------------------------
# Building DLTensors

_NP_DTYPES = {
    np.dtype(np.float64): (kDLFloat, 64),
    np.dtype(np.float32): (kDLFloat, 32),
    np.dtype(np.float16): (kDLFloat, 16),
    np.dtype(np.int8): (kDLInt, 8),
    np.dtype(np.int16): (kDLInt, 16),
    np.dtype(np.int32): (kDLInt, 32),
    np.dtype(np.int64): (kDLInt, 64),
    np.dtype(np.uint8): (kDLUInt, 8),
    np.dtype(np.uint16): (kDLUInt, 16),
    np.dtype(np.uint32): (kDLUInt, 32),
    np.dtype(np.uint64): (kDLUInt, 64),
}


def _torch_dtypes():
    if torch is None:
        return {}
    return {
        torch.float64: (kDLFloat, 64),
        torch.float32: (kDLFloat, 32),
        torch.float16: (kDLFloat, 16),
        torch.bfloat16: (kDLBfloat, 16),
        torch.int8: (kDLInt, 8),
        torch.int16: (kDLInt, 16),
        torch.int32: (kDLInt, 32),
        torch.int64: (kDLInt, 64),
        torch.uint8: (kDLUInt, 8),
    }


def dl_dtype_of(buf):
    """(code, bits) of a numpy array or torch tensor."""
    if isinstance(buf, np.ndarray):
        return _NP_DTYPES[buf.dtype]
    return _torch_dtypes()[buf.dtype]


def _base_address_and_itemsize(buf):
    if isinstance(buf, np.ndarray):
        return buf.ctypes.data, buf.itemsize
    # A torch tensor: the address of its first element.
    return buf.data_ptr(), buf.element_size()


class Tensor:
    """A DLTensor over `buf` (a 1-D numpy array or torch tensor that owns the memory).

    offset: the element offset of element [0, ..., 0] within buf.
    strides: element strides (may be negative or 0), or None for compact row-major; in that
             case `null_strides` chooses whether DLTensor.strides is NULL or spelled out.
    use_byte_offset: express `offset` through DLTensor.byte_offset (data = buf's start)
             instead of moving the data pointer.
    Keeps every object the DLTensor points into alive for as long as this object lives.
    """

    def __init__(self, buf, shape, strides=None, offset=0, use_byte_offset=False,
                 null_strides=False, device_type=kDLCPU, dtype=None):
        self.buf = buf
        self.shape = tuple(int(s) for s in shape)
        ndim = len(self.shape)
        if strides is None:
            st, acc = [], 1
            for s in reversed(self.shape):
                st.append(acc)
                acc *= max(s, 1)
            strides = tuple(reversed(st))
            self.compact = True
        else:
            self.compact = False
        self.strides = tuple(int(s) for s in strides)
        self.offset = int(offset)
        addr, itemsize = _base_address_and_itemsize(buf)
        self.itemsize = itemsize
        code, bits = dtype if dtype is not None else dl_dtype_of(buf)
        # Keep at least one element in the arrays so the pointers are always valid.
        self._shape_arr = (ctypes.c_int64 * max(ndim, 1))(*(self.shape or (0,)))
        self._strides_arr = (ctypes.c_int64 * max(ndim, 1))(*(self.strides or (0,)))
        t = DLTensor()
        if use_byte_offset:
            t.data = addr
            t.byte_offset = self.offset * itemsize
        else:
            t.data = addr + self.offset * itemsize
            t.byte_offset = 0
        t.device = DLDevice(device_type, 0)
        t.ndim = ndim
        t.dtype = DLDataType(code, bits, 1)
        t.shape = ctypes.cast(self._shape_arr, ctypes.POINTER(ctypes.c_int64))
        if self.compact and null_strides:
            t.strides = ctypes.POINTER(ctypes.c_int64)()
        else:
            t.strides = ctypes.cast(self._strides_arr, ctypes.POINTER(ctypes.c_int64))
        self.dl = t

    @property
    def ptr(self):
        return ctypes.pointer(self.dl)

    def flat_indices(self):
        """Element index into buf of every element, as an int64 array of self.shape."""
        idx = np.full(self.shape, self.offset, dtype=np.int64)
        for d, (n, s) in enumerate(zip(self.shape, self.strides)):
            view = [1] * len(self.shape)
            view[d] = n
            idx = idx + (np.arange(n, dtype=np.int64) * s).reshape(view)
        return idx

    view = None

    def read(self):
        """The tensor's values as a numpy array of self.shape (bfloat16 read as float64)."""
        if self.view is not None:
            return np.array(self.view)
        flat = buf_to_numpy(self.buf)
        return flat[self.flat_indices()]


def buf_to_numpy(buf):
    """A numpy copy of a flat buffer; bfloat16 becomes float64 (exactly)."""
    if isinstance(buf, np.ndarray):
        return buf
    if buf.dtype == torch.bfloat16:
        return buf.to(torch.float64).numpy()
    return buf.numpy()


def from_numpy(arr, **kw):
    """A Tensor over a numpy array as it is (any strides numpy gives, incl. negative or 0)."""
    arr = np.asarray(arr)
    if arr.size == 0:
        flat = np.zeros(1, dtype=arr.dtype)
        t = Tensor(flat, arr.shape, **kw)
    else:
        strides = tuple(s // arr.itemsize for s in arr.strides)
        assert all(s * arr.itemsize == b for s, b in zip(strides, arr.strides))
        # The data pointer is arr's own first element; strides may be negative.
        t = Tensor(arr, arr.shape, strides=strides, offset=0, **kw)
    t.view = arr
    return t


# ---------------------------------------------------------------------------------------------
# The library

def _find_library(path=None):
    if path:
        return path
    env = os.environ.get("NLL_LIB")
    if env:
        return env
    found = ctypes.util.find_library("nll")
    if not found:
        raise OSError("libnll not found: pass --lib or set NLL_LIB")
    return found


def _ptr(t):
    """A DLTensor* argument from a Tensor, a DLTensor or None."""
    if t is None:
        return None
    if isinstance(t, Tensor):
        return ctypes.byref(t.dl)
    if isinstance(t, DLTensor):
        return ctypes.byref(t)
    return t


class Lib:
    def __init__(self, path=None):
        self.path = _find_library(path)
        self.lib = ctypes.CDLL(self.path)
        declare(self.lib)

    # -- misc --------------------------------------------------------------------------------
    def version(self):
        return self.lib.nll_version_number(), self.lib.nll_version_string().decode()

    def status_name(self, status):
        return self.lib.nll_status_name(status).decode()

    def status_string(self, status):
        return self.lib.nll_status_string(status).decode()

    def options(self, reduction="mean", ignore_index=-100, label_smoothing=0.0, weight=None,
                flags=0):
        """An NllOptions, starting from nll_options_default(). weight: a Tensor or None."""
        o = self.lib.nll_options_default()
        o.reduction = REDUCTIONS[reduction] if isinstance(reduction, str) else int(reduction)
        o.ignore_index = int(ignore_index)
        o.label_smoothing = float(label_smoothing)
        if weight is not None:
            o.weight = ctypes.pointer(weight.dl)
        o.flags = flags
        # Keep the weight Tensor alive as long as the options.
        o._keep = weight
        return o

    def context(self, threads=None):
        return Context(self, threads)


class Context(_capi.Context):
    """The package's nll_context, whose ops raise NllError on a non-OK status."""

    def __init__(self, lib, threads=None):
        super().__init__(lib.lib)
        self.owner = lib
        if threads is not None:
            self._check("nll_context_set_threads", self.set_threads(threads))

    @property
    def L(self):  # the declared CDLL
        return self.lib

    @property
    def h(self):  # the context handle
        return self.handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check(self, fn, st):
        if st != NLL_OK:
            raise NllError(fn, st, self.owner.status_name(st), self.last_error(),
                           self.last_error_detail())

    # -- ops ---------------------------------------------------------------------------------
    def log_softmax_forward(self, x, dim, out):
        self._check("nll_log_softmax_forward",
                    self.L.nll_log_softmax_forward(self.h, _ptr(x), int(dim), _ptr(out)))

    def log_softmax_backward(self, grad_output, output, dim, grad_input):
        self._check("nll_log_softmax_backward",
                    self.L.nll_log_softmax_backward(self.h, _ptr(grad_output), _ptr(output),
                                                    int(dim), _ptr(grad_input)))

    def loss_forward(self, x, target, opts, loss, total_weight=None):
        self._check("nll_loss_forward",
                    self.L.nll_loss_forward(self.h, _ptr(x), _ptr(target), ctypes.byref(opts),
                                            _ptr(loss), _ptr(total_weight)))

    def loss_backward(self, grad_loss, x, target, opts, grad_input):
        self._check("nll_loss_backward",
                    self.L.nll_loss_backward(self.h, _ptr(grad_loss), _ptr(x), _ptr(target),
                                             ctypes.byref(opts), _ptr(grad_input)))

    def cross_entropy_forward(self, x, target, opts, loss):
        self._check("nll_cross_entropy_forward",
                    self.L.nll_cross_entropy_forward(self.h, _ptr(x), _ptr(target),
                                                     ctypes.byref(opts), _ptr(loss)))

    def cross_entropy_backward(self, grad_loss, x, target, opts, grad_input):
        self._check("nll_cross_entropy_backward",
                    self.L.nll_cross_entropy_backward(self.h, _ptr(grad_loss), _ptr(x),
                                                      _ptr(target), ctypes.byref(opts),
                                                      _ptr(grad_input)))

    def cross_entropy_fused(self, x, target, opts, loss, grad_input):
        self._check("nll_cross_entropy_fused",
                    self.L.nll_cross_entropy_fused(self.h, _ptr(x), _ptr(target),
                                                   ctypes.byref(opts), _ptr(loss),
                                                   _ptr(grad_input)))
