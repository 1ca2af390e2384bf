"""Merges nll_bench's rows with PyTorch's (torch_bench.py, one file per PyTorch run) into one
table, and draws GB/s against the roofline with gnuplot (bench/roofline.gp) when it is there.

usage: report.py LIBNLL.tsv [--torch LABEL=FILE ...] [--plot-dir DIR]"""
import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OPS = ("forward", "fused", "fused-inplace")


def read_tsv(path):
    """info lines as a dict, machine lines as a list, rows as dicts keyed by the columns line."""
    info, machines, rows, columns = {}, [], [], []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if parts[0] == "info" and len(parts) >= 3:
                info[parts[1]] = parts[2]
            elif parts[0] == "machine":
                machines.append(parts[1:])
            elif parts[0] == "columns":
                columns = parts[1:]
            elif parts[0] == "row":
                rows.append(dict(zip(columns, parts[1:])))
    return info, machines, rows


def key(row):
    return (int(row["N"]), int(row["C"]), row["dtype"], row["op"], int(row["threads"]),
            int(row["ignored_pct"]))


def thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("libnll")
    parser.add_argument("--torch", action="append", default=[], metavar="LABEL=FILE")
    parser.add_argument("--plot-dir")
    args = parser.parse_args()

    info, machines, rows = read_tsv(args.libnll)
    torches = []  # (label, info, {key: ms})
    for spec in args.torch:
        label, _, path = spec.partition("=")
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            continue
        t_info, _, t_rows = read_tsv(path)
        torches.append((label, t_info, {key(r): float(r["ms"]) for r in t_rows}))

    print(f"libnll {info.get('libnll', '?')}, instruction set {info.get('arch', '?')} "
          f"(exp kernel {info.get('exp kernel', '?')}), {info.get('online CPUs', '?')} online CPUs, "
          f"GLIBC_TUNABLES={info.get('GLIBC_TUNABLES', '?')}, transparent huge pages: {thp_mode()}")
    print("machine: threads, copy GB/s (read + written), read GB/s, exp G elements/s")
    for m in machines:
        print(f"  {int(m[0]):3d} threads  copy {float(m[1]):7.2f}  read {float(m[2]):7.2f}  "
              f"exp {float(m[3]):7.3f}")
    for label, t_info, _ in torches:
        print(f"torch [{label}]: PyTorch {t_info.get('torch', '?')} from {t_info.get('torch path', '?')}, "
              f"GLIBC_TUNABLES={t_info.get('GLIBC_TUNABLES', '?')}")
    print()

    head = (f"{'shape':16} {'dtype':8} {'op':13} {'thr':>3} {'ign%':>4} {'ms':>9} {'MB':>8} "
            f"{'GB/s':>7} {'roof ms':>9} {'of roof':>7}")
    for label, _, _ in torches:
        head += f" {label[:11]:>11} {'ratio':>6}"
    print(head)
    print("-" * len(head))
    for r in rows:
        k = key(r)
        ms = float(r["ms"])
        line = (f"{'(%d, %d)' % (k[0], k[1]):16} {k[2]:8} {k[3]:13} {k[4]:3d} {k[5]:4d} {ms:9.3f} "
                f"{float(r['bytes']) / 1e6:8.1f} {float(r['GBps']):7.2f} "
                f"{float(r['roofline_ms']):9.3f} {float(r['fraction']):7.3f}")
        for _, _, times in torches:
            # PyTorch has no in-place fused call: its fused time stands for that row
            tk = k if k[3] != "fused-inplace" else k[:3] + ("fused",) + k[4:]
            t_ms = times.get(tk)
            mark = "*" if k[3] == "fused-inplace" else " "
            line += (f" {t_ms:10.3f}{mark} {t_ms / ms:6.2f}" if t_ms is not None
                     else f" {'-':>11} {'-':>6}")
        print(line)
    print()
    print("MB: minimal traffic (logits read once; fused also writes the gradient once; plus the "
          "int64 targets).")
    print("roof ms: max(bytes / copy bandwidth, elements / exp rate) at that thread count; "
          "of roof = roof ms / ms.")
    print("A forward pass only reads, and read bandwidth exceeds copy bandwidth; a case that fits "
          "in the caches skips memory: both can pass 1.")
    if torches:
        print("ratio = PyTorch ms / libnll ms (above 1: libnll is faster). * PyTorch has no "
              "in-place fused call: its separate fused time is shown.")
    if args.plot_dir:
        plot(rows, torches, args.plot_dir)


def plot(rows, torches, out_dir):
    if not shutil.which("gnuplot"):
        print("(gnuplot not found: no plot)")
        return
    os.makedirs(out_dir, exist_ok=True)
    threads = sorted({int(r["threads"]) for r in rows})
    files = []
    for t in threads:
        path = os.path.join(out_dir, f"roofline-{t}t.tsv")
        with open(path, "w") as f:
            f.write("case\troofline\tlibnll" + "".join(f"\ttorch {lab}" for lab, _, _ in torches) + "\n")
            for r in rows:
                k = key(r)
                if k[4] != t or k[5] != 0:
                    continue
                bytes_ = float(r["bytes"])
                dt = "f32" if k[2] == "float32" else "bf16"
                cells = [f"{k[0]}x{k[1]} {dt} {k[3]}",
                         f"{bytes_ / float(r['roofline_ms']) / 1e6:.4f}", r["GBps"]]
                tk = k if k[3] != "fused-inplace" else k[:3] + ("fused",) + k[4:]
                for _, _, times in torches:
                    cells.append(f"{bytes_ / times[tk] / 1e6:.4f}" if tk in times else "?")
                f.write("\t".join(cells) + "\n")
        files.append(path)
    png = os.path.join(out_dir, "roofline.png")
    cmd = ["gnuplot", "-e",
           f"files='{' '.join(files)}'; threads='{' '.join(map(str, threads))}'; "
           f"ntorch={len(torches)}; out='{png}'", os.path.join(HERE, "roofline.gp")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode == 0:
        print(f"plot: {png}")
    else:
        print(f"(gnuplot failed: {result.stderr.strip()})", file=sys.stderr)


if __name__ == "__main__":
    main()
