#!/usr/bin/env bash
# Installs what the build needs, builds libnll and the nll tool, and runs `nll demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/bin/nll demo "$@"
