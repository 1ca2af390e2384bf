"""The losses, mirroring torch.nn.functional, on any array: numpy, torch, or any __dlpack__
producer. Arrays are handed to libnll without a copy; results come back as the input's
array type, dtype and device. A rejected call raises a subclass of nll.Error with the
library's message.

Options after `weight` are keyword-only: torch.nn.functional's fourth positional parameter
is the deprecated size_average, so a positional ignore_index would be misread there.
"""

from __future__ import annotations

import ctypes
import numbers
import operator
import threading
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from . import _capi
from ._dlpack import Borrowed, Maker, borrow, is_jax, is_torch
from .errors import ArgumentTypeError, ContextBusyError, InplaceError, from_detail, make_error

__all__ = [
    "nll_loss", "cross_entropy", "log_softmax", "cross_entropy_with_grad",
    "nll_loss_backward", "cross_entropy_backward", "log_softmax_backward",
    "set_num_threads", "get_num_threads",
]

Array = Any

# ---------------------------------------------------------------------------------------------
# Contexts: one per thread (a context serves one thread at a time: two threads on one get
# NLL_ERROR_CONTEXT_BUSY), all with the same thread count. A child of os.fork() keeps the
# forking thread's context: the library makes an inherited context work in the child.

_local = threading.local()
_threads = 1
_async = False
_observer: Optional[Callable[[str, Dict[str, Borrowed]], None]] = None  # tests: see pointers


def set_num_threads(threads: int) -> None:
    """Worker threads for every later call, from any Python thread (0: one per CPU). The
    count never changes a result: the library reduces in a fixed order."""
    global _threads
    threads = _int_option(threads, "threads", "set_num_threads",
                          "NLL_ERROR_INVALID_THREADS")
    if threads < 0:
        raise make_error("threads = %d is negative; pass 0 (one per CPU) or more" % threads,
                         _capi.STATUS["NLL_ERROR_INVALID_THREADS"])
    _threads = threads


def get_num_threads() -> int:
    """The thread count set by set_num_threads (1 by default; 0 means one per CPU)."""
    return _threads


def set_async(enabled: bool) -> None:
    """GPU calls (CUDA arrays) return without waiting for the GPU; a value error (target out of
    range, ...) is then raised by the next nll.sync(), and calls in between are skipped on the
    GPU. CPU calls always finish before returning. Off by default."""
    global _async
    _async = bool(enabled)


def sync() -> None:
    """Waits for this thread's GPU calls and raises the first value error of an asynchronous
    call since the last sync, with the message the call itself would have given."""
    ctx = _context()
    status = ctx.lib.nll_context_sync(ctx.handle)
    if status != _capi.NLL_OK:
        _raise(ctx, {}, status, "nll_context_sync")


def _context() -> _capi.Context:
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        ctx = _capi.Context(_capi.load())
        _local.ctx = ctx
        _local.threads = 1
        _local.async_ = False
    if _local.threads != _threads:
        _check(ctx, ctx.set_threads(_threads), "nll_context_set_threads")
        _local.threads = _threads
    if _local.async_ != _async:
        _check(ctx, ctx.lib.nll_context_set_async(ctx.handle, int(_async)),
               "nll_context_set_async")
        _local.async_ = _async
    return ctx


def _check(ctx: _capi.Context, status: int, fn_name: str) -> None:
    if status != _capi.NLL_OK:
        _raise(ctx, {}, status, fn_name)


def library_version() -> str:
    """The version string of the libnll this package has loaded."""
    return _capi.load().nll_version_string().decode()


# ---------------------------------------------------------------------------------------------
# Calling the library

# The library's messages name its C flags; a Python caller passes keyword arguments.
_PYTHON_SPELLING = (
    ("pass NLL_ALLOW_FLOAT_TARGETS", "pass allow_float_targets=True"),
    ("NLL_ALLOW_FLOAT_TARGETS accepts", "allow_float_targets=True accepts"),
)


