#!/usr/bin/env bash
# ThreadSanitizer: the C unit tests (test_threads calls every op from many threads at once,
# each with its own context, on shared inputs) and the fuzz corpus replays, in a -fsanitize=thread
# build. Any report fails the run (halt_on_error, exitcode). The other unit tests run with
# NLL_TEST_SMALL=1 (tenfold fewer classes) to fit CI's time; test_threads keeps its full size,
# which spans two parallel blocks, so the library's own threads run inside the test's.
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=$(nproc)
dir=build-tsan
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNLL_SANITIZE=OFF -DNLL_BUILD_BENCH=OFF \
  -DNLL_BUILD_TOOLS=OFF -DNLL_CUDA=OFF -DCMAKE_C_FLAGS="-fsanitize=thread -fno-omit-frame-pointer" \
  -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread >/dev/null
cmake --build "$dir" -j"$jobs" >/dev/null
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1"
(cd "$dir" && ctest --output-on-failure -j"$jobs" -R '^unit\.test_threads')
(cd "$dir" && NLL_TEST_SMALL=1 ctest --output-on-failure -j"$jobs" -R '^(unit\.|fuzz\.)' -E test_threads)
