"""Arrays in, DLTensors out, without copying; and result arrays of the caller's kind.

Three ways an array becomes a DLTensor over the caller's own memory:
  - numpy.ndarray: its data pointer, byte strides / itemsize, dtype (works for read-only
    arrays and bool, which numpy's own __dlpack__ refuses);
  - torch.Tensor: data_ptr(), stride(), dtype and device (works for tensors that require grad,
    bool and bfloat16; torch's __dlpack__ refuses the first two);
  - anything else with __dlpack__ (JAX, CuPy, ...): the legacy "dltensor" capsule, whose
    DLManagedTensor is read in place. The capsule is kept, unconsumed, for as long as the
    DLTensor is used; when it is collected the producer's own destructor releases the memory.
Objects with none of these (lists, scalars) go through numpy.asarray first.

Three inputs are read from a copy, which is recorded (Borrowed.copied) so that inplace=True
can refuse them rather than write the gradient into the copy: byte-swapped numpy arrays and
numpy strides that are not whole elements (DLPack cannot describe either), objects that only
numpy.asarray turns into arrays, and torch tensors with a pending negation or conjugation
(their memory holds the unresolved values: they are read through resolve_neg/resolve_conj).

Results: numpy in, numpy out; torch in, torch out (same device); for other producers the
output is allocated with numpy and handed to the caller's module's from_dlpack (jax.numpy,
cupy, ...), falling back to its asarray, else returned as numpy. Device memory other than
torch's cannot be allocated here: such inputs get output descriptors with no data, which the
library never reaches because it rejects the input's device first.
"""

from __future__ import annotations

import ctypes
import importlib
import sys
from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np

from . import _capi
from ._capi import DLDataType, DLDevice, DLManagedTensor, DLTensor
from .errors import ArrayTypeError, make_error

Shape = Tuple[int, ...]
DType = Tuple[int, int]  # DLPack (code, bits); lanes are always 1

_NUMPY_DTYPES = {
    np.dtype(np.float64): (_capi.kDLFloat, 64),
    np.dtype(np.float32): (_capi.kDLFloat, 32),
    np.dtype(np.float16): (_capi.kDLFloat, 16),
    np.dtype(np.int8): (_capi.kDLInt, 8),
    np.dtype(np.int16): (_capi.kDLInt, 16),
    np.dtype(np.int32): (_capi.kDLInt, 32),
    np.dtype(np.int64): (_capi.kDLInt, 64),
    np.dtype(np.uint8): (_capi.kDLUInt, 8),
    np.dtype(np.uint16): (_capi.kDLUInt, 16),
    np.dtype(np.uint32): (_capi.kDLUInt, 32),
    np.dtype(np.uint64): (_capi.kDLUInt, 64),
    np.dtype(np.bool_): (_capi.kDLBool, 8),
    np.dtype(np.complex64): (_capi.kDLComplex, 64),
    np.dtype(np.complex128): (_capi.kDLComplex, 128),
}
_NUMPY_OF_DL = {v: k for k, v in _NUMPY_DTYPES.items()}

_PyCapsule_GetPointer = ctypes.pythonapi.PyCapsule_GetPointer
_PyCapsule_GetPointer.restype = ctypes.c_void_p
_PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]

# Producers whose array type lives in a module without from_dlpack.
_RESULT_MODULES = {"jaxlib": "jax.numpy", "jax": "jax.numpy"}


def torch_module() -> Any:
    """torch if the caller has imported it (never imported here: numpy users do not pay)."""
    return sys.modules.get("torch")


def is_torch(obj: Any) -> bool:
    torch = torch_module()
    return torch is not None and isinstance(obj, torch.Tensor)


def is_jax(obj: Any) -> bool:
    """A JAX array (immutable), known by its type's module without importing jax."""
    if type(obj).__module__.split(".")[0] in ("jax", "jaxlib"):
        return True
    jax = sys.modules.get("jax")
    array_type = getattr(jax, "Array", None) if jax is not None else None
    return isinstance(array_type, type) and isinstance(obj, array_type)


