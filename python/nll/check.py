"""nll.check: look at a target (and optionally the input and weight) before training on it.

The checks are those of the `nll check` command, done here in numpy on the caller's arrays
(the library has no API for them): the target's dtype and shape, whole-number floats, the
class range with the usual causes of a bad one (1-based labels, -1 padding, 255 void pixels,
too few classes), ignored targets, the class histogram (classes never seen, gaps, one class
only, imbalance), and with the input its shape and NaN/+inf/-inf counts. Messages follow the
library's wording, so a finding reads like the error the loss would raise.

    report = nll.check(labels, input=logits)
    if not report.ok:
        print(report)           # one line per finding, with the fix
    report.histogram            # counts per class

Device arrays are read on the host (torch tensors are copied with .cpu(); other producers
through numpy): checking is a diagnostic, not a hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

import numpy as np

from ._dlpack import is_torch

__all__ = ["check", "Report", "Finding"]

ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass(frozen=True)
class Finding:
    """One finding. code: a stable identifier ("target-range", "one-based", ...); severity:
    "error" (the loss would reject the call or compute garbage), "warning" (accepted, but
    likely a mistake) or "info"; message: what was seen; fix: what to do ("" if nothing)."""

    code: str
    severity: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = "%-7s %s: %s" % (self.severity, self.code, self.message)
        return text + ("\n        fix: " + self.fix if self.fix else "")


@dataclass
class Report:
    """What nll.check found. ok: no error-severity finding.

    Facts: target_shape, target_dtype, num_targets, num_ignored, num_classes (C, or None
    when neither num_classes nor input gave it and the target is unusable), histogram
    (counts of each class in [0, C) among the counted targets, or None), min and max of the
    counted targets (None when there are none), nonfinite (NaN, +inf, -inf counts in the
    input, or None without input)."""

    findings: List[Finding] = field(default_factory=list)
    target_shape: Tuple[int, ...] = ()
    target_dtype: str = ""
    num_targets: int = 0
    num_ignored: int = 0
    num_classes: Optional[int] = None
    histogram: Optional[np.ndarray] = None
    min: Optional[int] = None
    max: Optional[int] = None
    nonfinite: Optional[Tuple[int, int, int]] = None

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> List[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> List[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    def codes(self) -> List[str]:
        """The codes of all findings, in order."""
        return [f.code for f in self.findings]

    def __getitem__(self, code: str) -> Finding:
        """The finding with this code (KeyError if none)."""
        for f in self.findings:
            if f.code == code:
                return f
        raise KeyError(code)

    def __contains__(self, code: object) -> bool:
        return any(f.code == code for f in self.findings)

    def __str__(self) -> str:
        n_err, n_warn = len(self.errors), len(self.warnings)
        head = "nll check: %s (%d error%s, %d warning%s)" % (
            "ok" if self.ok else "problems found", n_err, "" if n_err == 1 else "s",
            n_warn, "" if n_warn == 1 else "s")
        facts = "target %s %s: %d targets, %d ignored" % (
            self.target_dtype, _shape(self.target_shape), self.num_targets, self.num_ignored)
        if self.num_classes is not None:
            facts += ", C = %d" % self.num_classes
        if self.min is not None:
            facts += ", min %d, max %d" % (self.min, self.max)
        return "\n".join([head, facts] + [str(f) for f in self.findings])

    def _add(self, code: str, severity: str, message: str, fix: str = "") -> None:
        self.findings.append(Finding(code, severity, message, fix))


def _shape(shape: Tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(n)) for n in shape) + ")"


def _position(name: str, flat: int, shape: Tuple[int, ...]) -> str:
    """`target[5] (index [1, 2])` as in the library's messages."""
    text = "%s[%d]" % (name, flat)
    if len(shape) >= 2:
        idx = np.unravel_index(flat, shape)
        text += " (index [%s])" % ", ".join(str(int(i)) for i in idx)
    return text


def _to_numpy(array: Any) -> np.ndarray:
    if isinstance(array, np.ndarray):
        return array
    if is_torch(array):
        t = array.detach().cpu().resolve_conj().resolve_neg()  # .numpy() refuses pending ones
        import torch
        if t.dtype == torch.bfloat16:
            t = t.to(torch.float32)  # exact: every bfloat16 is a float32
        return t.numpy()
    return np.asarray(array)


