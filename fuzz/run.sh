#!/usr/bin/env bash
# Runs each libFuzzer target for a while: builds build-fuzz with clang (NLL_FUZZ=ON, ASan+UBSan,
# no CUDA backend: no fuzzer input reaches a GPU, and nvcc's host compiler need not know
# clang's flags) and fuzzes every fuzz/fuzz_<name>.c from its committed corpus, new inputs going
# to build-fuzz/corpus/<name> (merge the useful ones into fuzz/corpus/<name> by hand:
# build-fuzz/bin/fuzz_<name> -merge=1 fuzz/corpus/<name> build-fuzz/corpus/<name>).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [NAME...]      default 300 s, every target
#
# Prints each target's executions per second; stops at the first failure (a crash, a sanitizer
# report, a broken invariant, a timeout or running out of memory) with a non-zero status, the
# log's tail and the input that did it, as a file under build-fuzz/artifacts/ and in base64, so
# that a CI log alone is enough to add it to the corpus:
#   echo BASE64 | base64 -d > fuzz/corpus/<name>/<sha1 of the file>
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
shift || true
CC=${FUZZ_CC:-clang} cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNLL_SANITIZE=ON \
  -DNLL_FUZZ=ON -DNLL_CUDA=OFF -DNLL_BUILD_TESTS=OFF -DNLL_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in build-fuzz/bin/fuzz_*; do names+=("${f##*/fuzz_}"); done
fi
# A UBSan report is a failure, with its stack (the build also has -fno-sanitize-recover).
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
for name in "${names[@]}"; do
  [ -x "build-fuzz/bin/fuzz_$name" ] || { echo "fuzz_$name: no such target"; exit 2; }
  mkdir -p "build-fuzz/corpus/$name" "fuzz/corpus/$name" "build-fuzz/artifacts/$name"
  log=build-fuzz/fuzz-$name.log
  artifacts=build-fuzz/artifacts/$name
  rm -f "$artifacts"/*
  if ! (cd build-fuzz && "bin/fuzz_$name" -max_total_time="$seconds" \
          -rss_limit_mb=4096 -timeout=25 -print_final_stats=1 -artifact_prefix="artifacts/$name/" \
          "corpus/$name" "../fuzz/corpus/$name") >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz_$name: FAILED (log: $log):"
    grep -E 'runtime error|ERROR: |fuzz invariant failed|SUMMARY: ' "$log" | head -5 || true
    found=0
    for input in "$artifacts"/*; do
      [ -f "$input" ] || continue
      found=1
      echo "fuzz_$name: reproducer $input ($(stat -c %s "$input") bytes), sha1 $(sha1sum "$input" | cut -c1-40), base64:"
      base64 -w0 "$input"
      echo
      echo "fuzz_$name: replay with build-fuzz/bin/fuzz_$name $input"
    done
    [ "$found" = 1 ] || echo "fuzz_$name: no reproducer was written (see the log)"
    exit 1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo '?')
  seed=$(grep -o 'Seed: [0-9]*' "$log" | head -1 | grep -o '[0-9]*$' || echo '?')
  echo "fuzz_$name: clean, $execs executions in $seconds s ($rate/s), coverage $cov, seed $seed"
done
