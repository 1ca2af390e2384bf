"""Compares one reference case of the CLI tests; run in the fixture directory.

check.py NAME REDUCTION: run A wrote out.npy, grad.npy and stdout_a; run B (no --out, no
--grad) wrote stdout_b. Checks dtypes, shapes and values against ref/NAME.{loss,grad}.npy, and
that the printed numbers are exactly the written ones (so "%.9g" / "%.17g" round-trips).
Prints each problem and exits 1 if there is any.
"""
import sys

import numpy as np

name, reduction = sys.argv[1], sys.argv[2]
problems = []
TOL = {np.dtype(np.float16): (2e-3, 2e-3), np.dtype(np.float32): (2e-5, 2e-6),
       np.dtype(np.float64): (1e-10, 1e-12)}


def compare(what, actual, expected):
    if actual.dtype != expected.dtype:
        problems.append(f"{what}: dtype {actual.dtype}, expected {expected.dtype}")
    elif actual.shape != expected.shape:
        problems.append(f"{what}: shape {actual.shape}, expected {expected.shape}")
    else:
        rtol, atol = TOL[expected.dtype]
        a, e = actual.astype(np.float64), expected.astype(np.float64)
        if not np.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True):
            problems.append(f"{what}: {a.ravel().tolist()}, expected {e.ravel().tolist()}")


def printed(path):
    """The numbers of the single 'loss: ...' line, or None."""
    lines = open(path).read().splitlines()
    if len(lines) != 1 or not lines[0].startswith("loss: "):
        return None
    text = lines[0][len("loss: "):]
    if text.startswith("["):
        if not text.endswith("]"):
            return None
        body = text[1:-1]
        return [float(v) for v in body.split(", ")] if body else []
    return [float(text)]


ref_loss = np.load(f"ref/{name}.loss.npy")
ref_grad = np.load(f"ref/{name}.grad.npy")
out = np.load("out.npy")
compare("loss (--out)", out, ref_loss)
compare("grad (--grad)", np.load("grad.npy"), ref_grad)

flat = out.ravel()
for run, path in (("run with --out", "stdout_a"), ("run without --out/--grad", "stdout_b")):
    text = open(path).read()
    if reduction == "none" and run == "run with --out":
        if text:
            problems.append(f"{run}: stdout should be empty for reduction none, got {text!r}")
        continue
    values = printed(path)
    if values is None:
        problems.append(f"{run}: stdout is not one 'loss: ...' line: {text!r}")
        continue
    got = np.array(values, np.float64).astype(out.dtype)
    if got.shape != flat.shape or not np.array_equal(got, flat, equal_nan=True):
        problems.append(f"{run}: printed {text.strip()!r}, but --out holds {flat.tolist()}")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
