#!/usr/bin/env bash
# Fuzzes every libFuzzer harness (fuzz/fuzz_*.c) for a short while under ASan+UBSan, starting
# from the committed corpora: ctest's fuzz.* only replays those, and new code paths are where
# new bugs are. FUZZ_SECONDS per target (default 60; with the clang build about 5 minutes in
# all). Any crash, sanitizer report, broken invariant, timeout or memory blow-up fails the run
# and prints the input in base64 (fuzz/run.sh), to be added to fuzz/corpus/<name>/ as a
# regression once fixed.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec fuzz/run.sh "${FUZZ_SECONDS:-60}"
