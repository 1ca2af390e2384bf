"""Every op, dtype and option of libnll on a GPU against the same library on the CPU (the
reference, itself checked against PyTorch by tests/conformance), and the GPU error cases, each
followed by a good call. Needs torch with CUDA; prints one line per failure and a summary, and
exits non-zero on any failure.

usage: python3 tests/gpu/test_gpu.py   (NLL_LIBRARY=path/to/libnll.so, PYTHONPATH=python)
"""
import itertools
import os
import sys
import traceback

import torch

import nll
from nll import functional as F

DEV = torch.device(os.environ.get("NLL_TEST_DEVICE", "cuda:0"))  # cpu: a dry run of this script
DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
# GPU vs CPU: both accumulate in float32 (float64 for float64) in different orders.
TOL = {torch.float64: (1e-11, 1e-12), torch.float32: (2e-5, 1e-6),
       torch.float16: (2e-3, 2e-4), torch.bfloat16: (1.6e-2, 2e-3)}
stats = {"cases": 0, "failed": 0}


def fail(what, detail):
    stats["failed"] += 1
    if stats["failed"] <= 60:
        print("FAIL %s: %s" % (what, detail))


def same(what, got, want, dtype):
    """got (GPU) vs want (CPU), elementwise within the dtype's tolerance, NaN where NaN."""
    stats["cases"] += 1
    got = got.detach().to("cpu", torch.float64)
    want = want.detach().to("cpu", torch.float64)
    if got.shape != want.shape:
        return fail(what, "shape %s vs %s" % (tuple(got.shape), tuple(want.shape)))
    rtol, atol = TOL[dtype]
    nan_g, nan_w = torch.isnan(got), torch.isnan(want)
    if not torch.equal(nan_g, nan_w):
        return fail(what, "NaN at different places (%d vs %d)" % (nan_g.sum(), nan_w.sum()))
    ok = torch.isclose(got, want, rtol=rtol, atol=atol) | nan_g
    if not bool(ok.all()):
        bad = (~ok).nonzero()[0].tolist()
        return fail(what, "at %s: gpu %r cpu %r (%d elements off)" % (
            bad, got[tuple(bad)].item(), want[tuple(bad)].item(), int((~ok).sum())))


def on(device, *tensors):
    return [None if t is None else t.to(device) for t in tensors]


def make(shape, dtype, classes, layout, gen):
    """Logits of shape on the CPU; transposed storage keeps its strides on the GPU."""
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 3
    if layout == "transposed" and len(shape) >= 2:
        x = x.transpose(0, -1).contiguous().transpose(0, -1)
    return x.to(dtype)


def to_gpu(x, layout):
    """x on the GPU; "offset": one element into its storage, so rows are not 16-byte aligned."""
    if layout != "offset":
        return x.to(DEV)
    return torch.empty(x.numel() + 1, dtype=x.dtype, device=DEV)[1:].view(x.shape).copy_(x)


def targets(samples_shape, classes, ignore_index, gen, dtype=torch.int64):
    t = torch.randint(0, max(classes, 1), samples_shape, generator=gen)
    if ignore_index is not None and t.numel():
        mask = torch.rand(samples_shape, generator=gen) < 0.2
        t[mask] = ignore_index
    return t.to(dtype)


def loss_cases():
    gen = torch.Generator().manual_seed(7)
    shapes = [(5,), (8, 1), (16, 5), (33, 33), (7, 1000), (4, 3001), (3, 20011), (2, 70001), (3, 300007),
              (4, 6, 3, 2), (0, 5)]
    for dtype, shape in itertools.product(DTYPES, shapes):
        classes = shape[0] if len(shape) == 1 else shape[1]
        samples = () if len(shape) == 1 else (shape[0],) + shape[2:]
        for layout in ("contiguous", "transposed", "offset"):
            if layout != "contiguous" and (len(shape) < 2 or shape[0] * classes > 100000):
                continue
            x = make(shape, dtype, classes, layout, gen)
            for reduction, weighted, ignore, smoothing in itertools.product(
                    ("none", "mean", "sum"), (False, True), (-100, 1), (0.0, 0.1)):
                w = (torch.rand(classes, generator=gen, dtype=torch.float64) + 0.5).to(dtype) \
                    if weighted else None
                t = targets(samples, classes, ignore, gen)
                yield layout, dtype, x, t, w, reduction, ignore, smoothing, "%s %s %s %s w=%d ii=%d ls=%g" % (
                    str(dtype)[6:], shape, layout, reduction, weighted, ignore, smoothing)
            # probability targets
            if len(shape) >= 2:
                q = torch.softmax(torch.randn(shape, generator=gen, dtype=torch.float64), 1).to(dtype)
                for reduction, smoothing in itertools.product(("none", "mean", "sum"), (0.0, 0.2)):
                    yield layout, dtype, x, q, None, reduction, -100, smoothing, "%s %s %s prob %s ls=%g" % (
                        str(dtype)[6:], shape, layout, reduction, smoothing)


