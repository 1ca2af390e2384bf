"""PyTorch integration: differentiable losses and drop-in nn modules.

    import nll.torch
    loss = nll.torch.cross_entropy(logits, labels)      # instead of F.cross_entropy
    loss.backward()
    criterion = nll.torch.CrossEntropyLoss(ignore_index=255)   # instead of nn.CrossEntropyLoss

cross_entropy runs libnll's fused forward+backward when the logits require grad: the
gradient is computed in the forward pass and handed to autograd as it is (scaled in place
when the upstream gradient is not 1), so backward does no second pass over the logits. A
second backward through the same graph (retain_graph=True) recomputes it from the saved
inputs. Gradients with respect to `weight` or a probability `target` are not implemented
(PyTorch has none for weight either): asking for them raises NotImplementedError.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch.autograd.function import once_differentiable

from . import functional as _f

__all__ = ["cross_entropy", "nll_loss", "log_softmax", "CrossEntropyLoss", "NLLLoss"]

Tensor = torch.Tensor


def _no_grad_for(name: str, tensor: Optional[Tensor], fn: str) -> None:
    if tensor is not None and isinstance(tensor, Tensor) and tensor.requires_grad:
        raise NotImplementedError(
            "nll.torch.%s: gradients with respect to %s are not implemented; pass %s.detach()"
            % (fn, name, name))


def _scale(grad: Tensor, grad_loss: Tensor, input_ndim: int) -> Tensor:
    """grad * grad_loss in place, broadcasting a per-sample grad_loss over the class axis:
    each sample's loss depends on its own row of logits only."""
    if grad_loss.dim() > 0 and input_ndim >= 2:
        grad_loss = grad_loss.unsqueeze(1)
    return grad.mul_(grad_loss)


class _CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, input: Tensor, target: Tensor, weight: Optional[Tensor],
                ignore_index: int, reduction: str, label_smoothing: float, check_finite: bool,
                allow_float_targets: bool) -> Tensor:
        kw = dict(ignore_index=ignore_index, reduction=reduction,
                  label_smoothing=label_smoothing, allow_float_targets=allow_float_targets)
        ctx.kw = kw
        ctx.grad = None
        if not ctx.needs_input_grad[0]:
            return _f.cross_entropy(input, target, weight, check_finite=check_finite, **kw)
        loss, grad = _f.cross_entropy_with_grad(input, target, weight,
                                                check_finite=check_finite, **kw)
        ctx.grad = grad
        ctx.save_for_backward(input, target, weight)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_loss: Tensor) -> tuple:
        grad = ctx.grad
        if grad is not None:
            # Hand the forward's gradient over (no copy); a later backward recomputes.
            ctx.grad = None
            if not (grad_loss.dim() == 0 and bool(grad_loss == 1)):
                grad = _scale(grad, grad_loss, grad.dim())
        else:
            input, target, weight = ctx.saved_tensors
            grad = _f.cross_entropy_backward(grad_loss, input, target, weight, **ctx.kw)
        return grad, None, None, None, None, None, None, None


class _NllLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, input: Tensor, target: Tensor, weight: Optional[Tensor],
                ignore_index: int, reduction: str, check_finite: bool,
                allow_float_targets: bool) -> Tensor:
        ctx.kw = dict(ignore_index=ignore_index, reduction=reduction,
                      allow_float_targets=allow_float_targets)
        ctx.save_for_backward(input, target, weight)
        return _f.nll_loss(input, target, weight, check_finite=check_finite, **ctx.kw)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_loss: Tensor) -> tuple:
        input, target, weight = ctx.saved_tensors
        grad = _f.nll_loss_backward(grad_loss, input, target, weight, **ctx.kw)
        return grad, None, None, None, None, None, None


class _LogSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, input: Tensor, dim: int) -> Tensor:
        out = _f.log_softmax(input, dim)
        ctx.dim = dim
        ctx.save_for_backward(out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: Tensor) -> tuple:
        (out,) = ctx.saved_tensors
        return _f.log_softmax_backward(grad_output, out, ctx.dim), None


def cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor] = None, *,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0, check_finite: bool = False,
                  allow_float_targets: bool = False) -> Tensor:
    """torch.nn.functional.cross_entropy through libnll, differentiable in `input`.

    Same arguments and results as nll.cross_entropy (options after weight are keyword-only);
    errors are nll.Error subclasses with the library's message. When `input` requires grad,
    the gradient is computed in the forward pass (fused) and kept for backward.
    """
    _no_grad_for("weight", weight, "cross_entropy")
    _no_grad_for("target", target, "cross_entropy")
    if not torch.is_grad_enabled() or not input.requires_grad:
        return _f.cross_entropy(input.detach(), target, weight, ignore_index=ignore_index,
                                reduction=reduction, label_smoothing=label_smoothing,
                                check_finite=check_finite,
                                allow_float_targets=allow_float_targets)
    label_smoothing = _f._float_option(label_smoothing, "label_smoothing", "cross_entropy",
                                       "NLL_ERROR_LABEL_SMOOTHING")
    return _CrossEntropy.apply(input, target, weight, ignore_index, reduction,
                               label_smoothing, check_finite, allow_float_targets)


def nll_loss(input: Tensor, target: Tensor, weight: Optional[Tensor] = None, *,
             ignore_index: int = -100, reduction: str = "mean", check_finite: bool = False,
             allow_float_targets: bool = False) -> Tensor:
    """torch.nn.functional.nll_loss through libnll, differentiable in `input`."""
    _no_grad_for("weight", weight, "nll_loss")
    if not torch.is_grad_enabled() or not input.requires_grad:
        return _f.nll_loss(input.detach(), target, weight, ignore_index=ignore_index,
                           reduction=reduction, check_finite=check_finite,
                           allow_float_targets=allow_float_targets)
    return _NllLoss.apply(input, target, weight, ignore_index, reduction, check_finite,
                          allow_float_targets)


def log_softmax(input: Tensor, dim: int = 1) -> Tensor:
    """torch.nn.functional.log_softmax through libnll, differentiable in `input`."""
    if not torch.is_grad_enabled() or not input.requires_grad:
        return _f.log_softmax(input.detach(), dim)
    return _LogSoftmax.apply(input, dim)


class CrossEntropyLoss(torch.nn.CrossEntropyLoss):
    """torch.nn.CrossEntropyLoss computed by libnll: same constructor, attributes, buffers
    and state_dict (it is a subclass), plus the keyword-only check_finite and
    allow_float_targets."""

    def __init__(self, weight: Optional[Tensor] = None, size_average: Any = None,
                 ignore_index: int = -100, reduce: Any = None, reduction: str = "mean",
                 label_smoothing: float = 0.0, *, check_finite: bool = False,
                 allow_float_targets: bool = False) -> None:
        super().__init__(weight, size_average, ignore_index, reduce, reduction,
                         label_smoothing)
        self.check_finite = check_finite
        self.allow_float_targets = allow_float_targets

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, label_smoothing=self.label_smoothing,
                             check_finite=self.check_finite,
                             allow_float_targets=self.allow_float_targets)


class NLLLoss(torch.nn.NLLLoss):
    """torch.nn.NLLLoss computed by libnll (a subclass: same constructor and state), plus
    the keyword-only check_finite and allow_float_targets."""

    def __init__(self, weight: Optional[Tensor] = None, size_average: Any = None,
                 ignore_index: int = -100, reduce: Any = None, reduction: str = "mean", *,
                 check_finite: bool = False, allow_float_targets: bool = False) -> None:
        super().__init__(weight, size_average, ignore_index, reduce, reduction)
        self.check_finite = check_finite
        self.allow_float_targets = allow_float_targets

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                        reduction=self.reduction, check_finite=self.check_finite,
                        allow_float_targets=self.allow_float_targets)
