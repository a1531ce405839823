#!/usr/bin/env bash
# Backlog replay memory check (issue "Never lose an event", point 8): spools EVENTS events
# (default 500,000) into the real capi-relay binary while the fake LinkedIn answers 503, restarts
# the relay with LinkedIn answering again, and samples VmRSS from /proc/<pid>/status while the
# backlog drains. Prints the figures; fails when RSS reaches 128 MiB or an event is missing.
#   bench/backlog_rss.sh [BUILD_DIR] [EVENTS]
# BUILD_DIR defaults to ./build and must hold bin/integration_test (CAPI_RELAY_TESTS=ON).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
events="${2:-500000}"
bin="$build/bin/integration_test"
if [[ ! -x "$bin" ]]; then
  echo "backlog_rss: $bin not found; build with: cmake --build $build --target integration_test" >&2
  exit 2
fi
CAPI_RELAY_BACKLOG_EVENTS="$events" "$bin" --gtest_filter='Backlog.ReplayingALargeSpoolKeepsRssBounded' \
  | grep -E '^\[ *(figures|OK|FAILED|PASSED) *\]|Failure|Which is|Expected'
