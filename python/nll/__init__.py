"""libnll from Python: log_softmax, nll_loss and cross_entropy with PyTorch's semantics and
errors that say exactly what is wrong.

    import nll
    loss = nll.cross_entropy(logits, labels)          # like torch.nn.functional.cross_entropy
    loss, grad = nll.cross_entropy_with_grad(logits, labels)
    print(nll.check(labels, input=logits))            # what would go wrong, and the fix

Arrays: numpy, torch, or anything with __dlpack__ (JAX, CuPy, ...), handed to the library
without a copy; results come back as the input's array type, dtype and device. CUDA arrays
run on their GPU when libnll was built with its CUDA backend (torch tensors on torch's current
stream); other devices raise nll.DeviceError (nothing is copied behind your back).

For autograd and drop-in nn modules: nll.torch (cross_entropy, nll_loss, log_softmax,
CrossEntropyLoss, NLLLoss). Errors: nll.Error (a ValueError) and its subclasses, carrying
.status, .index, .value and the library's message.

The shared library is loaded on first use from this package's folder, or from the path in
the NLL_LIBRARY environment variable.
"""

from __future__ import annotations

from typing import Any

from .check import Finding, Report, check
from .errors import (ArgumentError, ArgumentTypeError, ArrayTypeError, ContextBusyError,
                     DeviceError, DtypeError, Error, InplaceError, LayoutError,
                     NonFiniteError, OutOfMemoryError, ShapeError, TargetDtypeError,
                     TargetNotWholeError, TargetRangeError)
from .functional import (cross_entropy, cross_entropy_backward, cross_entropy_with_grad,
                         get_num_threads, library_version, log_softmax, log_softmax_backward,
                         nll_loss, nll_loss_backward, set_async, set_num_threads, sync)

__all__ = [
    "nll_loss", "cross_entropy", "log_softmax", "cross_entropy_with_grad",
    "nll_loss_backward", "cross_entropy_backward", "log_softmax_backward",
    "check", "Report", "Finding",
    "Error", "ArgumentError", "ShapeError", "LayoutError", "DtypeError", "TargetDtypeError",
    "TargetNotWholeError", "TargetRangeError", "NonFiniteError", "DeviceError",
    "OutOfMemoryError", "ArgumentTypeError", "ArrayTypeError", "InplaceError",
    "ContextBusyError",
    "set_num_threads", "get_num_threads", "set_async", "sync", "library_version",
]


def __getattr__(name: str) -> Any:
    # nll.torch imports torch: only when asked for, so numpy users never pay for it.
    if name == "torch":
        import importlib
        return importlib.import_module(".torch", __name__)
    if name == "__version__":
        return library_version()
    raise AttributeError("module 'nll' has no attribute %r" % name)