def run_loss_case(layout, dtype, x, t, w, reduction, ignore, smoothing, name):
    xc, tc, wc = x, t, w
    tg, wg = on(DEV, t, w)
    xg = to_gpu(x, layout)
    prob = t.is_floating_point()
    kw = dict(reduction=reduction, ignore_index=ignore, label_smoothing=smoothing)
    same("cross_entropy " + name, F.cross_entropy(xg, tg, wg, **kw), F.cross_entropy(xc, tc, wc, **kw), dtype)
    loss_g, grad_g = F.cross_entropy_with_grad(xg, tg, wg, **kw)
    loss_c, grad_c = F.cross_entropy_with_grad(xc, tc, wc, **kw)
    same("fused loss " + name, loss_g, loss_c, dtype)
    same("fused grad " + name, grad_g, grad_c, dtype)
    xi = to_gpu(x, layout)
    loss_i, grad_i = F.cross_entropy_with_grad(xi, tg, wg, inplace=True, **kw)
    same("fused in place " + name, grad_i, grad_c, dtype)
    same("fused in place loss " + name, loss_i, loss_c, dtype)
    stats["cases"] += 1
    if grad_i.data_ptr() != xi.data_ptr():
        fail("fused in place " + name, "gradient not in the logits' memory")
    up = torch.rand(loss_c.shape, dtype=torch.float64).to(dtype) + 0.5
    same("cross_entropy_backward " + name, F.cross_entropy_backward(up.to(DEV), xg, tg, wg, **kw),
         F.cross_entropy_backward(up, xc, tc, wc, **kw), dtype)
    if not prob and smoothing == 0:
        lp_c = torch.log_softmax(xc.double(), 1 if xc.dim() > 1 else 0).to(dtype)
        lp_g = to_gpu(lp_c, layout)
        kw2 = dict(reduction=reduction, ignore_index=ignore)
        same("nll_loss " + name, F.nll_loss(lp_g, tg, wg, **kw2), F.nll_loss(lp_c, tc, wc, **kw2), dtype)
        same("nll_loss_backward " + name, F.nll_loss_backward(up.to(DEV), lp_g, tg, wg, **kw2),
             F.nll_loss_backward(up, lp_c, tc, wc, **kw2), dtype)


def softmax_cases():
    gen = torch.Generator().manual_seed(11)
    for dtype, shape in itertools.product(DTYPES, [(7,), (6, 9), (3, 2500), (2, 40000), (2, 3, 4, 5)]):
        x = make(shape, dtype, 0, "contiguous", gen)
        for dim in range(-len(shape), len(shape)):
            name = "%s %s dim=%d" % (str(dtype)[6:], shape, dim)
            y_c = F.log_softmax(x, dim)
            y_g = F.log_softmax(x.to(DEV), dim)
            same("log_softmax " + name, y_g, y_c, dtype)
            g = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
            same("log_softmax_backward " + name, F.log_softmax_backward(g.to(DEV), y_c.to(DEV), dim),
                 F.log_softmax_backward(g, y_c, dim), dtype)


def special_values():
    """-inf, NaN, +inf rows and target dtypes, the CPU's semantics exactly."""
    for dtype in DTYPES:
        x = torch.tensor([[0., 1., 2.], [float("-inf")] * 3, [0., float("nan"), 1.],
                          [float("inf"), 0., 1.], [float("-inf"), 0., float("-inf")]], dtype=dtype)
        t = torch.tensor([2, 0, 1, 0, 1])
        for reduction in ("none", "sum"):
            lc, gc = F.cross_entropy_with_grad(x, t, reduction=reduction)
            lg, gg = F.cross_entropy_with_grad(x.to(DEV), t.to(DEV), reduction=reduction)
            same("special loss %s %s" % (dtype, reduction), lg, lc, dtype)
            same("special grad %s %s" % (dtype, reduction), gg, gc, dtype)
        for tdtype in (torch.int32, torch.uint8, torch.int16, torch.float32):
            kw = {"allow_float_targets": True} if tdtype.is_floating_point else {}
            tt = torch.tensor([2, 0, 1, 0, 1], dtype=tdtype)
            same("target dtype %s" % tdtype, F.cross_entropy(x.to(DEV), tt.to(DEV), **kw),
                 F.cross_entropy(x, tt, **kw), dtype)


