#!/usr/bin/env bash
# The prepared GPU check, one command on a machine with an NVIDIA GPU, nvcc and PyTorch with
# CUDA (no network needed); about 3-5 minutes on an H200. Builds for sm_90, then:
#   1. tests/gpu/test_gpu.py: every op, dtype and option on the GPU against the CPU, the error
#      cases each followed by a good call, asynchronous mode and a CUDA graph;
#   2. compute-sanitizer (memcheck, racecheck) on tests/gpu/sanitize.cu;
#   3. tests/gpu/bench_gpu.py: copy bandwidth, libnll vs PyTorch.
# Everything lands in REPORT_DIR (default build-gpu/report): report.txt (all of it) and one
# file per step. Exit status: the number of failed steps.
#
# usage: tests/gpu/run.sh [REPORT_DIR]
set -uo pipefail
cd "$(dirname "$0")/../.."
report=${1:-build-gpu/report}
mkdir -p "$report"
report=$(cd "$report" && pwd)
build=build-gpu
python=${NLL_GPU_PYTHON:-python3}
log="$report/report.txt"
: >"$log"
say() { echo "$@" | tee -a "$log"; }
failed=0
step() { # name timeout command...: runs, keeps its output, records pass/fail
  local name=$1 limit=$2
  shift 2
  local began=$SECONDS
  say "== $name"
  timeout "$limit" "$@" >"$report/$name.txt" 2>&1
  local rc=$?
  cat "$report/$name.txt" >>"$log"
  tail -n 25 "$report/$name.txt"
  if [ $rc -eq 0 ]; then say "== $name: passed ($((SECONDS - began)) s)"
  else say "== $name: FAILED (exit $rc, $((SECONDS - began)) s)"; failed=$((failed + 1)); fi
}

say "libnll GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$log"
nvcc --version | tail -1 | tee -a "$log"

step preflight 60 "$python" -c 'import sys, numpy, torch
print("python", sys.version.split()[0], "numpy", numpy.__version__, "torch", torch.__version__,
      "cuda", torch.version.cuda, "devices", torch.cuda.device_count())
sys.exit(0 if torch.cuda.is_available() else 1)'
step build 300 bash -c "cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DNLL_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DNLL_BUILD_TESTS=ON -DNLL_BUILD_BENCH=OFF -DNLL_BUILD_TOOLS=OFF \
  && cmake --build $build -j\$(nproc) --target nll test_cuda \
  && nvcc -arch=sm_90 -Iinclude tests/gpu/sanitize.cu -L$build/lib -lnll \
       -Xlinker -rpath=$PWD/$build/lib -o $build/sanitize"
export NLL_LIBRARY=$PWD/$build/lib/libnll.so PYTHONPATH=$PWD/python${PYTHONPATH:+:$PYTHONPATH}
step unit 60 "$build/bin/test_cuda"
step correctness 240 "$python" tests/gpu/test_gpu.py
step sanitize-run 60 "$build/sanitize"
if command -v compute-sanitizer >/dev/null; then
  step memcheck 180 compute-sanitizer --tool memcheck --error-exitcode 1 "$build/sanitize"
  step racecheck 180 compute-sanitizer --tool racecheck --error-exitcode 1 "$build/sanitize"
else
  say "== compute-sanitizer not found: memcheck and racecheck skipped"
fi
step bench 240 "$python" tests/gpu/bench_gpu.py
say "== $failed step(s) failed; report in $report"
exit "$failed"
