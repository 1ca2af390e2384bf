"""Threads and fork (issue 18, items 1 and 2): the package keeps one library context per
Python thread, so concurrent calls from Python threads are right and never busy; a context
shared by hand is refused (ContextBusyError) rather than computed wrong; a child of fork()
after a multithreaded call works, alone and as a DataLoader worker, and the parent too.

A hang would stall CI rather than fail it, so every child is waited for with a limit: a
child still running after it is killed and the test fails."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import torch

import nll
import nll.functional as nf
from nll import _capi

# Big enough for the library's workers: one thread per 32,768 elements of work.
ROWS, CLASSES = 256, 1024
HANG_LIMIT_S = 60


def big_inputs(seed=7):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((ROWS, CLASSES)).astype(np.float32)
    t = rng.integers(0, CLASSES, ROWS)
    return x, t


@pytest.fixture
def two_threads():
    nll.set_num_threads(2)
    try:
        yield
    finally:
        nll.set_num_threads(1)


# --- item 2: contexts and Python threads ---------------------------------------------------

def test_context_busy_status_has_its_class():
    assert _capi.STATUS["NLL_ERROR_CONTEXT_BUSY"] == 103
    cls = nll.errors.error_class(103)
    assert cls is nll.ContextBusyError
    assert issubclass(cls, nll.Error) and issubclass(cls, RuntimeError)


class _BusyLibrary:
    """The real library, except that the forward op answers NLL_ERROR_CONTEXT_BUSY."""

    def __init__(self, lib):
        self._lib = lib

    def __getattr__(self, name):
        if name == "nll_cross_entropy_forward":
            return lambda *args: 103
        return getattr(self._lib, name)


def test_busy_status_raises_with_its_own_message():
    x = np.zeros((2, 3))
    with pytest.raises(nll.TargetRangeError):
        nll.cross_entropy(x, np.array([0, 7]))  # leaves a message in the error record
    ctx = nf._context()
    lib = ctx.lib
    ctx.lib = _BusyLibrary(lib)
    try:
        with pytest.raises(nll.ContextBusyError) as info:
            nll.cross_entropy(x, np.array([0, 1]))
    finally:
        ctx.lib = lib
    e = info.value
    assert e.status == 103 and e.name == "NLL_ERROR_CONTEXT_BUSY"
    assert e.function == "nll_cross_entropy_forward"
    # not the record of the call in progress (here: the earlier error)
    assert str(e) == ("nll_cross_entropy_forward: the context is in a call on another "
                      "thread: use one context per thread")


SHARED_CONTEXT = textwrap.dedent("""
    import ctypes, sys, threading
    import numpy as np
    from nll import _capi
    from nll._dlpack import borrow

    lib = _capi.load()
    ctx = _capi.Context(lib, threads=2)   # one context, used by two threads at once
    opts = lib.nll_options_default()
    counts = {"right": 0, "wrong": 0, "busy": 0, "other": 0}
    lock = threading.Lock()

    # Two shapes of 65,536 elements: work for two of the context's workers.
    for rows, classes in ((64, 1024), (256, 256)):
        rng = np.random.default_rng(3)
        x = rng.standard_normal((rows, classes)).astype(np.float32)
        t = rng.integers(0, classes, rows)
        xb, tb = borrow(x, "input"), borrow(t, "target")

        def call():
            loss = np.full((), -1.0, np.float32)
            status = lib.nll_cross_entropy_forward(ctx.handle, xb.ref, tb.ref,
                                                   ctypes.byref(opts), borrow(loss, "loss").ref)
            return status, loss.item()

        status, want = call()
        assert status == 0
        start = threading.Barrier(2)

        def worker():
            start.wait()
            for _ in range(1500):
                status, loss = call()
                kind = ("right" if loss == want else "wrong") if status == 0 else (
                    "busy" if status == 103 else "other")
                with lock:
                    counts[kind] += 1

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    print(counts)
    sys.exit(0 if counts["wrong"] == 0 and counts["other"] == 0 else 1)
""")


def test_one_context_shared_by_two_threads_is_refused_not_wrong():
    # In a child process: the old library could also crash.
    run = subprocess.run([sys.executable, "-c", SHARED_CONTEXT], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, (run.returncode, run.stdout, run.stderr)


def test_package_from_several_python_threads_at_once(two_threads):
    x, t = big_inputs()
    # The same bits for any thread count: computed here first, then compared exactly.
    want_loss = nll.cross_entropy(x, t, reduction="none")
    want_fused = nll.cross_entropy_with_grad(x, t)
    want_log = nll.log_softmax(x, 1)
    failures = []
    start = threading.Barrier(4)

    def worker():
        try:
            start.wait()
            for _ in range(25):
                ok = (np.array_equal(nll.cross_entropy(x, t, reduction="none"), want_loss)
                      and np.array_equal(nll.log_softmax(x, 1), want_log))
                loss, grad = nll.cross_entropy_with_grad(x, t)
                ok = ok and loss == want_fused[0] and np.array_equal(grad, want_fused[1])
                if not ok:
                    failures.append("wrong values")
        except Exception as exc:  # ContextBusyError included
            failures.append(repr(exc))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert failures == []


# --- item 1: fork ------------------------------------------------------------------------

def _wait_or_kill(pid):
    """The child's exit code, or None when it was still running after HANG_LIMIT_S (killed)."""
    deadline = time.monotonic() + HANG_LIMIT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.05)


def _child_checks(x, t, want):
    """In the child: the inherited context (this thread's), then a new one (a new thread's)."""
    if not np.array_equal(nll.cross_entropy(x, t, reduction="none"), want):
        return 2
    results = []
    th = threading.Thread(
        target=lambda: results.append(nll.cross_entropy(x, t, reduction="none")))
    th.start()
    th.join()
    return 0 if len(results) == 1 and np.array_equal(results[0], want) else 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_fork_after_a_multithreaded_call(two_threads):
    x, t = big_inputs()
    want = nll.cross_entropy(x, t, reduction="none")  # starts the context's workers
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = _child_checks(x, t, want)
        finally:
            os._exit(code)
    code = _wait_or_kill(pid)
    assert code is not None, "the forked child hung (killed after %d s)" % HANG_LIMIT_S
    assert code == 0, "the forked child got wrong values (exit %d)" % code
    assert np.array_equal(nll.cross_entropy(x, t, reduction="none"), want)  # parent unaffected


class _LossDataset(torch.utils.data.Dataset):
    """Each item: a loss computed by the package in the DataLoader's worker."""

    def __init__(self, x, t):
        self.x, self.t = x, t

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return float(nll.cross_entropy(np.roll(self.x, i, axis=0), self.t))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_dataloader_fork_workers_after_a_multithreaded_call(two_threads):
    x, t = big_inputs()
    dataset = _LossDataset(x, t)
    want = [dataset[i] for i in range(len(dataset))]  # multithreaded calls in the parent
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2,
                                         multiprocessing_context="fork",
                                         timeout=HANG_LIMIT_S)
    got = [float(v) for v in loader]  # a hung worker: RuntimeError "DataLoader timed out"
    assert got == want
    assert [dataset[i] for i in range(len(dataset))] == want  # parent unaffected