def expect_error(name, exc, fragment, call, good):
    """call() must raise exc whose message holds fragment and write no output; good() must then
    work (the CUDA context survives)."""
    stats["cases"] += 1
    try:
        call()
        return fail(name, "no error raised")
    except exc as e:
        if fragment not in str(e):
            return fail(name, "message %r lacks %r" % (str(e), fragment))
    except Exception as e:  # noqa: BLE001
        return fail(name, "raised %r" % e)
    try:
        if DEV.type == "cuda":
            torch.cuda.synchronize()
        good()
    except Exception as e:  # noqa: BLE001
        fail(name + " (the next call)", repr(e))


def errors():
    x = torch.randn(4, 5, device=DEV)
    good_t = torch.tensor([0, 1, 2, 3], device=DEV)

    def good():
        lg, gg = F.cross_entropy_with_grad(x, good_t)
        lc, gc = F.cross_entropy_with_grad(x.cpu(), good_t.cpu())
        same("good call after an error", gg, gc, torch.float32)

    bad = torch.tensor([0, 5, 1, 5], device=DEV)
    expect_error("target range", nll.TargetRangeError,
                 "target[1] = 5 is outside the class range [0, 5)", lambda: F.cross_entropy(x, bad), good)
    one_based = torch.tensor([1, 5, 2, 3], device=DEV)
    expect_error("1-based labels", nll.TargetRangeError, "look 1-based",
                 lambda: F.cross_entropy(x, one_based), good)
    minus = torch.tensor([0, -1, 1, 2], device=DEV)
    expect_error("padding -1", nll.TargetRangeError, "pass ignore_index=-1",
                 lambda: F.nll_loss(x, minus), good)
    # the same message as the CPU's, word for word
    for t in (bad, one_based, minus):
        stats["cases"] += 1
        msgs = []
        for dev in ("cpu", DEV):
            try:
                F.cross_entropy(x.to(dev), t.to(dev))
            except nll.Error as e:
                msgs.append(str(e))
        if len(msgs) != 2 or msgs[0] != msgs[1]:
            fail("same message as the CPU", msgs)
    nan_x = x.clone()
    nan_x[2, 3] = float("nan")
    expect_error("check_finite", nll.NonFiniteError, "input[13] (index [2, 3]) = nan",
                 lambda: F.cross_entropy(nan_x, good_t, check_finite=True), good)
    ft = good_t.float()
    expect_error("float target", nll.TargetDtypeError, "class indices must be integers",
                 lambda: F.cross_entropy(x, ft), good)
    ft_half = ft.clone()
    ft_half[2] = 0.5
    expect_error("float target not whole", nll.TargetNotWholeError, "target[2] = 0.5",
                 lambda: F.cross_entropy(x, ft_half, allow_float_targets=True), good)
    expect_error("devices", nll.DeviceError, "target is on cpu but input is on cuda:0",
                 lambda: F.cross_entropy(x, good_t.cpu()), good)
    q = torch.softmax(torch.randn(4, 5, device=DEV), 1)
    q[1, 2] = float("nan")
    expect_error("check_finite on probabilities", nll.NonFiniteError, "target[7] (index [1, 2]) = nan",
                 lambda: F.cross_entropy(x, q, check_finite=True), good)
    # a rejected fused call in place leaves the logits untouched
    keep = x.clone()
    xi = x.clone()
    expect_error("in place, rejected", nll.TargetRangeError, "target[1] = 5",
                 lambda: F.cross_entropy_with_grad(xi, bad, inplace=True), good)
    stats["cases"] += 1
    if not torch.equal(xi, keep):
        fail("in place, rejected", "the logits changed")


