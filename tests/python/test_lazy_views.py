"""torch tensors whose values live partly in flags: a pending negation (is_neg(), as in
x.conj().imag) or conjugation. The package reads their resolved values, never the raw memory
(issue 18, item 6)."""

import torch
import torch.nn.functional as F

import nll
import nll.torch as nt
from conftest import assert_close


def negated_view(values):
    """A tensor equal to `values` whose memory holds -values (is_neg() is True)."""
    view = torch.complex(0 * values, -values).conj().imag
    assert view.is_neg()
    torch.testing.assert_close(view, values, rtol=0, atol=0, equal_nan=True)
    return view


def test_input_with_pending_negation():
    x = torch.randn(6, 5, dtype=torch.float64)
    t = torch.tensor([0, 4, 1, 2, 3, 0])
    xv = negated_view(x)
    assert_close(nll.log_softmax(xv, 1), F.log_softmax(x, 1))
    assert_close(nll.cross_entropy(xv, t, reduction="none"),
                 F.cross_entropy(x, t, reduction="none"))
    logp = F.log_softmax(x, 1)
    assert_close(nll.nll_loss(negated_view(logp), t), F.nll_loss(logp, t))
    ref = x.clone().requires_grad_()
    F.cross_entropy(ref, t).backward()
    loss, grad = nll.cross_entropy_with_grad(xv, t)
    assert_close(loss, F.cross_entropy(x, t))
    assert_close(grad, ref.grad)
    assert_close(nll.cross_entropy_backward(None, xv, t), ref.grad)


def test_weight_and_probability_target_with_pending_negation():
    x = torch.randn(4, 3, dtype=torch.float64)
    w = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    t = torch.tensor([0, 1, 2, 1])
    assert_close(nll.cross_entropy(x, t, negated_view(w)), F.cross_entropy(x, t, w))
    q = torch.softmax(torch.randn(4, 3, dtype=torch.float64), 1)
    # the raw memory holds -q: negative probabilities, a different loss
    assert_close(nll.cross_entropy(x, negated_view(q)), F.cross_entropy(x, q))


def test_upstream_gradient_with_pending_negation():
    x = torch.randn(4, 3, dtype=torch.float64)
    t = torch.tensor([0, 1, 2, 1])
    g = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    ref = x.clone().requires_grad_()
    F.cross_entropy(ref, t, reduction="none").backward(g)
    got = nll.cross_entropy_backward(negated_view(g), x, t, reduction="none")
    assert_close(got, ref.grad)


def test_autograd_through_a_negated_view():
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([3, 0, 1, 2, 2])
    view = torch.complex(0 * x, -x).conj().imag  # equals x, requires grad
    nt.cross_entropy(view, t).backward()
    ref = x.detach().clone().requires_grad_()
    F.cross_entropy(ref, t).backward()
    assert_close(x.grad, ref.grad)


def test_check_reads_resolved_values():
    x = torch.zeros(3, 4)
    x[1, 2] = float("-inf")  # a masked logit; the raw memory holds +inf
    report = nll.check(torch.tensor([0, 1, 2]), input=negated_view(x))
    assert report.nonfinite == (0, 0, 1), str(report)  # (NaN, +inf, -inf)
