#!/usr/bin/env bash
# The long suite: tests too heavy for CI (4 GiB of memory, about a minute on two cores).
# Builds the library in build-long (release) and runs tests/long/test_*.c against it.
#   tests/long/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build-long -DCMAKE_BUILD_TYPE=Release -DNLL_BUILD_TESTS=OFF -DNLL_BUILD_TOOLS=OFF \
  -DNLL_BUILD_BENCH=OFF >/dev/null
cmake --build build-long -j"$(nproc)" --target nll >/dev/null
dlpack=$(grep -m1 '^DLPACK_INCLUDE_DIR:' build-long/CMakeCache.txt | cut -d= -f2)
status=0
for src in tests/long/test_*.c; do
  name=$(basename "$src" .c)
  cc -std=c11 -O2 -Wall -Wextra -Werror -Iinclude ${dlpack:+-I"$dlpack"} "$src" -o "build-long/$name" \
    -Lbuild-long/lib -lnll -lm -Wl,-rpath,"$PWD/build-long/lib"
  start=$SECONDS
  "build-long/$name" || status=1
  echo "$name: $((SECONDS - start)) s"
done
exit $status
