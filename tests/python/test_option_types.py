"""Options of the wrong Python type raise TypeError, as torch.nn.functional does, instead of
being converted into something never meant; and a loss that torch would differentiate is
never silently returned without a gradient (issue 18, item 8)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nll
import nll.torch as nt

X = np.zeros((3, 4))
T = np.array([0, 1, 3])

WRONG_OPTIONS = [
    (dict(label_smoothing="0.1"), "NLL_ERROR_LABEL_SMOOTHING",
     "label_smoothing must be a float, not str"),
    (dict(label_smoothing=b"0.1"), "NLL_ERROR_LABEL_SMOOTHING", "not bytes"),
    (dict(label_smoothing=0.1j), "NLL_ERROR_LABEL_SMOOTHING", "not complex"),
    (dict(ignore_index=1.0), "NLL_ERROR_IGNORE_INDEX", "ignore_index must be an int, not float"),
    (dict(ignore_index=True), "NLL_ERROR_IGNORE_INDEX", "not bool"),
    (dict(ignore_index=np.True_), "NLL_ERROR_IGNORE_INDEX", "not bool"),
    (dict(ignore_index="1"), "NLL_ERROR_IGNORE_INDEX", "not str"),
    (dict(reduction=3), "NLL_ERROR_INVALID_REDUCTION",
     "reduction must be 'none', 'mean' or 'sum', not int"),
    (dict(reduction=None), "NLL_ERROR_INVALID_REDUCTION", "not NoneType"),
    (dict(check_finite="no"), "NLL_ERROR_INVALID_FLAGS", "check_finite must be a bool, not str"),
    (dict(allow_float_targets=1), "NLL_ERROR_INVALID_FLAGS", "allow_float_targets must be a bool"),
]


def _type_error(fn, *args, **kw):
    with pytest.raises(TypeError) as info:
        fn(*args, **kw)
    e = info.value
    assert isinstance(e, nll.ArgumentTypeError) and isinstance(e, nll.ArgumentError)
    return e


@pytest.mark.parametrize("kw,status,fragment", WRONG_OPTIONS)
def test_wrong_option_types_raise_type_error(kw, status, fragment):
    calls = [nll.cross_entropy, nll.cross_entropy_with_grad]
    if "check_finite" not in kw:  # the backward functions have no check_finite
        calls += [lambda x, t, **k: nll.cross_entropy_backward(None, x, t, **k)]
    if "label_smoothing" not in kw and "check_finite" not in kw:
        calls += [lambda x, t, **k: nll.nll_loss_backward(None, x, t, **k)]
    if "label_smoothing" not in kw:
        calls += [nll.nll_loss]
    for call in calls:
        e = _type_error(call, X, T, **kw)
        assert e.name == status and fragment in str(e), str(e)
    # torch inputs and the modules: the same
    x, t = torch.zeros(3, 4, requires_grad=True), torch.from_numpy(T)
    _type_error(nt.cross_entropy, x, t, **kw)
    if "label_smoothing" not in kw:
        _type_error(nt.nll_loss, x, t, **kw)
    if "check_finite" not in kw and "allow_float_targets" not in kw:
        _type_error(nt.CrossEntropyLoss(**kw), x, t)


def test_what_torch_accepts_is_accepted():
    want = float(nll.cross_entropy(X, T, ignore_index=1, label_smoothing=0.5))
    for ignore_index in (np.int64(1), np.uint8(1), torch.tensor(1)):
        for label_smoothing in (0.5, np.float32(0.5), torch.tensor(0.5)):
            got = nll.cross_entropy(X, T, ignore_index=ignore_index,
                                    label_smoothing=label_smoothing)
            assert float(got) == want
    assert float(nll.cross_entropy(X, T, label_smoothing=1)) == float(
        nll.cross_entropy(X, T, label_smoothing=1.0))
    nll.cross_entropy(X, T, check_finite=np.bool_(True))
    # a known type with a bad value is still the ValueError it was
    with pytest.raises(nll.ArgumentError) as info:
        nll.cross_entropy(X, T, reduction="avg")
    assert not isinstance(info.value, TypeError)


def test_other_arguments_of_the_wrong_type():
    e = _type_error(nll.log_softmax, X, 1.0)
    assert e.name == "NLL_ERROR_INVALID_DIM"
    _type_error(nll.log_softmax_backward, X, X, "1")
    e = _type_error(nll.set_num_threads, "2")
    assert e.name == "NLL_ERROR_INVALID_THREADS"
    assert nll.get_num_threads() == 1
    _type_error(nll.cross_entropy_with_grad, X.copy(), T, inplace="False")
    for name, args in (("weight", (X, T, "1,1,1,1")), ("target", (X, None)),
                       ("input", ("logits", T)), ("target", (X, {"a": 1}))):
        with pytest.raises(TypeError) as info:
            nll.cross_entropy(*args)
        e = info.value
        assert isinstance(e, nll.ArrayTypeError) and isinstance(e, nll.DtypeError)
        assert e.tensor == name and "%s is a " % name in str(e) and "not an array" in str(e)
    # lists are arrays to numpy, and stay accepted
    assert float(nll.cross_entropy(X, T, [1.0, 1.0, 1.0, 1.0])) == float(nll.cross_entropy(X, T))


def test_probability_target_that_requires_grad_is_not_silently_dropped():
    x = torch.randn(3, 4)
    q = torch.softmax(torch.randn(3, 4), 1).requires_grad_()
    with pytest.raises(NotImplementedError, match="gradients with respect to target"):
        nll.cross_entropy(x, q)
    with pytest.raises(NotImplementedError, match="gradients with respect to target"):
        nt.cross_entropy(x, q)  # what nll.torch does
    with torch.no_grad():  # no gradient expected: fine
        torch.testing.assert_close(nll.cross_entropy(x, q), F.cross_entropy(x, q.detach()))
    assert nll.cross_entropy(x, q.detach()).grad_fn is None
    w = torch.ones(4, requires_grad=True)
    t = torch.tensor([0, 1, 3])
    for fn in (nll.cross_entropy, nll.nll_loss):
        with pytest.raises(NotImplementedError, match="gradients with respect to weight"):
            fn(x, t, w)


def test_check_options_of_the_wrong_type():
    labels = np.array([0, 1, 2])
    for kw in (dict(ignore_index=1.5), dict(ignore_index="255"), dict(num_classes=3.0),
               dict(imbalance_ratio="10")):
        _type_error(nll.check, labels, **kw)
    assert nll.check(labels, num_classes=np.int64(3), ignore_index=np.int32(-100)).ok
