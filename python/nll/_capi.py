"""ctypes declarations of libnll's C API (include/nll.h) and of the DLPack structs it takes.

This module is the one place where the C layouts are spelled out in Python. It imports only
the standard library, so it can also be used on its own (the conformance tests load it from
the source tree and point it at a freshly built libnll.so).

    lib = load("/path/to/libnll.so")     # or load(): NLL_LIBRARY, then the package folder
    ctx = Context(lib)
    status = lib.nll_cross_entropy_forward(ctx.handle, byref(x), byref(t), byref(opts), ...)
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any, Dict, Optional

# ---------------------------------------------------------------------------------------------
# DLPack 0.6 (dlpack/dlpack.h): the legacy "dltensor" capsule layout every producer can export.

kDLCPU = 1
kDLCUDA = 2
kDLCUDAHost = 3
kDLOpenCL = 4
kDLVulkan = 7
kDLMetal = 8
kDLVPI = 9
kDLROCM = 10
kDLROCMHost = 11
kDLExtDev = 12
kDLCUDAManaged = 13
kDLOneAPI = 14

kDLInt = 0
kDLUInt = 1
kDLFloat = 2
kDLOpaqueHandle = 3
kDLBfloat = 4
kDLComplex = 5
kDLBool = 6  # DLPack >= 0.8; libnll names it in messages even though its header is 0.6

# Host memory the library can read; anything else is rejected by the library itself.
HOST_DEVICES = (kDLCPU, kDLCUDAHost)


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


class DLManagedTensor(ctypes.Structure):
    pass


DLManagedTensor._fields_ = [
    ("dl_tensor", DLTensor),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensor))),
]

# ---------------------------------------------------------------------------------------------
# nll.h

NLL_MAX_DIMS = 16

NLL_REDUCTION_NONE = 0
NLL_REDUCTION_MEAN = 1
NLL_REDUCTION_SUM = 2
REDUCTIONS: Dict[str, int] = {
    "none": NLL_REDUCTION_NONE,
    "mean": NLL_REDUCTION_MEAN,
    "sum": NLL_REDUCTION_SUM,
}

NLL_CHECK_FINITE = 0x1
NLL_ALLOW_FLOAT_TARGETS = 0x2

NLL_OK = 0
# The status table of nll.h: numbers are fixed and append-only.
STATUS: Dict[str, int] = {
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
    "NLL_ERROR_CUDA": 82,
    "NLL_ERROR_OUT_OF_MEMORY": 100,
    "NLL_ERROR_INVALID_THREADS": 101,
    "NLL_ERROR_INVALID_ARCH": 102,
    "NLL_ERROR_CONTEXT_BUSY": 103,
}
STATUS_NAME: Dict[int, str] = {v: k for k, v in STATUS.items()}


class NllOptions(ctypes.Structure):
    # The header's order; ctypes applies the C alignment rules (padding after reduction and
    # after flags), so the layout matches nll_options on every ABI ctypes supports.
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


def declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Sets restype and argtypes of every function of nll.h on `lib`; returns `lib`."""
    P = ctypes.POINTER
    T = P(DLTensor)
    O = P(NllOptions)
    V = ctypes.c_void_p
    i64 = ctypes.c_int64
    st = ctypes.c_int  # nll_status is an enum: int-sized on every ABI libnll targets
    signatures = {
        "nll_version_number": (ctypes.c_uint, []),
        "nll_version_string": (ctypes.c_char_p, []),
        "nll_status_name": (ctypes.c_char_p, [st]),
        "nll_status_string": (ctypes.c_char_p, [st]),
        "nll_context_create": (st, [P(V)]),
        "nll_context_destroy": (None, [V]),
        "nll_context_set_threads": (st, [V, ctypes.c_int]),
        "nll_context_threads": (ctypes.c_int, [V]),
        "nll_last_error": (ctypes.c_char_p, [V]),
        "nll_last_error_detail": (st, [V, P(NllErrorDetail)]),
        "nll_options_default": (NllOptions, []),
        "nll_log_softmax_forward": (st, [V, T, i64, T]),
        "nll_log_softmax_backward": (st, [V, T, T, i64, T]),
        "nll_loss_forward": (st, [V, T, T, O, T, T]),
        "nll_loss_backward": (st, [V, T, T, T, O, T]),
        "nll_cross_entropy_forward": (st, [V, T, T, O, T]),
        "nll_cross_entropy_backward": (st, [V, T, T, T, O, T]),
        "nll_cross_entropy_fused": (st, [V, T, T, O, T, T]),
    }
    # Newer than the first release: declared when the library has them.
    optional = {
        "nll_context_set_arch": (st, [V, ctypes.c_char_p]),
        "nll_context_arch": (ctypes.c_char_p, [V]),
        "nll_cuda_available": (ctypes.c_int, []),
        "nll_context_set_cuda_stream": (st, [V, V]),
        "nll_context_set_async": (st, [V, ctypes.c_int]),
        "nll_context_sync": (st, [V]),
    }
    for name, (restype, argtypes) in list(signatures.items()) + list(optional.items()):
        fn = getattr(lib, name, None)
        if fn is None and name in optional:
            continue
        if fn is None:
            raise OSError("%s lacks %s: not a libnll of this version" % (lib._name, name))
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


