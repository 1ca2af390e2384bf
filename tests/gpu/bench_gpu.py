"""The GPU benchmark (run by tests/gpu/run.sh; figures, not a test): the measured HBM copy
bandwidth, then libnll's fused cross-entropy (gradient in place and into a separate buffer) and
forward only, against PyTorch's F.cross_entropy (eager, and torch.compile where it works), on
the same tensors. Bytes are the minimal traffic: the logits read once, the gradient written
once. Timing: CUDA events around repeated calls, libnll in asynchronous mode (no host wait
per call), after warm-up.

usage: python3 tests/gpu/bench_gpu.py [--quick]   (NLL_LIBRARY, PYTHONPATH=python)
"""
import sys
import time

import torch
import torch.nn.functional as TF

from nll import functional as F

DEV = torch.device("cuda:0")
CASES = [(8192, 128256), (8192, 50304), (4096, 32000)]
DTYPES = [torch.bfloat16, torch.float32]


def timed(fn, reps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / reps / 1e3  # seconds


def copy_bandwidth():
    a = torch.empty(2 << 30, dtype=torch.uint8, device=DEV)
    b = torch.empty_like(a)
    seconds = timed(lambda: b.copy_(a), 20)
    return 2 * a.numel() / seconds


def main():
    quick = "--quick" in sys.argv
    ctx = F._context()
    ctx.lib.nll_context_set_async(ctx.handle, 1)
    bw = copy_bandwidth()
    print("GPU %s, torch %s; measured copy bandwidth %.2f TB/s (read + write)" % (
        torch.cuda.get_device_name(0), torch.__version__, bw / 1e12))
    compiled = None
    try:
        compiled = torch.compile(lambda x, t: TF.cross_entropy(x, t))
    except Exception as e:  # noqa: BLE001
        print("torch.compile unavailable: %r" % e)
    header = "%-16s %-9s %-22s %9s %8s %7s %6s %10s %7s %10s %7s" % (
        "shape", "dtype", "op", "ms", "GB", "TB/s", "ofcopy", "torch ms", "ratio", "compile ms",
        "ratio")
    print(header)
    print("-" * len(header))
    for (n, v), dtype in [(c, d) for c in (CASES[:1] if quick else CASES) for d in DTYPES]:
        x0 = torch.randn(n, v, device=DEV, dtype=dtype)
        t = torch.randint(0, v, (n,), device=DEV)
        size = x0.numel() * x0.element_size()
        buf = x0.clone()
        rows = []
        rows.append(("fused, in place", 2 * size,
                     timed(lambda: F.cross_entropy_with_grad(buf, t, inplace=True), 10)))

        def separate():
            F.cross_entropy_with_grad(x0, t)
        rows.append(("fused, separate grad", 2 * size, timed(separate, 10)))
        rows.append(("forward only", size, timed(lambda: F.cross_entropy(x0, t), 10)))
        xr = x0.clone().requires_grad_(True)

        def torch_fused():
            xr.grad = None
            TF.cross_entropy(xr, t).backward()
        torch_times = {"fused, in place": timed(torch_fused, 5),
                       "forward only": timed(lambda: TF.cross_entropy(x0, t), 5)}
        torch_times["fused, separate grad"] = torch_times["fused, in place"]
        compile_times = {}
        if compiled is not None:
            try:
                began = time.time()
                compiled(x0, t)
                if time.time() - began < 120:
                    compile_times["forward only"] = timed(lambda: compiled(x0, t), 5)
            except Exception as e:  # noqa: BLE001
                print("torch.compile failed: %r" % e)
                compiled = None
        ctx.lib.nll_context_sync(ctx.handle)
        for op, nbytes, seconds in rows:
            tt = torch_times.get(op)
            ct = compile_times.get(op)
            print("%-16s %-9s %-22s %9.3f %8.2f %7.2f %6.2f %10s %7s %10s %7s" % (
                "(%d, %d)" % (n, v), str(dtype)[6:], op, seconds * 1e3, nbytes / 1e9,
                nbytes / seconds / 1e12, nbytes / seconds / bw,
                "%.3f" % (tt * 1e3) if tt else "-", "%.2fx" % (tt / seconds) if tt else "-",
                "%.3f" % (ct * 1e3) if ct else "-", "%.2fx" % (ct / seconds) if ct else "-"))
        del x0, buf, xr
        torch.cuda.empty_cache()
    ctx.lib.nll_context_set_async(ctx.handle, 0)
    print("torch's fused time is forward + backward (autograd); its separate-buffer row repeats it")


if __name__ == "__main__":
    main()