def async_mode():
    ctx = F._context()
    lib = ctx.lib
    x = torch.randn(64, 100, device=DEV)
    t = torch.randint(0, 100, (64,), device=DEV)
    bad = t.clone()
    bad[17] = 100
    lib.nll_context_set_async(ctx.handle, 1)
    try:
        F.cross_entropy(x, t)            # fine
        loss = F.cross_entropy(x, bad)   # rejected, reported later
        after = F.cross_entropy(x, t)    # skipped until the sync
        stats["cases"] += 1
        status = lib.nll_context_sync(ctx.handle)
        msg = lib.nll_last_error(ctx.handle).decode()
        if status != 60 or "nll_cross_entropy_forward: target[17] = 100" not in msg:
            fail("async report", "status %d, %r" % (status, msg))
        del loss, after
        stats["cases"] += 1
        if lib.nll_context_sync(ctx.handle) != 0:
            fail("async: second sync", "not clear")
        # a floating class-index target is a dtype error of the call itself, not of the sync,
        # with the CPU's message up to its facts about the values
        stats["cases"] += 1
        try:
            F.cross_entropy(x, t.float())
            fail("async float target", "no error from the call")
        except nll.TargetDtypeError as e:
            prefix = "nll_cross_entropy_forward: target has dtype float32, but class indices must be integers"
            try:
                F.cross_entropy(x.cpu(), t.float().cpu())
                cpu = ""
            except nll.TargetDtypeError as e_cpu:
                cpu = str(e_cpu)
            if not str(e).startswith(prefix) or not cpu.startswith(prefix):
                fail("async float target", "messages %r and (CPU) %r" % (str(e), cpu))
        if lib.nll_context_sync(ctx.handle) != 0:
            fail("async float target", "an error was left for the sync")
        same("async float target, the next call", F.cross_entropy(x, t),
             F.cross_entropy(x.cpu(), t.cpu()), torch.float32)
        lib.nll_context_sync(ctx.handle)
        # the same through the Python API
        lib.nll_context_set_async(ctx.handle, 0)
        nll.set_async(True)
        F.cross_entropy(x, bad)
        stats["cases"] += 1
        try:
            nll.sync()
            fail("nll.sync", "no error raised")
        except nll.TargetRangeError as e:
            if "target[17] = 100" not in str(e):
                fail("nll.sync", str(e))
        nll.set_async(False)
        F._context()
        lib.nll_context_set_async(ctx.handle, 1)
        lc = F.cross_entropy(x, t)
        lib.nll_context_sync(ctx.handle)
        same("async good call", lc, F.cross_entropy(x.cpu(), t.cpu()), torch.float32)
        # a CUDA graph of the fused in-place call
        stats["cases"] += 1
        try:
            xs = torch.randn(256, 1000, device=DEV)
            ts = torch.randint(0, 1000, (256,), device=DEV)
            F.cross_entropy_with_grad(xs.clone(), ts, inplace=True)
            lib.nll_context_sync(ctx.handle)
            graph = torch.cuda.CUDAGraph()
            buf = xs.clone()
            with torch.cuda.graph(graph):
                lgraph, _ = F.cross_entropy_with_grad(buf, ts, inplace=True)
            buf.copy_(xs)
            graph.replay()
            torch.cuda.synchronize()
            lc, gc = F.cross_entropy_with_grad(xs.cpu(), ts.cpu())
            same("graph replay loss", lgraph, lc, torch.float32)
            same("graph replay grad", buf, gc, torch.float32)
        except Exception as e:  # noqa: BLE001
            fail("CUDA graph capture", repr(e))
    finally:
        lib.nll_context_set_async(ctx.handle, 0)