def _fmt(value: float) -> str:
    return "%g" % value


def check(target: Any, num_classes: Optional[int] = None, input: Any = None, *,
          ignore_index: int = -100, weight: Any = None,
          imbalance_ratio: float = 100.0) -> Report:
    """Checks a target for the mistakes that make nll_loss/cross_entropy fail or mislead.

    target: class indices (or, with an input of the same shape, class probabilities).
    num_classes: C; taken from the input's class axis (dim 1, or dim 0 for a 1-D input)
        when input is given. Without either, C is not known: range findings are limited to
        what is wrong for any C (negative values), and the histogram spans 0..max.
    input: the logits or log-probabilities: shape agreement, dtype, NaN/+inf/-inf.
    ignore_index: the value the loss will skip (-100 by default, as in PyTorch).
    weight: the class weights: length C and the input's dtype.
    imbalance_ratio: warn when the most frequent class is this many times the rarest seen.

    Returns a Report (report.ok, report.findings, str(report)). Never raises for bad data:
    everything wrong is a finding. An option of the wrong type (ignore_index=1.5) raises
    nll.ArgumentTypeError, a TypeError.
    """
    from .functional import _float_option, _int_option
    ignore_index = _int_option(ignore_index, "ignore_index", "check")
    if num_classes is not None:
        num_classes = _int_option(num_classes, "num_classes", "check",
                                  "NLL_ERROR_INVALID_FLAGS")
    imbalance_ratio = _float_option(imbalance_ratio, "imbalance_ratio", "check",
                                    "NLL_ERROR_INVALID_FLAGS")
    r = Report()
    t = _to_numpy(target)
    r.target_shape = tuple(int(n) for n in t.shape)
    r.target_dtype = str(t.dtype)
    r.num_targets = int(t.size)
    x = _to_numpy(input) if input is not None else None

    # C and the class axis, from the input if there is one.
    C = int(num_classes) if num_classes is not None else None
    probability = False
    if x is not None:
        if x.ndim == 0:
            r._add("input-rank", ERROR,
                   "input is 0-d; expected (C), (N, C) or (N, C, d1, ..., dk)",
                   "give the input a class axis")
        else:
            axis = 0 if x.ndim == 1 else 1
            c_in = int(x.shape[axis])
            if C is not None and C != c_in:
                r._add("num-classes", ERROR,
                       "num_classes = %d but the input has C = %d (dim %d of %s)"
                       % (C, c_in, axis, _shape(x.shape)),
                       "the model's output size and the label set disagree")
            C = c_in
            _check_input(r, x)
            probability = _check_shapes(r, t, x, axis)
    r.num_classes = C
    if weight is not None:
        _check_weight(r, _to_numpy(weight), C, x)

    kind = t.dtype.kind
    if kind not in ("i", "u", "f"):
        r._add("target-dtype", ERROR,
               "target has dtype %s; class indices must be integers" % t.dtype,
               "convert the target to int64 (.long() in PyTorch, .astype(np.int64) in NumPy)")
        return r
    if probability:
        _check_probabilities(r, t, x)
        return r
    if kind == "f":
        values = t.astype(np.float64, copy=False).reshape(-1)
        whole = np.isfinite(values) & (values == np.floor(values))
        if not whole.all():
            bad = np.flatnonzero(~whole)
            first = int(bad[0])
            where = "the target must have the input's exact shape" + (
                " %s" % _shape(x.shape) if x is not None else "")
            r._add("target-not-whole", ERROR,
                   "target has dtype %s, but class indices must be integers; %s = %s is not %s "
                   "(%d of %d values are not whole numbers), so these are not class indices"
                   % (t.dtype, _position("target", first, t.shape), _fmt(values[first]),
                      "a whole number" if np.isfinite(values[first]) else "finite",
                      bad.size, values.size),
                   "if they are class probabilities, " + where)
            return r
        lo_hi = " (min %.0f, max %.0f)" % (values.min(), values.max()) if values.size else ""
        r._add("float-target", ERROR,
               "target has dtype %s, but class indices must be integers; all %d values are "
               "whole numbers%s" % (t.dtype, values.size, lo_hi),
               "convert the target to int64 (.long() in PyTorch, .astype(np.int64) in NumPy), "
               "or pass allow_float_targets=True")
        if values.size and (values.max() >= 2.0**63 or values.min() < -2.0**63):
            return r
        flat = values.astype(np.int64)
    elif t.dtype == np.uint64 and t.size and int(t.max()) > np.iinfo(np.int64).max:
        big = np.flatnonzero(t.reshape(-1) > np.iinfo(np.int64).max)
        r._add("target-range", ERROR,
               "%s = %d is beyond int64, so it is no class index (%d such values)"
               % (_position("target", int(big[0]), t.shape), int(t.reshape(-1)[big[0]]),
                  big.size),
               "the labels are corrupt: look at how they were produced")
        return r
    else:
        flat = t.reshape(-1).astype(np.int64, copy=False)

    _check_values(r, flat, t.shape, C, int(ignore_index), imbalance_ratio)
    return r


