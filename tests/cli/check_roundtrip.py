"""Checks the round trips of run.sh: for line i of formats.tsv (`spec<TAB>expected.npy`), the
tool converted spec to conv/i.npy and conv/i.safetensors; both must equal the expected array
exactly: dtype, shape and every value (NaN where NaN). Prints problems; exit 1 if any.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py as st  # noqa: E402

problems = []
for i, line in enumerate(open("formats.tsv")):
    spec, expected_path = line.rstrip("\n").split("\t")
    expected = np.load(expected_path)
    got = {"npy": np.load("conv/%d.npy" % i)}
    entries = st.read("conv/%d.safetensors" % i)
    if len(entries) != 1:
        problems.append("%s: conv/%d.safetensors holds %d tensors" % (spec, i, len(entries)))
        continue
    got["safetensors"] = st.as_array(next(iter(entries.values())))
    for kind, a in got.items():
        if a.dtype != expected.dtype or a.shape != expected.shape or \
                not np.array_equal(a, expected, equal_nan=expected.dtype.kind == "f"):
            problems.append("%s -> %s: %s %s %s, expected %s %s %s" % (
                spec, kind, a.dtype, a.shape, a.ravel()[:6], expected.dtype, expected.shape,
                expected.ravel()[:6]))
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