def python_message(message: str) -> str:
    """The library's message with its C flag names spelled as this package's arguments."""
    for c_name, py_name in _PYTHON_SPELLING:
        message = message.replace(c_name, py_name)
    return message


def _raise(ctx: _capi.Context, tensors: Dict[str, Borrowed], status: int,
           fn_name: str) -> None:
    if status == _capi.STATUS["NLL_ERROR_CONTEXT_BUSY"]:
        # A busy call leaves the error record to the call in progress: the message is the
        # status's own.
        raise ContextBusyError(
            "%s: %s" % (fn_name, ctx.lib.nll_status_string(status).decode(errors="replace")),
            status=status, function=fn_name)
    detail = ctx.last_error_detail()
    message = python_message(ctx.last_error())
    exact = None
    named = tensors.get(detail["tensor"])
    flat = detail["flat_index"]
    if named is not None and flat >= 0:
        shape = named.shape
        index = detail["index"]
        if len(index) != len(shape):
            index = list(_unravel(flat, shape))
            detail["index"] = index
        if detail["tensor"] == "target":
            exact = named.read_element(index)  # int64/uint64 targets beyond 2**53 stay exact
    raise from_detail(message, detail, exact)


def _unravel(flat: int, shape: Tuple[int, ...]) -> Tuple[int, ...]:
    out = []
    for n in reversed(shape):
        out.append(flat % n if n else 0)
        flat = flat // n if n else 0
    return tuple(reversed(out))


def _call(fn_name: str, args: tuple, tensors: Dict[str, Borrowed]) -> None:
    """Calls fn_name(ctx, *args); raises the library's error. `tensors` names every
    Borrowed of the call, which also keeps them alive until the call returns."""
    ctx = _context()
    if _observer is not None:
        _observer(fn_name, tensors)
    stream = _torch_stream(tensors)
    if stream is not None:
        _check(ctx, ctx.lib.nll_context_set_cuda_stream(ctx.handle, stream),
               "nll_context_set_cuda_stream")
    status = getattr(ctx.lib, fn_name)(ctx.handle, *args)
    if status != _capi.NLL_OK:
        _raise(ctx, tensors, status, fn_name)


def _torch_stream(tensors: Dict[str, Borrowed]) -> Optional[int]:
    """For torch CUDA tensors, torch's current stream on their device: the library's kernels
    are then ordered with torch's."""
    for b in tensors.values():
        if b is not None and b.kind == "torch" and b.device[0] == _capi.kDLCUDA:
            import torch
            return torch.cuda.current_stream(b.device[1]).cuda_stream
    return None


# Options are type-checked as torch.nn.functional does (a TypeError, here ArgumentTypeError):
# int() and float() would turn "0.1", 1.5 or True into a value that was never meant.

def _wrong_type(where: str, name: str, value: Any, wanted: str, status: str) -> Exception:
    return ArgumentTypeError("%s: %s must be %s, not %s (%r)"
                             % (where, name, wanted, type(value).__name__, value),
                             status=_capi.STATUS[status])


def _reduction(reduction: Any, where: str) -> int:
    if not isinstance(reduction, str):
        raise _wrong_type(where, "reduction", reduction, "'none', 'mean' or 'sum'",
                          "NLL_ERROR_INVALID_REDUCTION")
    code = _capi.REDUCTIONS.get(reduction)
    if code is None:
        raise make_error("%s: reduction = %r is not 'none', 'mean' or 'sum'" % (where, reduction),
                         _capi.STATUS["NLL_ERROR_INVALID_REDUCTION"])
    return code


