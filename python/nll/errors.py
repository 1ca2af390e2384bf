"""Exceptions: one class per family of libnll statuses, all under nll.Error (a ValueError).

Every exception carries the library's message (str(e)) and the facts behind it:

    try:
        nll.cross_entropy(logits, labels)
    except nll.TargetRangeError as e:
        e.status       # 60
        e.name         # "NLL_ERROR_TARGET_RANGE"
        e.function     # "nll_cross_entropy_forward"
        e.tensor       # "target"
        e.index        # (1, 2): the multi-index, so labels[e.index] is the bad element
        e.flat_index   # 5: its row-major position
        e.value        # 255 (an int for integer targets, else a float)
        e.count        # how many elements are bad (None when not counted)
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple, Type

from . import _capi

__all__ = [
    "Error", "ArgumentError", "ShapeError", "LayoutError", "DtypeError", "TargetDtypeError",
    "TargetNotWholeError", "TargetRangeError", "NonFiniteError", "DeviceError",
    "OutOfMemoryError", "ArgumentTypeError", "ArrayTypeError", "InplaceError",
    "ContextBusyError", "error_class",
]


class Error(ValueError):
    """A call rejected by libnll (or by this package's own argument checks, with the same
    status numbers). Nothing was written to any output."""

    status: int
    name: str
    function: str
    tensor: str
    flat_index: Optional[int]
    index: Optional[Tuple[int, ...]]
    value: Any
    count: Optional[int]
    message: str

    def __init__(self, message: str, *, status: int = 0, function: str = "", tensor: str = "",
                 flat_index: Optional[int] = None, index: Optional[Tuple[int, ...]] = None,
                 value: Any = None, count: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.name = _capi.STATUS_NAME.get(status, "NLL_ERROR_%d" % status)
        self.function = function
        self.tensor = tensor
        self.flat_index = flat_index
        self.index = index
        self.value = value
        self.count = count

    def __str__(self) -> str:
        return self.message


class ArgumentError(Error):
    """An option is invalid: reduction, label_smoothing, ignore_index, flags, dim, threads,
    instruction set."""


class ArgumentTypeError(ArgumentError, TypeError):
    """An option of the wrong Python type (label_smoothing="0.1", ignore_index=1.0,
    reduction=3, check_finite="no"): also a TypeError, which is what torch.nn.functional
    raises for it. The status is the option's (NLL_ERROR_LABEL_SMOOTHING, ...)."""


class ShapeError(Error):
    """Shapes that do not fit: input rank, target, probability target, weight, output."""


class LayoutError(Error):
    """Memory layout: a negative size, a size beyond int64, NULL data, overlapping outputs."""


class DtypeError(Error):
    """A dtype libnll does not take there: input, weight, output, or an unknown code."""


class ArrayTypeError(DtypeError, TypeError):
    """An argument that must be an array is not one (a str, None, a dict, ...): also a
    TypeError, as torch.nn.functional raises for it."""


class InplaceError(LayoutError, RuntimeError):
    """inplace=True cannot write the gradient over this input: a read-only or immutable array
    (numpy read-only, JAX), an input that was read from a copy (a list, non-native byte
    order, strides that are not whole elements, a torch tensor with a pending negation), or
    a torch tensor that autograd tracks. Also a RuntimeError, which is what torch raises for
    in-place writes it refuses. Nothing was written."""


class TargetDtypeError(DtypeError):
    """The target's dtype: floating where class indices are expected, bool, complex, or a
    probability target whose dtype is not the input's."""


class TargetNotWholeError(TargetDtypeError):
    """allow_float_targets=True, but a target value is not a finite whole number."""


class TargetRangeError(Error, IndexError):
    """A class index outside [0, C) that is not ignore_index. Also an IndexError, which is
    what torch.nn.functional raises for it on the CPU."""


class NonFiniteError(Error):
    """check_finite=True: a NaN or +inf in the input (or in a probability target)."""


class DeviceError(Error):
    """A tensor on a device this build does not serve, no usable GPU for CUDA tensors (or a CUDA
    runtime failure), or tensors of one call on different devices. Nothing is copied to the host
    behind your back."""


class OutOfMemoryError(Error, MemoryError):
    """The library could not allocate its scratch memory."""


class ContextBusyError(Error, RuntimeError):
    """A library context was used by two threads at once (NLL_ERROR_CONTEXT_BUSY). This package
    keeps one context per Python thread, so it means a context shared by hand (nll._capi).
    Also a RuntimeError: misuse at run time, not a bad value."""


_BY_STATUS: Dict[int, Type[Error]] = {}
for _name, _cls in [
    (("NULL_ARGUMENT", "INVALID_REDUCTION", "LABEL_SMOOTHING", "IGNORE_INDEX", "INVALID_FLAGS",
      "INVALID_DIM", "INVALID_THREADS", "INVALID_ARCH"), ArgumentError),
    (("INPUT_RANK", "TARGET_SHAPE", "PROBABILITY_SHAPE", "WEIGHT_SHAPE", "OUTPUT_SHAPE"),
     ShapeError),
    (("NEGATIVE_SIZE", "SIZE_OVERFLOW", "NULL_DATA", "OVERLAP"), LayoutError),
    (("INPUT_DTYPE", "WEIGHT_DTYPE", "OUTPUT_DTYPE", "UNSUPPORTED_DTYPE"), DtypeError),
    (("FLOAT_TARGET", "TARGET_DTYPE"), TargetDtypeError),
    (("TARGET_NOT_WHOLE",), TargetNotWholeError),
    (("TARGET_RANGE",), TargetRangeError),
    (("NONFINITE",), NonFiniteError),
    (("UNSUPPORTED_DEVICE", "DEVICE_MISMATCH", "CUDA"), DeviceError),
    (("OUT_OF_MEMORY",), OutOfMemoryError),
    (("CONTEXT_BUSY",), ContextBusyError),
]:
    for _short in _name:
        _BY_STATUS[_capi.STATUS["NLL_ERROR_" + _short]] = _cls


def error_class(status: int) -> Type[Error]:
    """The exception class for a status number (Error for one this version does not know)."""
    return _BY_STATUS.get(status, Error)


def make_error(message: str, status: int, **fields: Any) -> Error:
    """An instance of the class for `status`."""
    return error_class(status)(message, status=status, **fields)


def from_detail(message: str, detail: Dict[str, Any], exact_value: Any = None) -> Error:
    """The exception for a failed library call, from nll_last_error and its detail.

    exact_value: the offending element read back from the caller's memory when the caller
    could (class indices beyond 2**53 do not survive the detail's double)."""
    flat = detail["flat_index"]
    has_position = flat is not None and flat >= 0
    value = detail["value"]
    if exact_value is not None:
        value = exact_value
    elif isinstance(value, float) and math.isnan(value) and not has_position:
        value = None  # the detail's "no value"; a NaN at a position is a real NaN
    count = detail["count"]
    return make_error(
        message, detail["status"],
        function=detail["function"], tensor=detail["tensor"],
        flat_index=flat if has_position else None,
        index=tuple(detail["index"]) if has_position else None,
        value=value, count=count if count is not None and count >= 0 else None)
