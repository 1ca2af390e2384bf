#!/usr/bin/env bash
# Builds and runs the CPU benchmark, then PyTorch on the same cases when it is importable.
# usage: bench/run.sh [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-1}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target nll_bench >/dev/null
build/bin/nll_bench "$threads"
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  /usr/bin/python3 bench/torch_bench.py "$threads"
fi
