"""The package as installed: the library inside it, docstrings, type hints, version."""

import inspect
import os
import pydoc
import re

import nll
from nll import _capi

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "..", "..", "include", "nll.h")


def test_library_is_found():
    path = _capi.library_path()
    if not os.environ.get("NLL_LIBRARY"):
        # pip install . puts libnll inside the package, next to __init__.py.
        assert os.path.dirname(path) == os.path.dirname(nll.__file__)
    assert os.path.exists(path)


def test_version_is_the_headers():
    want = re.search(r'#define NLL_VERSION_STRING "([^"]+)"', open(HEADER).read()).group(1)
    assert nll.__version__ == want == nll.library_version()


def test_docstrings_and_hints_show_in_help():
    text = pydoc.render_doc(nll, renderer=pydoc.plaintext)
    for name in ("cross_entropy", "nll_loss", "log_softmax", "check", "TargetRangeError"):
        assert name in text
    for fn in (nll.cross_entropy, nll.nll_loss, nll.log_softmax, nll.check,
               nll.cross_entropy_with_grad, nll.torch.cross_entropy, nll.torch.nll_loss):
        assert fn.__doc__ and len(fn.__doc__) > 40, fn
        sig = inspect.signature(fn)
        assert sig.return_annotation is not inspect.Signature.empty, fn
    sig = inspect.signature(nll.cross_entropy)
    assert list(sig.parameters)[:3] == ["input", "target", "weight"]
    assert sig.parameters["ignore_index"].default == -100
    assert sig.parameters["reduction"].default == "mean"
    assert sig.parameters["label_smoothing"].default == 0.0
    assert os.path.exists(os.path.join(os.path.dirname(nll.__file__), "py.typed"))


def test_status_table_matches_the_header():
    header = open(HEADER).read()
    declared = dict((name, int(num)) for name, num in
                    re.findall(r"\b(NLL_(?:OK|ERROR_[A-Z_]+)) = (\d+)", header))
    assert declared == _capi.STATUS
    lib = _capi.load()
    for name, number in _capi.STATUS.items():
        assert lib.nll_status_name(number).decode() == name


def test_async_mode_on_the_cpu_changes_nothing():
    # GPU calls wait for nll.sync() in asynchronous mode; CPU calls always finish, and their
    # errors are raised at once (tests/gpu/test_gpu.py covers the GPU side).
    import numpy as np
    nll.set_async(True)
    try:
        x = np.zeros((2, 3), dtype=np.float32)
        assert abs(float(nll.cross_entropy(x, np.array([0, 2]))) - np.log(3)) < 1e-6
        try:
            nll.cross_entropy(x, np.array([0, 3]))
            raise AssertionError("no error")
        except nll.TargetRangeError as e:
            assert "target[1] = 3" in str(e)
        assert nll.sync() is None
    finally:
        nll.set_async(False)