def _int_option(value: Any, name: str, where: str, status: Optional[str] = None) -> int:
    """An int (or numpy integer, or 0-d integer tensor: anything with __index__), not a bool
    or a float, in int64's range."""
    status = status or ("NLL_ERROR_IGNORE_INDEX" if name == "ignore_index"
                        else "NLL_ERROR_INVALID_DIM")
    if isinstance(value, bool) or isinstance(value, np.bool_):
        out = None
    else:
        try:
            out = operator.index(value)
        except TypeError:
            out = None
    if out is None:
        raise _wrong_type(where, name, value, "an int", status)
    if not -2**63 <= out < 2**63:
        raise make_error("%s: %s = %r is not an int64" % (where, name, value),
                         _capi.STATUS[status])
    return out


def _float_option(value: Any, name: str, where: str, status: str) -> float:
    """A real number (int, float, numpy scalar, 0-d tensor), never a string."""
    out = None
    complex_only = isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real)
    if not isinstance(value, (str, bytes)) and not complex_only:
        try:
            out = float(value)
        except (TypeError, ValueError):
            out = None
    if out is None:
        raise _wrong_type(where, name, value, "a float", status)
    return out


def _bool_option(value: Any, name: str, where: str) -> bool:
    """True or False (or a numpy bool): a string such as "False" is truthy."""
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return bool(value)
    raise _wrong_type(where, name, value, "a bool", "NLL_ERROR_INVALID_FLAGS")


def _options(where: str, reduction: str, ignore_index: int, label_smoothing: float,
             weight: Optional[Borrowed], check_finite: bool,
             allow_float_targets: bool) -> _capi.NllOptions:
    opts = _capi.NllOptions()
    opts.reduction = _reduction(reduction, where)
    opts.ignore_index = _int_option(ignore_index, "ignore_index", where)
    opts.label_smoothing = _float_option(label_smoothing, "label_smoothing", where,
                                         "NLL_ERROR_LABEL_SMOOTHING")
    check_finite = _bool_option(check_finite, "check_finite", where)
    allow_float_targets = _bool_option(allow_float_targets, "allow_float_targets", where)
    if weight is not None:
        opts.weight = ctypes.pointer(weight.dl)
    opts.flags = ((_capi.NLL_CHECK_FINITE if check_finite else 0)
                  | (_capi.NLL_ALLOW_FLOAT_TARGETS if allow_float_targets else 0))
    return opts


def _class_axis(shape: Tuple[int, ...]) -> int:
    return 0 if len(shape) <= 1 else 1


def _without_class_axis(shape: Tuple[int, ...]) -> Tuple[int, ...]:
    if not shape:
        return ()
    axis = _class_axis(shape)
    return shape[:axis] + shape[axis + 1:]


def _loss_shape(op: str, x: Borrowed, t: Borrowed, reduction: str) -> Tuple[int, ...]:
    if reduction != "none":
        return ()
    if op == "cross_entropy" and t.shape == x.shape:  # probability targets
        return _without_class_axis(x.shape)
    return t.shape


def _torch_autograd(*tensors: Any) -> bool:
    """True when a torch caller would expect this result to be differentiable: one of the
    tensors requires grad (nll.torch then computes it, or raises NotImplementedError for a
    weight or probability target that requires grad, rather than return a loss that silently
    has no gradient)."""
    if not any(is_torch(t) and t.requires_grad for t in tensors):
        return False
    import torch
    return torch.is_grad_enabled()


# ---------------------------------------------------------------------------------------------
# Forward

