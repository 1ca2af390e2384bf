#!/usr/bin/env bash
# Fuzzes every libFuzzer harness (fuzz/fuzz_*.c) for a short while under ASan+UBSan, starting
# from the committed corpora: ctest's fuzz.* only replays those, and new code paths are where
# new bugs are. fuzz_api (every entry point, the slowest per input) gets FUZZ_SECONDS (default
# 60), each file-reader harness FUZZ_READER_SECONDS (default 30: tens of thousands of inputs a
# second); with the clang build about 5 minutes in all. Any crash, sanitizer report, broken
# invariant, timeout or memory blow-up fails the run and prints the input in base64
# (fuzz/run.sh), to be added to fuzz/corpus/<name>/ as a regression once fixed.
set -euo pipefail
cd "$(dirname "$0")/../.."
readers=()
for src in fuzz/fuzz_*.c; do
  name=${src##*/fuzz_}
  name=${name%.c}
  [ "$name" = api ] || readers+=("$name")
done
fuzz/run.sh "${FUZZ_SECONDS:-60}" api
[ ${#readers[@]} -eq 0 ] || fuzz/run.sh "${FUZZ_READER_SECONDS:-30}" "${readers[@]}"
