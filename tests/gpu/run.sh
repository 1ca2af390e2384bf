#!/usr/bin/env bash
# The prepared GPU check, one command on a machine with an NVIDIA GPU, nvcc and PyTorch with
# CUDA (no network needed); about 3-5 minutes on an H200. Builds for sm_90, then:
#   1. tests/gpu/test_gpu.py: every op, dtype and option on the GPU against the CPU, the error
#      cases each followed by a good call, asynchronous mode and a CUDA graph;
#   2. tests/gpu/test_state.cu: the backend's state -- a failed workspace reset tried again,
#      a floating target refused by the call in async mode, nll_context_sync per device, graph
#      replays against calls on another stream;
#   3. compute-sanitizer (memcheck, racecheck) on tests/gpu/sanitize.cu;
#   4. tests/gpu/bench_gpu.py: copy bandwidth, libnll vs PyTorch.
# The library is built with -DNLL_CUDA_TEST_HOOKS (test_state's injected reset failure; inert
# unless NLL_TEST_FAIL_WORKSPACE_RESET is set), which shipped builds do not have.
# Everything lands in REPORT_DIR (default build-gpu/report): report.txt (all of it) and one
# file per step. Exit status: the number of failed steps. Without cmake it builds with cc and
# nvcc directly; without a system dlpack/dlpack.h it uses the copy PyTorch ships.
#
# usage: tests/gpu/run.sh [REPORT_DIR]
set -uo pipefail
cd "$(dirname "$0")/../.."
report=${1:-build-gpu/report}
mkdir -p "$report"
report=$(cd "$report" && pwd)
build=build-gpu
python=${NLL_GPU_PYTHON:-python3}
export PYTHONUNBUFFERED=1 # a step cut off by its timeout keeps what it printed
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
# dlpack/dlpack.h: the system's, else PyTorch's copy (ATen/dlpack.h) under that name
dlpack=
for dir in /usr/include /usr/local/include ${CONDA_PREFIX:+$CONDA_PREFIX/include}; do
  [ -f "$dir/dlpack/dlpack.h" ] && dlpack=$dir && break
done
if [ -z "$dlpack" ]; then
  torch_dlpack=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include", "ATen", "dlpack.h"))' 2>/dev/null)
  if [ -f "$torch_dlpack" ]; then
    dlpack=$PWD/$build/dlpack-include
    mkdir -p "$dlpack/dlpack" && ln -sf "$torch_dlpack" "$dlpack/dlpack/dlpack.h"
  fi
fi
say "dlpack headers: ${dlpack:-not found}"

build_with_cmake() {
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNLL_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DNLL_BUILD_TESTS=ON -DNLL_BUILD_BENCH=OFF -DNLL_BUILD_TOOLS=OFF \
    -DCMAKE_CUDA_FLAGS=-DNLL_CUDA_TEST_HOOKS \
    ${dlpack:+-DDLPACK_INCLUDE_DIR=$dlpack} &&
  cmake --build "$build" -j"$(nproc)" --target nll test_cuda
}
build_without_cmake() { # the same library, CPU side with the reference kernels only
  local inc=(-Iinclude -Isrc ${dlpack:+-I$dlpack}) obj=$build/obj
  mkdir -p "$obj" "$build/lib" "$build/bin"
  local pids=() f
  for f in src/context.c src/tensor.c src/validate.c src/ops.c src/parallel.c src/cpu/arch.c src/cpu/ref.c; do
    cc -std=c11 -O2 -fPIC -fvisibility=hidden -DNLL_HAVE_CUDA -DNLL_BUILDING_SHARED "${inc[@]}" \
      -c "$f" -o "$obj/$(basename "$f" .c).o" & pids+=($!)
  done
  for f in src/cuda/*.cu; do
    nvcc -arch=sm_90 -std=c++17 -O3 -Xcompiler=-fPIC,-fvisibility=hidden -DNLL_HAVE_CUDA \
      -DNLL_CUDA_TEST_HOOKS -DNLL_BUILDING_SHARED "${inc[@]}" -c "$f" -o "$obj/$(basename "$f" .cu).cu.o" & pids+=($!)
  done
  for f in "${pids[@]}"; do wait "$f" || return 1; done
  nvcc -shared -cudart static -o "$build/lib/libnll.so" "$obj"/*.o -lpthread -lm &&
  cc -std=c11 -O2 "${inc[@]}" -Itests/unit tests/unit/test_cuda.c -L"$build/lib" -lnll \
    -Wl,-rpath,"$PWD/$build/lib" -lm -o "$build/bin/test_cuda"
}
build() {
  if [ -z "${NLL_GPU_NO_CMAKE:-}" ] && command -v cmake >/dev/null; then build_with_cmake
  else echo "without cmake: cc + nvcc"; build_without_cmake; fi &&
  nvcc -arch=sm_90 -Iinclude ${dlpack:+-I$dlpack} tests/gpu/sanitize.cu -L"$build/lib" -lnll \
    -Xlinker -rpath="$PWD/$build/lib" -o "$build/sanitize" &&
  nvcc -arch=sm_90 -Iinclude ${dlpack:+-I$dlpack} tests/gpu/test_state.cu -L"$build/lib" -lnll \
    -Xlinker -rpath="$PWD/$build/lib" -o "$build/test_state"
}
export build dlpack
export -f build build_with_cmake build_without_cmake
step build 240 bash -c build
export NLL_LIBRARY=$PWD/$build/lib/libnll.so PYTHONPATH=$PWD/python${PYTHONPATH:+:$PYTHONPATH}
step unit 60 "$build/bin/test_cuda"
step correctness 150 "$python" tests/gpu/test_gpu.py
step state 60 "$build/test_state"
step sanitize-run 30 "$build/sanitize"
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -n "$sanitizer" ]; then
  step memcheck 90 "$sanitizer" --tool memcheck --error-exitcode 1 "$build/sanitize"
  step racecheck 90 "$sanitizer" --tool racecheck --error-exitcode 1 "$build/sanitize"
else
  say "== compute-sanitizer not found: memcheck and racecheck skipped"
fi
step bench 150 "$python" tests/gpu/bench_gpu.py
say "== $failed step(s) failed; report in $report"
exit "$failed"