# ---------------------------------------------------------------------------------------------
# Finding and loading the shared library

LIBRARY_NAMES = ("libnll.so", "libnll.dylib", "nll.dll")
_loaded: Optional[ctypes.CDLL] = None
_load_lock = threading.Lock()


def _renew_load_lock() -> None:
    # A fork while another thread held the lock would leave the child's copy locked forever.
    global _load_lock
    _load_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_load_lock)


def library_path(path: Optional[str] = None) -> str:
    """Where the library is: `path`, else $NLL_LIBRARY, else the file next to this module."""
    if path:
        return path
    env = os.environ.get("NLL_LIBRARY")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    for name in LIBRARY_NAMES:
        candidate = os.path.join(here, name)
        if os.path.exists(candidate):
            return candidate
    raise OSError(
        "libnll not found next to %s (looked for %s); reinstall the package with "
        "`pip install .`, or set NLL_LIBRARY to the path of a built libnll.so"
        % (here, ", ".join(LIBRARY_NAMES)))


def load(path: Optional[str] = None) -> ctypes.CDLL:
    """Loads and declares the library. Without `path`, loads once per process and caches."""
    global _loaded
    if path is not None:
        return declare(ctypes.CDLL(path))
    with _load_lock:
        if _loaded is None:
            _loaded = declare(ctypes.CDLL(library_path()))
        return _loaded


class Context:
    """An nll_context: the thread count and the last error. One thread at a time: a call while
    another thread's call holds it returns NLL_ERROR_CONTEXT_BUSY (and leaves the error record
    to the call in progress). After os.fork() a child may go on using an inherited context."""

    def __init__(self, lib: ctypes.CDLL, threads: Optional[int] = None) -> None:
        self.lib = lib
        handle = ctypes.c_void_p()
        status = lib.nll_context_create(ctypes.byref(handle))
        if status != NLL_OK or not handle.value:
            raise MemoryError("nll_context_create failed: %s" % STATUS_NAME.get(status, status))
        self.handle = handle
        if threads is not None:
            self.set_threads(threads)

    def set_threads(self, threads: int) -> int:
        return self.lib.nll_context_set_threads(self.handle, int(threads))

    def threads(self) -> int:
        return self.lib.nll_context_threads(self.handle)

    def last_error(self) -> str:
        return self.lib.nll_last_error(self.handle).decode(errors="replace")

    def last_error_detail(self) -> Dict[str, Any]:
        """The fields of nll_error_detail as a dict (index: the multi-index as a list)."""
        d = NllErrorDetail()
        self.lib.nll_last_error_detail(self.handle, ctypes.byref(d))
        return {
            "status": d.status,
            "function": (d.function or b"").decode(errors="replace"),
            "tensor": (d.tensor or b"").decode(errors="replace"),
            "flat_index": d.flat_index,
            "index": list(d.index[: max(0, min(d.ndim, NLL_MAX_DIMS))]),
            "value": d.value,
            "count": d.count,
        }

    def close(self) -> None:
        if self.handle is not None and self.handle.value:
            self.lib.nll_context_destroy(self.handle)
        self.handle = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass
