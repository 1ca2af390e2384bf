#!/usr/bin/env bash
# Installs the build into a scratch prefix, then builds examples/ against it twice: through the
# CMake package (find_package(nll)) and through pkg-config. Both programs must run.
set -euo pipefail
build_dir=$1
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null

cmake -S "$source_dir/examples" -B "$scratch/cmake" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/cmake" >/dev/null
LD_LIBRARY_PATH="$scratch/prefix/lib:$scratch/prefix/lib64:${LD_LIBRARY_PATH:-}" "$scratch/cmake/cross_entropy"

export PKG_CONFIG_PATH="$scratch/prefix/lib/pkgconfig:$scratch/prefix/lib64/pkgconfig"
cc -std=c11 -Wall -Wextra -Werror "$source_dir/examples/cross_entropy.c" \
   $(pkg-config --cflags --libs nll) -o "$scratch/pc_example"
LD_LIBRARY_PATH="$scratch/prefix/lib:$scratch/prefix/lib64:${LD_LIBRARY_PATH:-}" "$scratch/pc_example"
echo "install: CMake package and pkg-config consumers built and ran"
