"""nll.check: findings for the usual label mistakes, consistent with the library's errors."""

import numpy as np
import pytest
import torch

import nll


def test_clean_target():
    r = nll.check(np.array([0, 1, 2, 1, 0, 2]), num_classes=3)
    assert r.ok and r.findings == [] and r.histogram.tolist() == [2, 2, 2]
    assert "nll check: ok" in str(r)


def test_one_based_labels_with_the_librarys_message():
    x = np.zeros((4, 5))
    t = np.array([1, 2, 3, 5])
    r = nll.check(t, input=x)
    assert not r.ok and r.num_classes == 5
    assert r.codes()[:2] == ["target-range", "one-based"]
    assert r["one-based"].fix == "subtract 1"
    with pytest.raises(nll.TargetRangeError) as info:
        nll.nll_loss(x, t)
    # The finding states what the library's error states.
    assert r["target-range"].message in str(info.value)
    assert "never-seen" in r  # class 0 and 4


def test_one_based_without_c():
    r = nll.check(np.array([1, 2, 3, 3]))
    assert r.ok and r["one-based"].severity == "warning"


def test_padding_and_void():
    t = np.array([[0, 1, -1, -1], [2, 255, 255, 1]])
    r = nll.check(t, num_classes=3)
    assert {"target-range", "padding-minus-one", "void-255"} <= set(r.codes())
    assert r["padding-minus-one"].fix == "pass ignore_index=-1"
    assert "target[2] (index [0, 2]) = -1" in r["target-range"].message
    r = nll.check(np.where(t == -1, 255, t), num_classes=3, ignore_index=255)
    assert r.ok and r.num_ignored == 4
    r = nll.check(np.array([-1, 0, 1]), num_classes=2, ignore_index=-1)
    assert r.ok and r.num_ignored == 1 and "ignored" in r


def test_too_few_classes_gaps_single_class_imbalance():
    r = nll.check(np.array([0, 1, 9]), num_classes=5)
    assert "too-few-classes" in r and "the largest target is 9" in r["too-few-classes"].message
    r = nll.check(np.array([0, 1, 5, 6, 6]))
    assert r.ok and "class-gaps" in r and "2, 3, 4" in r["class-gaps"].message
    r = nll.check(np.full(10, 3), num_classes=4)
    assert "single-class" in r and r.ok
    r = nll.check(np.array([0] * 300 + [1] * 2), num_classes=2)
    assert "imbalance" in r and "ratio of 150" in r["imbalance"].message


def test_all_ignored_and_empty():
    r = nll.check(np.full(4, -100), num_classes=3)
    assert "all-ignored" in r and r.num_ignored == 4 and r.ok
    assert "empty" in nll.check(np.zeros(0, np.int64), num_classes=3)


def test_float_targets():
    r = nll.check(np.array([0.0, 1.0, 2.0]), num_classes=3)
    assert r["float-target"].severity == "error"
    assert "all 3 values are whole numbers (min 0, max 2)" in r["float-target"].message
    assert "allow_float_targets=True" in r["float-target"].fix
    r = nll.check(np.array([0.0, 0.5]), input=np.zeros((2, 3)))
    assert "target-not-whole" in r and "target[1] = 0.5" in r["target-not-whole"].message
    assert "exact shape (2, 3)" in r["target-not-whole"].fix
    r = nll.check(np.zeros(3, bool))
    assert r.codes() == ["target-dtype"]


def test_probability_targets():
    x = np.zeros((2, 3), np.float32)
    q = np.array([[0.2, 0.3, 0.5], [0.5, 0.5, 0.5]], np.float32)
    r = nll.check(q, input=x)
    assert "probabilities" in r and "probability-sum" in r and r.ok


def test_input_shape_and_nonfinite():
    x = np.zeros((2, 3, 4), np.float32)
    r = nll.check(np.zeros(2, np.int64), input=x)
    assert "target-shape" in r
    assert "expected target shape (2, 4)" in r["target-shape"].message
    x[1, 2, 3] = np.nan
    x[0, 0, 0] = np.inf
    x[0, :, 1] = -np.inf
    r = nll.check(np.zeros((2, 4), np.int64), input=x)
    assert r.nonfinite == (1, 1, 3)
    assert r["nonfinite"].message.startswith("input[0] (index [0, 0, 0]) = inf is not finite")
    assert "all-masked" in r and "negative-inf" in r
    r = nll.check(np.array([0, 1]), input=np.zeros((2, 3)), num_classes=4)
    assert "num-classes" in r


def test_torch_tensors_and_weight():
    r = nll.check(torch.tensor([0, 1, 3]), input=torch.zeros(3, 4, dtype=torch.bfloat16),
                  weight=torch.ones(5, dtype=torch.bfloat16))
    assert "weight-shape" in r and r.histogram.tolist() == [1, 1, 0, 1]
    s = str(r)
    assert s.splitlines()[0].startswith("nll check: problems found (1 error")
