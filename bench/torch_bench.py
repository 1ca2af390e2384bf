"""PyTorch's F.cross_entropy on the cases of bench.c, timed the same way (warm-up, then the best
of at least 3 runs, running on until --min-time seconds have been timed).
Prints tab-separated "info" and "row" lines for bench/report.py. PyTorch has no in-place fused
call, so there is no fused-inplace row: the report compares that row with "fused".

usage: python3 torch_bench.py [--quick] [--threads 1,2] [--min-time SECONDS]"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

FULL = [(8192, 10), (4096, 1000), (4096, 32000), (2048, 50257), (1024, 128256), (8, 262144)]
QUICK = [(8192, 10), (4096, 1000), (8, 262144)]
IGNORE_INDEX = -100


def best_time(fn, prepare, min_time):
    """Warm-up call, then the best of >= 3 timed calls and until min_time has been timed."""
    prepare()
    fn()
    best, total, runs = float("inf"), 0.0, 0
    while runs < 3 or total < min_time:
        prepare()  # outside the timed region
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best, total, runs = min(best, elapsed), total + elapsed, runs + 1
    return best, runs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--min-time", type=float, default=None)
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    min_time = args.min_time if args.min_time is not None else (0.02 if args.quick else 0.1)

    print(f"info\ttorch\t{torch.__version__}")
    print(f"info\ttorch path\t{os.path.dirname(torch.__file__)}")
    print(f"info\tpython\t{sys.executable} {sys.version.split()[0]}")
    print(f"info\tGLIBC_TUNABLES\t{os.environ.get('GLIBC_TUNABLES', '(unset)')}")
    print("columns\tN\tC\tdtype\top\tthreads\tignored_pct\tms\truns")
    sys.stdout.flush()
    torch.set_grad_enabled(True)
    for n, c in QUICK if args.quick else FULL:
        print(f"torch_bench: ({n}, {c})", file=sys.stderr)
        g = torch.Generator().manual_seed(0)
        values = torch.rand(n, c, generator=g) * 8 - 4  # uniform in [-4, 4] as in bench.c
        labels = torch.randint(0, c, (n,), generator=g)
        for dtype in (torch.float32, torch.bfloat16):
            x = values.to(dtype)
            for ignored in (0, 10):
                target = labels.clone()
                if ignored:
                    target[9::10] = IGNORE_INDEX  # every 10th, as bench.c
                leaf = x.detach().requires_grad_(True)

                def forward():
                    with torch.no_grad():
                        F.cross_entropy(x, target, ignore_index=IGNORE_INDEX)

                def fused():
                    F.cross_entropy(leaf, target, ignore_index=IGNORE_INDEX).backward()

                def clear_grad():
                    leaf.grad = None  # a fresh gradient each run, as libnll writes one

                for op, fn in (("forward", forward), ("fused", fused)):
                    for t in threads:
                        torch.set_num_threads(t)
                        best, runs = best_time(fn, clear_grad, min_time)
                        name = "float32" if dtype == torch.float32 else "bfloat16"
                        print(f"row\t{n}\t{c}\t{name}\t{op}\t{t}\t{ignored}\t{best * 1e3:.6f}\t{runs}")
                        sys.stdout.flush()
                del leaf
            del x


if __name__ == "__main__":
    main()