def _check_input(r: Report, x: np.ndarray) -> None:
    if x.dtype.kind != "f":
        r._add("input-dtype", ERROR,
               "input has dtype %s; expected float64, float32, float16 or bfloat16" % x.dtype,
               "convert the input to float32")
        return
    flat = x.reshape(-1)
    nan = np.isnan(flat)
    pos = np.isposinf(flat)
    neg = np.isneginf(flat)
    r.nonfinite = (int(nan.sum()), int(pos.sum()), int(neg.sum()))
    bad = nan | pos
    if bad.any():
        first = int(np.argmax(bad))
        r._add("nonfinite", ERROR,
               "%s = %s is not finite; %d of %d input values are NaN or +inf (%d NaN, %d +inf; "
               "-inf is allowed: a masked logit)"
               % (_position("input", first, x.shape), "nan" if nan[first] else "inf",
                  int(bad.sum()), flat.size, r.nonfinite[0], r.nonfinite[1]),
               "in 16-bit training this often means an overflow upstream: look at the layer "
               "that produced the input, or train with a loss scale")
    if neg.any() and x.ndim >= 1:
        axis = 0 if x.ndim == 1 else 1
        masked_rows = int(np.isneginf(x).all(axis=axis).sum())
        r._add("negative-inf", INFO,
               "%d input values are -inf (masked logits)" % r.nonfinite[2])
        if masked_rows:
            r._add("all-masked", WARNING,
                   "%d sample%s have -inf for every class: their loss and gradient are NaN"
                   % (masked_rows, "" if masked_rows == 1 else "s"),
                   "leave at least one class unmasked, or ignore those samples")


def _check_shapes(r: Report, t: np.ndarray, x: np.ndarray, axis: int) -> bool:
    """Shape agreement; True when the target reads as class probabilities."""
    want = tuple(x.shape[:axis]) + tuple(x.shape[axis + 1:])
    if t.shape == x.shape and t.dtype.kind == "f":
        return True
    if t.shape == want:
        return False
    if x.ndim == 1 and t.ndim == 1:
        msg = ("target has shape %s but a 1-D input (C = %d) takes a 0-d target (one class "
               "index); PyTorch silently uses target[0]" % (_shape(t.shape), x.shape[0]))
        fix = "for a batch, give the input shape (N, C)"
    elif t.dtype.kind == "f" and t.ndim == x.ndim:
        msg = ("probability targets need the input's exact shape: target %s, input %s "
               "(class axis dim %d)" % (_shape(t.shape), _shape(x.shape), axis))
        fix = "give the target the input's shape, or pass class indices of shape %s" % (
            _shape(want))
    else:
        msg = ("target shape %s does not match input shape %s: expected target shape %s (the "
               "input without its class axis, dim %d, C = %d)"
               % (_shape(t.shape), _shape(x.shape), _shape(want), axis, x.shape[axis]))
        fix = ("a (N, C, ...) input takes (N, ...) targets; move the class axis of the input "
               "to dim 1 (e.g. .permute / np.moveaxis) if it is last")
    r._add("target-shape", ERROR, msg, fix)
    return False