def dtype_name(dtype: DType) -> str:
    code, bits = dtype
    names = {_capi.kDLFloat: "float", _capi.kDLInt: "int", _capi.kDLUInt: "uint",
             _capi.kDLBfloat: "bfloat", _capi.kDLComplex: "complex"}
    if code == _capi.kDLBool:
        return "bool"
    return "%s%d" % (names.get(code, "code%d-" % code), bits)


def is_float_dtype(dtype: DType) -> bool:
    return dtype in ((_capi.kDLFloat, 64), (_capi.kDLFloat, 32), (_capi.kDLFloat, 16),
                     (_capi.kDLBfloat, 16))


class Borrowed:
    """A DLTensor over an array's memory, holding everything that keeps that memory valid.

    kind: "numpy", "torch" or "dlpack" (a generic producer); array: the caller's object (or
    the array actually read: the numpy array made from a list, a byte-swapped or resolved
    copy); shape, dtype (code, bits) and device (type, id). copied: None when the library
    sees the caller's own memory, else (why a copy was read, how to pass the memory itself)."""

    __slots__ = ("array", "kind", "dl", "shape", "strides", "dtype", "device", "copied",
                 "_keep")

    def __init__(self, array: Any, kind: str, dl: DLTensor, keep: Any,
                 copied: Optional[Tuple[str, str]] = None) -> None:
        self.array = array
        self.kind = kind
        self.dl = dl
        self.copied = copied
        self._keep = keep
        n = dl.ndim
        self.shape: Shape = tuple(dl.shape[i] for i in range(n))
        # Element strides; None when the producer gave compact row-major (NULL).
        self.strides: Optional[Shape] = (
            tuple(dl.strides[i] for i in range(n)) if dl.strides else None)
        self.dtype: DType = (dl.dtype.code, dl.dtype.bits)
        self.device: Tuple[int, int] = (dl.device.device_type, dl.device.device_id)

    @property
    def ref(self) -> Any:
        """The DLTensor* to pass to the library."""
        return ctypes.byref(self.dl)

    @property
    def address(self) -> int:
        """Address of element [0, ..., 0] as the library sees it (data + byte_offset)."""
        return (self.dl.data or 0) + self.dl.byte_offset

    @property
    def on_host(self) -> bool:
        return self.device[0] in _capi.HOST_DEVICES

    def element_strides(self) -> Shape:
        if self.strides is not None:
            return self.strides
        out, acc = [], 1
        for n in reversed(self.shape):
            out.append(acc)
            acc *= max(n, 1)
        return tuple(reversed(out))

    def read_element(self, index: Sequence[int]) -> Any:
        """The exact value at a multi-index (host memory, integer or float dtypes), or None."""
        if not self.on_host or len(index) != len(self.shape) or not self.dl.data:
            return None
        ctype = {(_capi.kDLInt, 8): ctypes.c_int8, (_capi.kDLInt, 16): ctypes.c_int16,
                 (_capi.kDLInt, 32): ctypes.c_int32, (_capi.kDLInt, 64): ctypes.c_int64,
                 (_capi.kDLUInt, 8): ctypes.c_uint8, (_capi.kDLUInt, 16): ctypes.c_uint16,
                 (_capi.kDLUInt, 32): ctypes.c_uint32, (_capi.kDLUInt, 64): ctypes.c_uint64,
                 (_capi.kDLFloat, 32): ctypes.c_float,
                 (_capi.kDLFloat, 64): ctypes.c_double}.get(self.dtype)
        if ctype is None:
            return None
        offset = sum(i * s for i, s in zip(index, self.element_strides()))
        value = ctype.from_address(self.address + offset * ctypes.sizeof(ctype)).value
        return int(value) if self.dtype[0] in (_capi.kDLInt, _capi.kDLUInt) else float(value)