def nll_loss(input: Array, target: Array, weight: Optional[Array] = None, *,
             ignore_index: int = -100, reduction: str = "mean", check_finite: bool = False,
             allow_float_targets: bool = False) -> Array:
    """Negative log-likelihood of `target` under log-probabilities `input`, as
    torch.nn.functional.nll_loss.

    input: (C), (N, C) or (N, C, d1, ..., dk) log-probabilities, float64/32/16 or bfloat16.
    target: class indices of any integer dtype, shape () for a (C) input, else the input's
        shape without dim 1.
    weight: optional (C) class weights of the input's dtype.
    ignore_index: targets equal to it add nothing (and do not count for 'mean').
    reduction: 'none' (the target's shape), 'mean' (divides by the summed weight of the
        counted targets: NaN when there are none) or 'sum'.
    check_finite: reject NaN and +inf in the input (nll.NonFiniteError, naming the first).
    allow_float_targets: accept a floating target whose values are all whole numbers.

    Returns the loss as the input's array type and dtype. A torch input that requires grad
    (with grad mode on) goes through nll.torch.nll_loss, so the result is differentiable.
    Raises nll.Error subclasses: TargetRangeError, TargetDtypeError, ShapeError, ...
    """
    if _torch_autograd(input, weight):
        from . import torch as nll_torch
        return nll_torch.nll_loss(input, target, weight, ignore_index=ignore_index,
                                  reduction=reduction, check_finite=check_finite,
                                  allow_float_targets=allow_float_targets)
    x, t = borrow(input, "input"), borrow(target, "target")
    w = borrow(weight, "weight") if weight is not None else None
    opts = _options("nll_loss", reduction, ignore_index, 0.0, w, check_finite,
                    allow_float_targets)
    maker = Maker(x)
    out, out_b = maker.empty(_loss_shape("nll_loss", x, t, reduction))
    _call("nll_loss_forward",
          (x.ref, t.ref, ctypes.byref(opts), out_b.ref, None),
          _named(input=x, target=t, weight=w, loss=out_b))
    return maker.result(out)


def cross_entropy(input: Array, target: Array, weight: Optional[Array] = None, *,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0, check_finite: bool = False,
                  allow_float_targets: bool = False) -> Array:
    """Cross-entropy between logits `input` and `target`, as torch.nn.functional.cross_entropy.

    input: (C), (N, C) or (N, C, d1, ..., dk) logits, float64/32/16 or bfloat16.
    target: class indices (any integer dtype, the input's shape without dim 1), or class
        probabilities (a floating array of the input's exact shape and dtype).
    weight, ignore_index, reduction: as nll_loss; with probability targets 'mean' divides
        by the number of samples.
    label_smoothing: in [0, 1]; mixes the target with the uniform distribution.
    check_finite, allow_float_targets: as nll_loss.

    Returns the loss as the input's array type and dtype; a torch input that requires grad
    goes through nll.torch.cross_entropy (fused forward and backward).
    """
    if _torch_autograd(input, target, weight):
        from . import torch as nll_torch
        return nll_torch.cross_entropy(input, target, weight, ignore_index=ignore_index,
                                       reduction=reduction, label_smoothing=label_smoothing,
                                       check_finite=check_finite,
                                       allow_float_targets=allow_float_targets)
    x, t = borrow(input, "input"), borrow(target, "target")
    w = borrow(weight, "weight") if weight is not None else None
    opts = _options("cross_entropy", reduction, ignore_index, label_smoothing, w, check_finite,
                    allow_float_targets)
    maker = Maker(x)
    out, out_b = maker.empty(_loss_shape("cross_entropy", x, t, reduction))
    _call("nll_cross_entropy_forward",
          (x.ref, t.ref, ctypes.byref(opts), out_b.ref),
          _named(input=x, target=t, weight=w, loss=out_b))
    return maker.result(out)


def log_softmax(input: Array, dim: int = 1) -> Array:
    """log(softmax(input)) along `dim` (negative counts from the end), computed stably as
    (x - max) - log(sum(exp(x - max))), as torch.nn.functional.log_softmax. A row of all
    -inf, or holding NaN or +inf, gives NaN throughout. Returns the input's array type."""
    if _torch_autograd(input):
        from . import torch as nll_torch
        return nll_torch.log_softmax(input, dim)
    dim = _int_option(dim, "dim", "log_softmax")
    x = borrow(input, "input")
    maker = Maker(x)
    out, out_b = maker.empty(x.shape)
    _call("nll_log_softmax_forward", (x.ref, dim, out_b.ref),
          _named(input=x, output=out_b))
    return maker.result(out)


