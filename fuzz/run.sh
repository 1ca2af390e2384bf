#!/usr/bin/env bash
# Runs each libFuzzer target for a while: builds build-fuzz with clang (NLL_FUZZ=ON, ASan+UBSan)
# and fuzzes every fuzz/fuzz_<name>.c from its committed corpus, new inputs going to
# build-fuzz/corpus/<name> (merge the useful ones into fuzz/corpus/<name> by hand:
# build-fuzz/bin/fuzz_<name> -merge=1 fuzz/corpus/<name> build-fuzz/corpus/<name>).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [NAME...]      default 300 s, every target
#
# Prints each target's executions; stops at the first crash (the input is in build-fuzz/).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
shift || true
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNLL_SANITIZE=ON -DNLL_FUZZ=ON \
  -DNLL_BUILD_TESTS=OFF -DNLL_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in build-fuzz/bin/fuzz_*; do names+=("${f##*/fuzz_}"); done
fi
for name in "${names[@]}"; do
  mkdir -p "build-fuzz/corpus/$name" "fuzz/corpus/$name"
  log=build-fuzz/fuzz-$name.log
  (cd build-fuzz && "bin/fuzz_$name" -max_total_time="$seconds" -jobs=1 -workers=1 \
     -rss_limit_mb=4096 -timeout=25 -print_final_stats=1 "corpus/$name" "../fuzz/corpus/$name") \
     >"$log" 2>&1 || { tail -40 "$log"; echo "fuzz_$name: FAILED (log: $log)"; exit 1; }
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  echo "fuzz_$name: clean, $execs executions in $seconds s"
done