def _check_weight(r: Report, w: np.ndarray, C: Optional[int], x: Optional[np.ndarray]) -> None:
    if w.ndim != 1 or (C is not None and w.shape[0] != C):
        r._add("weight-shape", ERROR,
               "weight has shape %s but must be (%s): one weight per class"
               % (_shape(w.shape), C if C is not None else "C"),
               "give one weight per class")
    if x is not None and x.dtype.kind == "f" and w.dtype != x.dtype:
        r._add("weight-dtype", ERROR,
               "weight has dtype %s but input has dtype %s" % (w.dtype, x.dtype),
               "convert the weight to the input's dtype")
    if w.dtype.kind == "f" and w.size and (w < 0).any():
        r._add("negative-weight", WARNING,
               "%d class weights are negative" % int((w < 0).sum()),
               "class weights are normally >= 0")


def _check_probabilities(r: Report, t: np.ndarray, x: np.ndarray) -> None:
    r._add("probabilities", INFO,
           "target has the input's shape %s and a floating dtype: read as class probabilities "
           "(cross_entropy only)" % _shape(x.shape))
    if t.dtype != x.dtype:
        r._add("target-dtype", ERROR,
               "probability target has dtype %s but the input has dtype %s"
               % (t.dtype, x.dtype), "convert one so they match")
    q = t.astype(np.float64)
    axis = 0 if x.ndim == 1 else 1
    if not np.isfinite(q).all():
        r._add("nonfinite-target", ERROR, "%d target probabilities are NaN or inf"
               % int((~np.isfinite(q)).sum()), "fix the target")
        return
    if (q < 0).any() or (q > 1).any():
        r._add("probability-range", WARNING,
               "%d target probabilities are outside [0, 1]" % int(((q < 0) | (q > 1)).sum()),
               "probabilities should be in [0, 1]")
    sums = q.sum(axis=axis)
    off = np.abs(sums - 1.0) > 1e-3
    if off.any():
        r._add("probability-sum", WARNING,
               "%d of %d samples have target probabilities that do not sum to 1 (e.g. %s)"
               % (int(off.sum()), sums.size, _fmt(float(sums.reshape(-1)[np.argmax(off)]))),
               "normalise the target along the class axis (dim %d)" % axis)


def _check_values(r: Report, flat: np.ndarray, shape: Tuple[int, ...], C: Optional[int],
                  ignore_index: int, imbalance_ratio: float) -> None:
    ignored = flat == ignore_index
    r.num_ignored = int(ignored.sum())
    counted = flat[~ignored]
    if flat.size == 0:
        r._add("empty", WARNING, "target is empty: reduction 'mean' gives NaN (0/0)")
        return
    if r.num_ignored:
        r._add("ignored", INFO, "%d of %d targets equal ignore_index (%d) and add nothing"
               % (r.num_ignored, flat.size, ignore_index))
    if counted.size == 0:
        r._add("all-ignored", WARNING,
               "every target equals ignore_index (%d): reduction 'mean' gives NaN (0/0)"
               % ignore_index, "check the masking, or use reduction='sum'")
        return
    lo, hi = int(counted.min()), int(counted.max())
    r.min, r.max = lo, hi
    in_range = (counted >= 0) & ((counted < C) if C is not None else True)
    bad_mask = ~in_range
    has_minus_one = bool((counted == -1).any())
    has_255 = bool((counted == 255).any()) and (C is None or C <= 255)

    if bad_mask.any():
        # Position in the full target: the first bad one in row-major order.
        full_bad = (flat != ignore_index) & ((flat < 0) | ((flat >= C) if C is not None
                                                            else False))
        first = int(np.argmax(full_bad))
        n_bad = int(bad_mask.sum())
        if C is not None:
            msg = ("%s = %d is outside the class range [0, %d) and is not ignore_index (%d); "
                   "%d of %d targets are out of range (targets seen: min %d, max %d)"
                   % (_position("target", first, shape), int(flat[first]), C, ignore_index,
                      n_bad, flat.size, lo, hi))
        else:
            msg = ("%s = %d is negative and is not ignore_index (%d); %d of %d targets are "
                   "negative" % (_position("target", first, shape), int(flat[first]),
                                 ignore_index, n_bad, flat.size))
        r._add("target-range", ERROR, msg, _range_fix(counted, C, lo, hi, has_minus_one,
                                                     has_255, ignore_index))
    # The usual causes, each its own finding (also when C is unknown).
    bad_values = counted[bad_mask]
    if C is not None and C > 0 and lo == 1 and hi == C and bad_values.size and \
            (bad_values == C).all():
        r._add("one-based", ERROR,
               "the labels look 1-based (min 1, max %d)" % C, "subtract 1")
    elif C is None and lo >= 1 and not has_255:
        r._add("one-based", WARNING,
               "no target is 0 (min %d, max %d): if the labels are 1-based, the largest "
               "is out of range" % (lo, hi), "subtract 1 if the labels start at 1")
    elif C is not None and hi >= C and not has_255:
        r._add("too-few-classes", ERROR,
               "the largest target is %d: does the input really have only %d classes?"
               % (hi, C), "make the model's output size at least %d" % (hi + 1))
    if has_minus_one and ignore_index != -1:
        r._add("padding-minus-one", ERROR,
               "-1 found while ignore_index is %d: if -1 marks padding, it is not skipped"
               % ignore_index, "pass ignore_index=-1")
    if has_255 and ignore_index != 255:
        r._add("void-255", ERROR if C is not None else WARNING,
               "255 found: 255 often marks void pixels in segmentation masks",
               "pass ignore_index=255 to skip them")

    _histogram(r, counted[in_range], C, lo, hi, imbalance_ratio)


