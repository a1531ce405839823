#!/usr/bin/env bash
# Installs what is missing, builds everything (relay, tests, benchmarks) in build/, and runs every
# test with ctest. Exit code non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAPI_RELAY_TESTS=ON -DCAPI_RELAY_BENCH=ON >/dev/null
cmake --build build -j"$jobs"
cd build
ctest --output-on-failure --timeout 600 -j"$jobs"
