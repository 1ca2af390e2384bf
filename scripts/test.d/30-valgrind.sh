#!/usr/bin/env bash
# valgrind memcheck over the C unit tests and the fuzz corpus replays, in a plain debug build
# (no sanitizers: valgrind and ASan do not mix). Any error, or a definite leak, fails the run.
# The Python conformance suite is left out: the interpreter itself is not memcheck-clean.
# To fit CI's time, the unit tests run with NLL_TEST_SMALL=1 (tenfold fewer classes) and each
# corpus replays one input in REPLAY_STRIDE (default 6, in name order); the ASan and TSan builds
# replay every input. REPLAY_STRIDE=1 replays them all.
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=$(nproc)
dir=build-valgrind
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DNLL_SANITIZE=OFF -DNLL_BUILD_BENCH=OFF -DNLL_CUDA=OFF >/dev/null
cmake --build "$dir" -j"$jobs" >/dev/null

vg=(valgrind --tool=memcheck --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
    --track-origins=yes --quiet)
run() {
  local name=$1; shift
  local start=$SECONDS
  local log=$dir/valgrind-${name%% *}.log
  if ! "${vg[@]}" "$@" >"$log" 2>&1; then
    cat "$log"
    echo "valgrind: $name FAILED"
    return 1
  fi
  echo "valgrind: $name clean ($((SECONDS - start)) s)"
}

stride=${REPLAY_STRIDE:-6}
status=0
for t in "$dir"/bin/test_*; do
  NLL_TEST_SMALL=1 run "$(basename "$t")" "$t" || status=1
done
for r in "$dir"/bin/replay_*; do
  name=${r##*/replay_}
  corpus=fuzz/corpus/$name
  [ -d "$corpus" ] || continue
  mapfile -t inputs < <(find "$corpus" -maxdepth 1 -type f ! -name '.*' | LC_ALL=C sort |
                        awk -v s="$stride" 'NR % s == 1 || s == 1')
  [ ${#inputs[@]} -gt 0 ] || continue
  run "replay_$name (${#inputs[@]} inputs)" "$r" "${inputs[@]}" || status=1
done
exit $status
