"""ctypes binding of libnll's C API (include/nll.h), for the conformance tests.

Tensors are handed to the library as DLPack DLTensors built directly over Python-owned
memory: a flat numpy array (any numpy dtype the library knows) or a flat torch tensor (needed
for bfloat16, which numpy lacks), plus an explicit element offset, shape and element strides.
That one form covers every layout the tests want: contiguous, transposed, stepped, negative
strides, broadcast (stride 0), and a start given either by the data pointer or by byte_offset.

Only the standard library, numpy and (optionally, for bfloat16) torch are used.
"""

import ctypes
import ctypes.util
import os

import numpy as np

try:  # torch is only needed for bfloat16 buffers
    import torch
except ImportError:  # pragma: no cover
    torch = None

# ---------------------------------------------------------------------------------------------
# DLPack v0.6 (/usr/include/dlpack/dlpack.h)

kDLCPU = 1
kDLCUDA = 2
kDLCUDAHost = 3

kDLInt = 0
kDLUInt = 1
kDLFloat = 2
kDLBfloat = 4


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", DLDevice),
        ("ndim", ctypes.c_int),
        ("dtype", DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


# ---------------------------------------------------------------------------------------------
# nll.h

NLL_MAX_DIMS = 16
NLL_REDUCTION_NONE = 0
NLL_REDUCTION_MEAN = 1
NLL_REDUCTION_SUM = 2
REDUCTIONS = {"none": NLL_REDUCTION_NONE, "mean": NLL_REDUCTION_MEAN, "sum": NLL_REDUCTION_SUM}

NLL_CHECK_FINITE = 0x1
NLL_ALLOW_FLOAT_TARGETS = 0x2

NLL_OK = 0
STATUS = {
    "NLL_OK": 0,
    "NLL_ERROR_NULL_ARGUMENT": 1,
    "NLL_ERROR_INVALID_REDUCTION": 2,
    "NLL_ERROR_LABEL_SMOOTHING": 3,
    "NLL_ERROR_IGNORE_INDEX": 4,
    "NLL_ERROR_INVALID_FLAGS": 5,
    "NLL_ERROR_INVALID_DIM": 6,
    "NLL_ERROR_INPUT_RANK": 20,
    "NLL_ERROR_TARGET_SHAPE": 21,
    "NLL_ERROR_PROBABILITY_SHAPE": 22,
    "NLL_ERROR_WEIGHT_SHAPE": 23,
    "NLL_ERROR_OUTPUT_SHAPE": 24,
    "NLL_ERROR_NEGATIVE_SIZE": 25,
    "NLL_ERROR_SIZE_OVERFLOW": 26,
    "NLL_ERROR_NULL_DATA": 27,
    "NLL_ERROR_OVERLAP": 28,
    "NLL_ERROR_INPUT_DTYPE": 40,
    "NLL_ERROR_FLOAT_TARGET": 41,
    "NLL_ERROR_TARGET_DTYPE": 42,
    "NLL_ERROR_WEIGHT_DTYPE": 43,
    "NLL_ERROR_OUTPUT_DTYPE": 44,
    "NLL_ERROR_UNSUPPORTED_DTYPE": 45,
    "NLL_ERROR_TARGET_RANGE": 60,
    "NLL_ERROR_TARGET_NOT_WHOLE": 61,
    "NLL_ERROR_NONFINITE": 62,
    "NLL_ERROR_UNSUPPORTED_DEVICE": 80,
    "NLL_ERROR_DEVICE_MISMATCH": 81,
    "NLL_ERROR_OUT_OF_MEMORY": 100,
    "NLL_ERROR_INVALID_THREADS": 101,
}


class NllOptions(ctypes.Structure):
    # Declared in the header's order; ctypes applies the C alignment rules (4 bytes of padding
    # after reduction, and after flags at the end).
    _fields_ = [
        ("reduction", ctypes.c_int),
        ("ignore_index", ctypes.c_int64),
        ("label_smoothing", ctypes.c_double),
        ("weight", ctypes.POINTER(DLTensor)),
        ("flags", ctypes.c_uint),
    ]


class NllErrorDetail(ctypes.Structure):
    _fields_ = [
        ("status", ctypes.c_int),
        ("function", ctypes.c_char_p),
        ("tensor", ctypes.c_char_p),
        ("flat_index", ctypes.c_int64),
        ("ndim", ctypes.c_int),
        ("index", ctypes.c_int64 * NLL_MAX_DIMS),
        ("value", ctypes.c_double),
        ("count", ctypes.c_int64),
    ]


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
        L = self.lib
        P = ctypes.POINTER
        T = P(DLTensor)
        O = P(NllOptions)
        V = ctypes.c_void_p
        L.nll_version_number.restype = ctypes.c_uint
        L.nll_version_number.argtypes = []
        L.nll_version_string.restype = ctypes.c_char_p
        L.nll_version_string.argtypes = []
        L.nll_status_name.restype = ctypes.c_char_p
        L.nll_status_name.argtypes = [ctypes.c_int]
        L.nll_status_string.restype = ctypes.c_char_p
        L.nll_status_string.argtypes = [ctypes.c_int]
        L.nll_context_create.restype = ctypes.c_int
        L.nll_context_create.argtypes = [P(V)]
        L.nll_context_destroy.restype = None
        L.nll_context_destroy.argtypes = [V]
        L.nll_context_set_threads.restype = ctypes.c_int
        L.nll_context_set_threads.argtypes = [V, ctypes.c_int]
        L.nll_context_threads.restype = ctypes.c_int
        L.nll_context_threads.argtypes = [V]
        L.nll_last_error.restype = ctypes.c_char_p
        L.nll_last_error.argtypes = [V]
        L.nll_last_error_detail.restype = ctypes.c_int
        L.nll_last_error_detail.argtypes = [V, P(NllErrorDetail)]
        L.nll_options_default.restype = NllOptions
        L.nll_options_default.argtypes = []
        L.nll_log_softmax_forward.restype = ctypes.c_int
        L.nll_log_softmax_forward.argtypes = [V, T, ctypes.c_int64, T]
        L.nll_log_softmax_backward.restype = ctypes.c_int
        L.nll_log_softmax_backward.argtypes = [V, T, T, ctypes.c_int64, T]
        L.nll_loss_forward.restype = ctypes.c_int
        L.nll_loss_forward.argtypes = [V, T, T, O, T, T]
        L.nll_loss_backward.restype = ctypes.c_int
        L.nll_loss_backward.argtypes = [V, T, T, T, O, T]
        L.nll_cross_entropy_forward.restype = ctypes.c_int
        L.nll_cross_entropy_forward.argtypes = [V, T, T, O, T]
        L.nll_cross_entropy_backward.restype = ctypes.c_int
        L.nll_cross_entropy_backward.argtypes = [V, T, T, T, O, T]
        L.nll_cross_entropy_fused.restype = ctypes.c_int
        L.nll_cross_entropy_fused.argtypes = [V, T, T, O, T, T]

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


class Context:
    """An nll_context; every op raises NllError on a non-OK status."""

    def __init__(self, lib, threads=None):
        self.lib = lib
        self.L = lib.lib
        h = ctypes.c_void_p()
        st = self.L.nll_context_create(ctypes.byref(h))
        if st != NLL_OK or not h.value:
            raise NllError("nll_context_create", st, lib.status_name(st), "")
        self.h = h
        if threads is not None:
            self._check("nll_context_set_threads", self.L.nll_context_set_threads(self.h, threads))

    def close(self):
        if self.h is not None and self.h.value:
            self.L.nll_context_destroy(self.h)
        self.h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def threads(self):
        return self.L.nll_context_threads(self.h)

    def last_error(self):
        return self.L.nll_last_error(self.h).decode(errors="replace")

    def last_error_detail(self):
        d = NllErrorDetail()
        self.L.nll_last_error_detail(self.h, ctypes.byref(d))
        return {
            "status": d.status,
            "function": (d.function or b"").decode(errors="replace"),
            "tensor": (d.tensor or b"").decode(errors="replace"),
            "flat_index": d.flat_index,
            "index": list(d.index[: max(0, min(d.ndim, NLL_MAX_DIMS))]),
            "value": d.value,
            "count": d.count,
        }

    def _check(self, fn, st):
        if st != NLL_OK:
            raise NllError(fn, st, self.lib.status_name(st), self.last_error(),
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
