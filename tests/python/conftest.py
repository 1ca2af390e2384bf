"""Shared helpers for the Python package's tests (run against torch.nn.functional)."""

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

# Tolerances against PyTorch in the same dtype (float64 is held to near-exactness).
TOL = {
    torch.float64: dict(rtol=1e-10, atol=1e-12),
    torch.float32: dict(rtol=1e-5, atol=1e-6),
    # libnll computes 16-bit inputs in float32 and rounds once; the reference is float64 on
    # the same 16-bit values, rounded: half an ulp plus a little.
    torch.float16: dict(rtol=2.0 ** -10, atol=2.0 ** -12),
    torch.bfloat16: dict(rtol=2.0 ** -7, atol=2.0 ** -9),
}


def assert_close(got, want, dtype=None):
    """got: torch tensor or numpy array; want: torch tensor (any dtype)."""
    if isinstance(got, np.ndarray) or np.isscalar(got):
        got = torch.from_numpy(np.array(got))  # a copy: np.from_dlpack views are read-only
    dtype = dtype or got.dtype
    tol = TOL[dtype]
    torch.testing.assert_close(got.to(torch.float64), want.to(torch.float64), equal_nan=True,
                               **tol)


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)
