"""nll.torch: gradients against torch.nn.functional, gradcheck in float64, the nn modules as
drop-in replacements."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nll
import nll.torch as nt
from conftest import assert_close


def case(seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    shape = [(5,), (4, 5), (3, 4, 2), (2, 3, 2, 2)][seed % 4]
    C = shape[0] if len(shape) == 1 else shape[1]
    x = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    tshape = () if len(shape) == 1 else shape[:1] + shape[2:]
    t = torch.randint(0, C, tshape, generator=g)
    if t.dim() and seed % 3 == 0:
        t.view(-1)[0] = -100
    w = torch.rand(C, generator=g, dtype=torch.float64).to(dtype) + 0.5 if seed % 2 else None
    return x, t, w


@pytest.mark.parametrize("seed", range(16))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_cross_entropy_grad(seed, reduction):
    x, t, w = case(seed)
    ls = [0.0, 0.3][seed % 2]
    a = x.clone().requires_grad_()
    b = x.clone().requires_grad_()
    got = nt.cross_entropy(a, t, w, reduction=reduction, label_smoothing=ls)
    want = F.cross_entropy(b, t, w, reduction=reduction, label_smoothing=ls)
    assert_close(got, want)
    up = torch.randn(want.shape, dtype=want.dtype)  # an upstream gradient other than 1
    got.backward(up)
    want.backward(up)
    assert_close(a.grad, b.grad)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_nll_loss_and_log_softmax_grad(seed, reduction):
    x, t, w = case(seed)
    a = x.clone().requires_grad_()
    b = x.clone().requires_grad_()
    dim = 0 if x.dim() == 1 else 1
    got = nt.nll_loss(nt.log_softmax(a, dim), t, w, reduction=reduction)
    want = F.nll_loss(F.log_softmax(b, dim), t, w, reduction=reduction)
    assert_close(got, want)
    up = torch.randn(want.shape, dtype=want.dtype)
    got.backward(up)
    want.backward(up)
    assert_close(a.grad, b.grad)


def test_float32_and_a_linear_layer():
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 5)
    ref = torch.nn.Linear(8, 5)
    ref.load_state_dict(layer.state_dict())
    h = torch.randn(16, 8)
    t = torch.randint(0, 5, (16,))
    nt.cross_entropy(layer(h), t).backward()
    F.cross_entropy(ref(h), t).backward()
    assert_close(layer.weight.grad, ref.weight.grad)
    assert_close(layer.bias.grad, ref.bias.grad)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_gradcheck_float64(reduction):
    x, t, w = case(5)
    x = x.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x: nt.cross_entropy(x, t, w, reduction=reduction, label_smoothing=0.1), (x,))
    assert torch.autograd.gradcheck(
        lambda x: nt.nll_loss(x, t, w, reduction=reduction), (x,))
    assert torch.autograd.gradcheck(lambda x: nt.log_softmax(x, -1), (x,))
    q = F.softmax(torch.randn(x.shape, dtype=torch.float64), dim=1)
    assert torch.autograd.gradcheck(
        lambda x: nt.cross_entropy(x, q, reduction=reduction), (x,))


def test_retain_graph_second_backward_recomputes():
    x, t, w = case(1)
    a = x.clone().requires_grad_()
    loss = nt.cross_entropy(a, t, w)
    loss.backward(retain_graph=True)
    first = a.grad.clone()
    loss.backward()
    assert_close(a.grad, 2 * first)


def test_plain_functions_are_differentiable_for_torch():
    # nll.cross_entropy on a tensor that requires grad is a drop-in for F.cross_entropy.
    x, t, w = case(2)
    a = x.clone().requires_grad_()
    b = x.clone().requires_grad_()
    nll.cross_entropy(a, t, w).backward()
    F.cross_entropy(b, t, w).backward()
    assert_close(a.grad, b.grad)
    with torch.no_grad():
        assert not nll.cross_entropy(a, t).requires_grad


@pytest.mark.filterwarnings("ignore:size_average and reduce args")
def test_modules_are_drop_in():
    w = torch.tensor([1.0, 2.0, 0.5])
    ours = nt.CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.1)
    theirs = torch.nn.CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.1)
    assert isinstance(ours, torch.nn.CrossEntropyLoss)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    x = torch.randn(4, 3, requires_grad=True)
    t = torch.tensor([0, 1, 2, 2])
    assert_close(ours(x, t), theirs(x, t))
    nl = nt.NLLLoss(reduction="sum")
    lp = F.log_softmax(x, 1)
    assert_close(nl(lp, t), torch.nn.NLLLoss(reduction="sum")(lp, t))
    # The legacy arguments keep their meaning: size_average=False is reduction 'sum'.
    assert nt.NLLLoss(size_average=False).reduction == "sum"


def test_module_messages():
    with pytest.raises(nll.TargetRangeError, match="look 1-based"):
        nt.CrossEntropyLoss()(torch.randn(3, 4, requires_grad=True), torch.tensor([1, 4, 2]))
    crit = nt.CrossEntropyLoss(check_finite=True)
    with pytest.raises(nll.NonFiniteError):
        crit(torch.tensor([[0.0, float("nan")]]), torch.tensor([0]))


def test_no_gradient_for_weight_or_probability_target():
    x = torch.randn(2, 3, requires_grad=True)
    with pytest.raises(NotImplementedError, match="weight"):
        nt.cross_entropy(x, torch.tensor([0, 1]), torch.ones(3, requires_grad=True))
    with pytest.raises(NotImplementedError, match="target"):
        nt.cross_entropy(x, torch.rand(2, 3, requires_grad=True))


def test_16_bit_training_step():
    for dtype in (torch.float16, torch.bfloat16):
        x = torch.randn(5, 7).to(dtype).requires_grad_()
        t = torch.randint(0, 7, (5,))
        loss = nt.cross_entropy(x, t)
        loss.backward()
        assert loss.dtype == dtype and x.grad.dtype == dtype
        ref = x.detach().double().requires_grad_()
        F.cross_entropy(ref, t).backward()
        assert_close(x.grad, ref.grad.to(dtype), dtype)


def test_numpy_gradient_matches_torch():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6))
    t = rng.integers(0, 6, 4)
    _, grad = nll.cross_entropy_with_grad(x, t, label_smoothing=0.2)
    xt = torch.from_numpy(x).requires_grad_()
    F.cross_entropy(xt, torch.from_numpy(t), label_smoothing=0.2).backward()
    assert_close(grad, xt.grad)