def _make_dl(data: int, device: Tuple[int, int], dtype: DType, shape: Sequence[int],
             strides: Optional[Sequence[int]]) -> Tuple[DLTensor, Tuple[Any, Any]]:
    ndim = len(shape)
    # Never zero-length ctypes arrays: their pointers must stay valid for a 0-d tensor too.
    shape_arr = (ctypes.c_int64 * max(ndim, 1))(*shape)
    dl = DLTensor()
    dl.data = data or None
    dl.device = DLDevice(*device)
    dl.ndim = ndim
    dl.dtype = DLDataType(dtype[0], dtype[1], 1)
    dl.shape = ctypes.cast(shape_arr, ctypes.POINTER(ctypes.c_int64))
    strides_arr = None
    if strides is not None:
        strides_arr = (ctypes.c_int64 * max(ndim, 1))(*strides)
        dl.strides = ctypes.cast(strides_arr, ctypes.POINTER(ctypes.c_int64))
    dl.byte_offset = 0
    return dl, (shape_arr, strides_arr)


def _unsupported(name: str, what: str) -> Exception:
    return make_error("%s has %s, which libnll does not support" % (name, what),
                      _capi.STATUS["NLL_ERROR_UNSUPPORTED_DTYPE"], tensor=name)


def _borrow_numpy(arr: np.ndarray, name: str,
                  copied: Optional[Tuple[str, str]] = None) -> Borrowed:
    dtype = _NUMPY_DTYPES.get(arr.dtype)
    if dtype is None and arr.dtype.kind in "fiucb" and not arr.dtype.isnative:
        # Byte-swapped data cannot be described by DLPack: read from a native-order copy.
        copied = copied or (
            "has non-native byte order (dtype %s), which DLPack cannot describe, so the "
            "library read a byte-swapped copy" % arr.dtype.str,
            "pass x = %s.astype(%s.dtype.newbyteorder('='))" % (name, name))
        arr = arr.astype(arr.dtype.newbyteorder("="))
        dtype = _NUMPY_DTYPES.get(arr.dtype)
    if dtype is None:
        raise _unsupported(name, "numpy dtype %s" % arr.dtype)
    item = arr.itemsize
    if any(s % item for s in arr.strides):
        # strides that are not whole elements (a field of a structured array): a copy
        copied = copied or (
            "has byte strides %s that are not multiples of its %d-byte elements, so the "
            "library read a contiguous copy" % (tuple(arr.strides), item),
            "pass x = np.ascontiguousarray(%s)" % name)
        arr = np.ascontiguousarray(arr)
    strides = [s // item for s in arr.strides]
    data = arr.__array_interface__["data"][0]
    dl, keep = _make_dl(data, (_capi.kDLCPU, 0), dtype, arr.shape, strides)
    return Borrowed(arr, "numpy", dl, keep, copied)


def _torch_dtypes(torch: Any) -> dict:
    return {
        torch.float64: (_capi.kDLFloat, 64), torch.float32: (_capi.kDLFloat, 32),
        torch.float16: (_capi.kDLFloat, 16), torch.bfloat16: (_capi.kDLBfloat, 16),
        torch.int8: (_capi.kDLInt, 8), torch.int16: (_capi.kDLInt, 16),
        torch.int32: (_capi.kDLInt, 32), torch.int64: (_capi.kDLInt, 64),
        torch.uint8: (_capi.kDLUInt, 8), torch.bool: (_capi.kDLBool, 8),
        torch.complex64: (_capi.kDLComplex, 64), torch.complex128: (_capi.kDLComplex, 128),
    }


def torch_device(tensor: Any) -> Tuple[int, int]:
    """The DLPack device of a torch tensor."""
    dev = tensor.device
    if dev.type == "cpu":
        return (_capi.kDLCPU, 0)
    if dev.type == "cuda":
        hip = getattr(getattr(torch_module(), "version", None), "hip", None)
        return (_capi.kDLROCM if hip else _capi.kDLCUDA, dev.index or 0)
    try:
        kind, index = tensor.__dlpack_device__()
        return (int(kind), int(index))
    except Exception:
        # No DLPack code for it (meta, mps, xla...): ExtDev makes the library name it as
        # unsupported rather than read an address that is not host memory.
        return (_capi.kDLExtDev, dev.index or 0)


def _borrow_torch(t: Any, name: str) -> Borrowed:
    torch = torch_module()
    if t.layout != torch.strided:
        raise make_error("%s has layout %s; libnll takes strided (dense) tensors: call "
                         ".to_dense() first" % (name, t.layout),
                         _capi.STATUS["NLL_ERROR_UNSUPPORTED_DTYPE"], tensor=name)
    dtype = _torch_dtypes(torch).get(t.dtype)
    if dtype is None:
        raise _unsupported(name, "torch dtype %s" % t.dtype)
    # A pending negation or conjugation (x.conj().imag, torch._neg_view) lives in the tensor's
    # flags, not its memory: the raw bits are the unresolved values. Read resolved copies.
    copied = None
    for pending, resolve in (("is_neg", "resolve_neg"), ("is_conj", "resolve_conj")):
        is_pending = getattr(t, pending, None)
        if is_pending is not None and is_pending():
            copied = copied or (
                "is a torch tensor with a pending %s (%s() is True, as for x.conj().imag), "
                "so the library read %s.%s(), a copy"
                % ("negation" if pending == "is_neg" else "conjugation", pending, name,
                   resolve),
                "pass x = %s.%s()" % (name, resolve))
            t = getattr(t, resolve)()
    dl, keep = _make_dl(t.data_ptr(), torch_device(t), dtype, t.shape, t.stride())
    return Borrowed(t, "torch", dl, keep, copied)


def _borrow_capsule(obj: Any, name: str) -> Borrowed:
    device = tuple(obj.__dlpack_device__()) if hasattr(obj, "__dlpack_device__") else None
    # No stream argument: on the host there is none, and for device arrays the library
    # rejects the device before reading a byte.
    capsule = obj.__dlpack__()
    address = _PyCapsule_GetPointer(capsule, b"dltensor")
    managed = DLManagedTensor.from_address(address)
    src = managed.dl_tensor
    # A copy of the descriptor (not of the data): the library's view of the producer's memory.
    dl, keep = _make_dl(src.data or 0, (src.device.device_type, src.device.device_id),
                        (src.dtype.code, src.dtype.bits),
                        [src.shape[i] for i in range(src.ndim)],
                        [src.strides[i] for i in range(src.ndim)] if src.strides else None)
    dl.dtype.lanes = src.dtype.lanes
    dl.byte_offset = src.byte_offset
    if device is not None and device[0] != dl.device.device_type:
        dl.device = DLDevice(*device)  # trust the producer's stated device
    # The capsule stays unconsumed and referenced until this Borrowed is gone.
    return Borrowed(obj, "dlpack", dl, (keep, capsule))


# Never arrays, although numpy.asarray makes 0-d object or string arrays of them.
_NOT_ARRAYS = (str, bytes, dict, set, frozenset, type(None))


def _not_an_array(obj: Any, name: str) -> Exception:
    return ArrayTypeError("%s is a %s, not an array" % (name, type(obj).__name__),
                          status=_capi.STATUS["NLL_ERROR_UNSUPPORTED_DTYPE"], tensor=name)


def borrow(obj: Any, name: str) -> Borrowed:
    """A Borrowed over `obj`'s memory: numpy, torch, any __dlpack__ producer, or (copied
    once by numpy.asarray) a list or scalar."""
    if isinstance(obj, np.ndarray):
        return _borrow_numpy(obj, name)
    if is_torch(obj):
        return _borrow_torch(obj, name)
    if hasattr(obj, "__dlpack__"):
        return _borrow_capsule(obj, name)
    if isinstance(obj, _NOT_ARRAYS):
        raise _not_an_array(obj, name)
    try:
        arr = np.asarray(obj)
    except Exception as exc:  # not array-like at all
        raise _not_an_array(obj, name) from exc
    if arr.dtype == object:
        raise _not_an_array(obj, name)
    return _borrow_numpy(arr, name, (
        "is a %s, not an array, so the library read the numpy array made from it "
        "(numpy.asarray)" % type(obj).__name__,
        "pass x = np.asarray(%s)" % name))


# ---------------------------------------------------------------------------------------------
# Outputs

class Maker:
    """Allocates outputs of the same kind, dtype and device as a reference array (the input)
    and turns them into the caller's array type."""

    def __init__(self, like: Borrowed) -> None:
        self.like = like
        dtype = like.dtype
        # A non-float input is rejected by the library before any output is read; float64
        # keeps the placeholder allocatable.
        self.dtype: DType = dtype if is_float_dtype(dtype) else (_capi.kDLFloat, 64)

    def empty(self, shape: Shape) -> Tuple[Any, Borrowed]:
        """(array, Borrowed) of `shape`, uninitialised."""
        like = self.like
        if like.kind == "torch":
            torch = torch_module()
            src = like.array
            dtype = src.dtype if is_float_dtype(like.dtype) else torch.float64
            out = torch.empty(shape, dtype=dtype, device=src.device)
            return out, _borrow_torch(out, "output")
        if like.on_host:
            np_dtype = _NUMPY_OF_DL.get(self.dtype)
            if np_dtype is None:  # bfloat16 from a non-torch producer: numpy has no bfloat16
                raise make_error(
                    "input has dtype bfloat16 from %s: results can only be allocated as "
                    "numpy arrays here, and numpy has no bfloat16; pass a torch tensor or "
                    "convert the input to float32" % type(like.array).__name__,
                    _capi.STATUS["NLL_ERROR_UNSUPPORTED_DTYPE"], tensor="input")
            out = np.empty(shape, dtype=np_dtype)
            return out, _borrow_numpy(out, "output")
        module = type(like.array).__module__.split(".")[0]
        if module == "cupy" and like.device[0] == _capi.kDLCUDA:
            import cupy
            np_dtype = _NUMPY_OF_DL.get(self.dtype)
            if np_dtype is not None:
                with cupy.cuda.Device(like.device[1]):
                    out = cupy.empty(shape, dtype=np_dtype)
                return out, _borrow_capsule(out, "output")
        if like.device[0] != _capi.kDLCUDA:
            # a device the library refuses before reading a byte: a descriptor without data
            dl, keep = _make_dl(0, like.device, self.dtype, shape, None)
            return None, Borrowed(None, "dlpack", dl, keep)
        raise make_error(
            "input is on cuda:%d from %s: results on a GPU can be allocated for torch and CuPy "
            "arrays only; pass one of those (both share memory with this array through "
            "DLPack)" % (like.device[1], type(like.array).__name__),
            _capi.STATUS["NLL_ERROR_UNSUPPORTED_DEVICE"], tensor="input")

    def result(self, out: Any) -> Any:
        """`out` as the caller's array type."""
        kind = self.like.kind
        if kind in ("numpy", "torch") or out is None:
            return out
        convert = _result_converter(type(self.like.array))
        return convert(out) if convert is not None else out


def _result_converter(cls: type) -> Optional[Callable[[Any], Any]]:
    root = cls.__module__.split(".")[0]
    name = _RESULT_MODULES.get(root, root)
    module = sys.modules.get(name)
    if module is None:
        try:
            module = importlib.import_module(name)
        except Exception:
            return None
    for attr in ("from_dlpack", "asarray"):
        fn = getattr(module, attr, None)
        if callable(fn):
            return fn
    return None
