#!/usr/bin/env bash
# The CPU benchmark in one command: builds (Release), measures the machine (copy and read
# bandwidth, vector exp rate) and every case with libnll, then the same cases with PyTorch when
# it imports -- Debian's with huge-page malloc and as shipped, and a newer one from
# build/bench-venv if there is one -- and prints one merged table. Files land in BUILD/bench/:
# the raw TSVs, report.txt and roofline.png (gnuplot).
#
# usage: bench/run.sh [--quick]
#   NLL_BENCH_BUILD_DIR  build directory (default build)
#   NLL_BENCH_THREADS    thread counts (default 1,2)
#   NLL_ARCH             force the library's instruction set (avx2, ref)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=()
for arg in "$@"; do
  case $arg in
    --quick) quick=(--quick) ;;
    *) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
  esac
done
build=${NLL_BENCH_BUILD_DIR:-build}
threads=${NLL_BENCH_THREADS:-1,2}
out=$build/bench
start=$SECONDS

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target nll_bench >/dev/null
mkdir -p "$out"
rm -f "$out"/*.tsv "$out"/roofline.png "$out"/report.txt

# Without huge pages this VM's page faults on PyTorch's freshly allocated outputs dominate its
# time; both sides get the same malloc setting, and PyTorch is also run as shipped.
huge=glibc.malloc.hugetlb=1
echo "== libnll ($threads threads)" >&2
GLIBC_TUNABLES=$huge "$build/bin/nll_bench" "${quick[@]}" --threads "$threads" >"$out/libnll.tsv"

report_args=()
run_torch() { # python label file [GLIBC_TUNABLES value or empty]
  local python=$1 label=$2 file=$3 tunables=$4
  echo "== PyTorch [$label]" >&2
  if [ -n "$tunables" ]; then
    GLIBC_TUNABLES=$tunables "$python" bench/torch_bench.py "${quick[@]}" --threads "$threads" >"$file"
  else
    env -u GLIBC_TUNABLES "$python" bench/torch_bench.py "${quick[@]}" --threads "$threads" >"$file"
  fi
  report_args+=(--torch "$label=$file")
}
torch_version() { "$1" -c 'import torch; print(".".join(torch.__version__.split(".")[:2]))' 2>/dev/null; }

if v=$(torch_version /usr/bin/python3); then
  run_torch /usr/bin/python3 "$v huge" "$out/torch-debian-hugetlb.tsv" "$huge"
  run_torch /usr/bin/python3 "$v as-is" "$out/torch-debian-shipped.tsv" ""
else
  echo "== PyTorch: /usr/bin/python3 cannot import torch (apt-get install python3-torch)" >&2
fi
venv=$build/bench-venv/bin/python
if [ -x "$venv" ] && v=$(torch_version "$venv"); then
  run_torch "$venv" "$v huge" "$out/torch-venv-hugetlb.tsv" "$huge"
fi

/usr/bin/python3 bench/report.py "$out/libnll.tsv" "${report_args[@]}" --plot-dir "$out" |
  tee "$out/report.txt"
echo "bench/run.sh: $((SECONDS - start)) s; files in $out/"