def cross_entropy_with_grad(input: Array, target: Array, weight: Optional[Array] = None, *,
                            ignore_index: int = -100, reduction: str = "mean",
                            label_smoothing: float = 0.0, check_finite: bool = False,
                            allow_float_targets: bool = False,
                            inplace: bool = False) -> Tuple[Array, Array]:
    """cross_entropy and its gradient with respect to the logits in one pass over them.

    Arguments as cross_entropy. Returns (loss, grad): grad has the input's shape and is the
    gradient of loss (for reduction='none': of loss.sum()). inplace=True writes the gradient
    over `input` itself and returns it as grad: no memory beyond the loss. On an error nothing
    is written, so the logits are intact.

    inplace=True raises nll.InplaceError (a RuntimeError too) for an input it cannot write in
    place: read-only numpy arrays, JAX arrays (immutable), inputs read from a copy (a list,
    non-native byte order, strides that are not whole elements, a torch tensor with a pending
    negation), and, with grad mode on, torch tensors that require grad (autograd cannot
    record the write). On a torch tensor it bumps the version counter as torch's in-place ops
    do, so a backward through an op that saved the tensor raises instead of using the
    gradient's values.
    """
    inplace = _bool_option(inplace, "inplace", "cross_entropy_with_grad")
    if inplace:
        _check_inplace_array(input)
    x, t = borrow(input, "input"), borrow(target, "target")
    w = borrow(weight, "weight") if weight is not None else None
    opts = _options("cross_entropy", reduction, ignore_index, label_smoothing, w, check_finite,
                    allow_float_targets)
    maker = Maker(x)
    out, out_b = maker.empty(_loss_shape("cross_entropy", x, t, reduction))
    if inplace:
        _check_inplace_memory(x)
        grad, grad_b = input, x
    else:
        grad, grad_b = maker.empty(x.shape)
    _call("nll_cross_entropy_fused",
          (x.ref, t.ref, ctypes.byref(opts), out_b.ref, grad_b.ref),
          _named(input=x, target=t, weight=w, loss=out_b, grad_input=grad_b))
    if inplace and x.kind == "torch":
        _bump_version(input)
    return maker.result(out), (grad if inplace else maker.result(grad))


def _refuse_inplace(why: str, fix: str) -> Exception:
    return InplaceError("cross_entropy_with_grad: inplace=True writes the gradient over the "
                        "input, but %s; %s, or use inplace=False" % (why, fix),
                        status=_capi.STATUS["NLL_ERROR_OVERLAP"], tensor="input")


def _check_inplace_array(array: Any) -> None:
    """What makes an input unwritable, known before it is borrowed: immutability, autograd."""
    if is_jax(array):
        raise _refuse_inplace(
            "input is a JAX array (%s), and JAX arrays are immutable: writing into its "
            "buffer would change every array that shares it" % type(array).__name__,
            "take the gradient as a new array")
    if is_torch(array) and array.requires_grad:
        import torch
        if torch.is_grad_enabled():
            if array.is_leaf:
                raise _refuse_inplace(
                    "input is a leaf tensor that requires grad, which torch does not let an "
                    "in-place operation overwrite ('a leaf Variable that requires grad is "
                    "being used in an in-place operation')",
                    "call it under torch.no_grad() if overwriting is meant")
            raise _refuse_inplace(
                "input requires grad and autograd cannot record libnll's in-place write (the "
                "tensor would keep a grad_fn that no longer describes its values)",
                "use nll.torch.cross_entropy for a differentiable loss, call it under "
                "torch.no_grad() if overwriting is meant")


def _check_inplace_memory(x: Borrowed) -> None:
    """The borrowed input must be the caller's own writeable memory, not a copy."""
    if x.copied is not None:
        why, fix = x.copied
        raise _refuse_inplace(
            "input %s: the gradient would be written to that copy and input would keep its "
            "logits" % why, "%s and read the gradient from x" % fix)
    flags = getattr(x.array, "flags", None)
    if x.kind == "numpy" and not flags.writeable:
        raise _refuse_inplace("this numpy array is read-only",
                              "pass a writeable copy (x = input.copy())")


