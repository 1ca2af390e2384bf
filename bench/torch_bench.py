"""PyTorch's F.cross_entropy on the same cases as bench.c, for a side-by-side ratio.
usage: python3 torch_bench.py [threads]"""
import sys
import time

import torch
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.set_num_threads(threads)
print(f"PyTorch {torch.__version__}, {threads} thread(s)")
print(f"{'shape':16} {'op':22} {'ms':>10}")
for n, c in [(8192, 10), (4096, 1000), (4096, 32000), (1024, 128256)]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, c, generator=g) * 8 - 4
    t = torch.randint(0, c, (n,), generator=g)
    for name in ("forward", "fused, separate grad"):
        best = 1e30
        for _ in range(3):
            xr = x.clone().requires_grad_(name != "forward")
            start = time.perf_counter()
            loss = F.cross_entropy(xr, t)
            if name != "forward":
                loss.backward()
            best = min(best, time.perf_counter() - start)
        print(f"{f'({n}, {c})':16} {name:22} {best * 1e3:10.3f}")