def _range_fix(counted: np.ndarray, C: Optional[int], lo: int, hi: int, minus_one: bool,
               void: bool, ignore_index: int) -> str:
    if minus_one and ignore_index != -1:
        return "pass ignore_index=-1 if -1 marks padding"
    if void and ignore_index != 255:
        return "pass ignore_index=255 to skip void pixels"
    if C is not None and lo == 1 and hi == C:
        return "subtract 1"
    return "map the labels to 0..C-1 (np.unique(labels, return_inverse=True))"


def _histogram(r: Report, valid: np.ndarray, C: Optional[int], lo: int, hi: int,
               imbalance_ratio: float) -> None:
    size = C if C is not None else max(hi + 1, 0)
    hist = np.bincount(valid, minlength=size)[:size] if size else np.zeros(0, np.int64)
    r.histogram = hist
    if hist.size == 0 or valid.size == 0:
        return
    seen = np.flatnonzero(hist)
    if seen.size == 1 and size > 1:
        r._add("single-class", WARNING,
               "every counted target is class %d (C = %d): the loss can be minimised by "
               "always predicting it" % (int(seen[0]), size),
               "check that the labels were loaded and shuffled correctly")
    inner = [c for c in range(int(seen[0]), int(seen[-1]) + 1) if hist[c] == 0]
    if inner:
        r._add("class-gaps", WARNING,
               "the classes seen are not contiguous: %d class%s between %d and %d never "
               "appear (%s)" % (len(inner), "" if len(inner) == 1 else "es", int(seen[0]),
                                int(seen[-1]), _list(inner)),
               "if the labels are arbitrary ids, map them to 0..C-1 "
               "(np.unique(labels, return_inverse=True))")
    if C is not None:
        never = np.flatnonzero(hist == 0)
        if never.size:
            r._add("never-seen", INFO, "%d of %d classes never appear: %s"
                   % (never.size, C, _list(never.tolist())))
    counts = hist[seen]
    ratio = float(counts.max()) / float(counts.min())
    if seen.size > 1 and ratio >= imbalance_ratio:
        r._add("imbalance", WARNING,
               "class %d appears %d times, class %d only %d: a ratio of %.0f"
               % (int(seen[np.argmax(counts)]), int(counts.max()), int(seen[np.argmin(counts)]),
                  int(counts.min()), ratio),
               "pass weight= (e.g. inverse class frequencies) or resample")


def _list(values: List[int], limit: int = 10) -> str:
    shown = ", ".join(str(int(v)) for v in values[:limit])
    return shown + (", ... (%d more)" % (len(values) - limit) if len(values) > limit else "")