def _bump_version(tensor: Any) -> None:
    """Counts the write in the tensor's version counter, as torch's in-place ops do: autograd
    then raises "modified by an inplace operation" for a graph that saved it. An in-place op
    on a 0-element view shares the counter and touches no element. Inference tensors have no
    counter."""
    import torch
    if tensor.is_inference():
        return
    with torch.no_grad():
        tensor.as_strided((0,), (1,)).zero_()


def _named(**tensors: Optional[Borrowed]) -> Dict[str, Borrowed]:
    return {k: v for k, v in tensors.items() if v is not None}


# ---------------------------------------------------------------------------------------------
# Backward

def _grad_loss(grad_loss: Any, like: Borrowed) -> Optional[Borrowed]:
    if grad_loss is None:
        return None
    if isinstance(grad_loss, (int, float)):
        if float(grad_loss) == 1.0:
            return None  # the library's NULL means exactly 1
        out, b = Maker(like).empty(())
        if like.kind == "torch":
            out.fill_(float(grad_loss))
        else:
            out[...] = float(grad_loss)
        return b
    return borrow(grad_loss, "grad_loss")


def nll_loss_backward(grad_loss: Optional[Array], input: Array, target: Array,
                      weight: Optional[Array] = None, *, ignore_index: int = -100,
                      reduction: str = "mean", allow_float_targets: bool = False) -> Array:
    """Gradient of nll_loss with respect to `input`, for upstream `grad_loss` (None or 1: the
    loss itself; a 0-d array; for reduction='none' an array of the loss's shape)."""
    x, t = borrow(input, "input"), borrow(target, "target")
    w = borrow(weight, "weight") if weight is not None else None
    g = _grad_loss(grad_loss, x)
    opts = _options("nll_loss", reduction, ignore_index, 0.0, w, False, allow_float_targets)
    maker = Maker(x)
    out, out_b = maker.empty(x.shape)
    _call("nll_loss_backward",
          (g.ref if g else None, x.ref, t.ref, ctypes.byref(opts), out_b.ref),
          _named(grad_loss=g, input=x, target=t, weight=w, grad_input=out_b))
    return maker.result(out)


def cross_entropy_backward(grad_loss: Optional[Array], input: Array, target: Array,
                           weight: Optional[Array] = None, *, ignore_index: int = -100,
                           reduction: str = "mean", label_smoothing: float = 0.0,
                           allow_float_targets: bool = False) -> Array:
    """Gradient of cross_entropy with respect to the logits `input`, for upstream
    `grad_loss` (as nll_loss_backward)."""
    x, t = borrow(input, "input"), borrow(target, "target")
    w = borrow(weight, "weight") if weight is not None else None
    g = _grad_loss(grad_loss, x)
    opts = _options("cross_entropy", reduction, ignore_index, label_smoothing, w, False,
                    allow_float_targets)
    maker = Maker(x)
    out, out_b = maker.empty(x.shape)
    _call("nll_cross_entropy_backward",
          (g.ref if g else None, x.ref, t.ref, ctypes.byref(opts), out_b.ref),
          _named(grad_loss=g, input=x, target=t, weight=w, grad_input=out_b))
    return maker.result(out)


def log_softmax_backward(grad_output: Array, output: Array, dim: int = 1) -> Array:
    """Gradient of log_softmax: grad_output - exp(output) * sum(grad_output) along `dim`,
    where `output` is log_softmax's result."""
    dim = _int_option(dim, "dim", "log_softmax_backward")
    g, y = borrow(grad_output, "grad_output"), borrow(output, "output")
    maker = Maker(y)
    out, out_b = maker.empty(y.shape)
    _call("nll_log_softmax_backward", (g.ref, y.ref, dim, out_b.ref),
          _named(grad_output=g, output=y, grad_input=out_b))
    return maker.result(out)