def streams_and_long_rows():
    """Calls on two streams (one workspace, ordered by an event), capture in the default
    synchronous mode, and long rows above the several-blocks-per-row limit."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(300, 1000, generator=gen)
    t = torch.randint(0, 1000, (300,), generator=gen)
    want = F.cross_entropy(x, t)
    xg, tg = x.to(DEV), t.to(DEV)
    side = torch.cuda.Stream()
    losses = []
    for k in range(20):
        if k % 2:
            with torch.cuda.stream(side):
                losses.append(F.cross_entropy(xg, tg))
        else:
            losses.append(F.cross_entropy(xg, tg))
    torch.cuda.synchronize()
    for k, loss in enumerate(losses):
        same("two streams, call %d" % k, loss, want, torch.float32)
    stats["cases"] += 1
    try:
        buf = xg.clone()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            lgraph = F.cross_entropy(buf, tg)
        graph.replay()
        torch.cuda.synchronize()
        same("capture in synchronous mode", lgraph, want, torch.float32)
    except Exception as e:  # noqa: BLE001
        fail("capture in synchronous mode", repr(e))
    for dtype in (torch.float32, torch.bfloat16):
        xl = torch.randn(130, 65537, generator=gen).to(dtype)
        tl = torch.randint(0, 65537, (130,), generator=gen)
        lc, gc = F.cross_entropy_with_grad(xl, tl)
        lg, gg = F.cross_entropy_with_grad(xl.to(DEV), tl.to(DEV))
        same("130 rows of 65537 loss %s" % dtype, lg, lc, dtype)
        same("130 rows of 65537 grad %s" % dtype, gg, gc, dtype)


def at_offset(x, elements):
    """x copied into GPU storage `elements` elements past a 512-byte aligned start."""
    storage = torch.empty(x.numel() + 64, dtype=x.dtype, device=DEV)
    return storage[elements:elements + x.numel()].view(x.shape).copy_(x)


def offsets():
    """The same operands at byte offsets 0, 4, ..., 60 (2-byte steps for 16-bit types) give
    bitwise the same results: how a row's elements are dealt to threads depends on its length,
    not its address. Long rows (several blocks per row), block rows and warp rows."""
    gen = torch.Generator().manual_seed(17)
    for dtype, shape in itertools.product((torch.float32, torch.bfloat16, torch.float16),
                                          [(2, 70001), (4, 5003), (64, 301)]):
        rows, classes = shape
        x = (torch.randn(shape, generator=gen) * 4).to(dtype)
        g = torch.randn(shape, generator=gen).to(dtype)
        q = torch.softmax(torch.randn(shape, generator=gen), 1).to(dtype)
        w = (torch.rand(classes, generator=gen) + 0.5).to(dtype)
        t = targets((rows,), classes, -100, gen).to(DEV)

        def results(k):
            xs, gs, qs, ws = (at_offset(v, k) for v in (x, g, q, w))
            out = list(F.cross_entropy_with_grad(xs, t))
            out += list(F.cross_entropy_with_grad(xs, t, ws, label_smoothing=0.1,
                                                  reduction="none"))
            out += list(F.cross_entropy_with_grad(xs, qs))
            y = F.log_softmax(xs, 1)
            out += [y, F.log_softmax_backward(gs, at_offset(y, k), 1),
                    F.nll_loss(at_offset(y, k), t, ws)]
            inplace = at_offset(x, k)
            out += list(F.cross_entropy_with_grad(inplace, t, inplace=True))
            return [o.to("cpu") for o in out]

        want = results(0)
        name = "%s %s" % (str(dtype)[6:], shape)
        for k in range(1, 64 // x.element_size()):
            got = results(k)
            stats["cases"] += 1
            bad = [i for i, (a, b) in enumerate(zip(got, want)) if not torch.equal(a, b)]
            if bad:
                fail("offsets %s" % name, "byte offset %d: results %s differ from offset 0"
                     % (k * x.element_size(), bad))


def graph_replays_and_calls():
    """A graph captured from the context, replayed on one stream while uncaptured calls of the
    same context run on another: both use its workspace, so they must be ordered (the graph
    waits for and records the context's event); unordered, their partial sums mix."""
    gen = torch.Generator().manual_seed(9)
    xg = torch.randn(2048, 1000, generator=gen)
    tg = torch.randint(0, 1000, (2048,), generator=gen)
    xu = torch.randn(4096, 500, generator=gen)
    tu = torch.randint(0, 500, (4096,), generator=gen)
    want_g, want_u = F.cross_entropy(xg, tg), F.cross_entropy(xu, tu)
    xg, tg, xu, tu = on(DEV, xg, tg, xu, tu)
    F.cross_entropy(xg, tg)  # the workspace, before the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        lgraph = F.cross_entropy(xg, tg)
    replay, calls = torch.cuda.Stream(), torch.cuda.Stream()
    got_g, got_u = [], []
    for k in range(40):
        with torch.cuda.stream(replay):
            graph.replay()
            got_g.append(lgraph.clone())
        with torch.cuda.stream(calls):
            got_u.append(F.cross_entropy(xu, tu))
    torch.cuda.synchronize()
    for k in range(40):
        same("graph replay %d against calls on another stream" % k, got_g[k], want_g, torch.float32)
        same("call %d against graph replays on another stream" % k, got_u[k], want_u, torch.float32)


def main():
    torch.manual_seed(0)
    print("GPU: %s; torch %s; libnll %s" % (torch.cuda.get_device_name(0) if DEV.type == "cuda" else "none (dry run)", torch.__version__,
                                          F.library_version()))
    sections = [("loss ops", lambda: [run_loss_case(*c) for c in loss_cases()]),
                ("log_softmax", softmax_cases), ("special values", special_values),
                ("errors", errors), ("async and graphs", async_mode),
                ("streams, long", streams_and_long_rows), ("offsets", offsets),
                ("graphs, streams", graph_replays_and_calls)]
    for name, fn in sections:
        before = dict(stats)
        try:
            fn()
        except Exception:  # noqa: BLE001
            stats["failed"] += 1
            print("FAIL %s raised:\n%s" % (name, traceback.format_exc()))
        print("%-16s %6d checks, %d failed" % (name, stats["cases"] - before["cases"],
                                              stats["failed"] - before["failed"]))
    print("total: %d checks, %d failed" % (stats["cases"], stats["failed"]))
    return 1 if stats["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
