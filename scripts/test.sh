#!/usr/bin/env bash
# Installs what is missing, builds everything (relay, tests, benchmarks) in build/, and runs every
# test with ctest: the primary stage; then the browser snippet in headless Chromium against the
# real relay (tests/browser/run.sh --real). Then, with clang (clang++-14 and its sanitizer/fuzzer
# runtimes; installed from Debian when missing and possible), one more build in build-asan/
# (AddressSanitizer + UndefinedBehaviorSanitizer + libFuzzer, no benchmarks) runs the unit and
# integration tests again under the sanitizers and fuzzes each parser for a bounded time.
# Exit code non-zero on any failure. Every stage has a time cap, later stages are skipped (with a
# message) when their tools are missing or the time budget is spent, and a table of stage
# timings is printed at the end.
#
# Environment: CAPI_RELAY_CI_BUDGET (seconds for the whole run, default 4800 = 80 min, under CI's 90),
# CAPI_RELAY_FUZZ_SECONDS (per fuzz target, default 25), CAPI_RELAY_SKIP_SANITIZE=1 (primary only),
# CAPI_RELAY_STAGES (space-separated subset to run, e.g. "sanitize-build sanitize-tests fuzz";
# default: every stage).
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
# Paths relative to the checkout, so a fresh clone elsewhere reuses the compiler cache.
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
jobs=$(nproc)
budget=${CAPI_RELAY_CI_BUDGET:-4800}
fuzz_seconds=${CAPI_RELAY_FUZZ_SECONDS:-25}
t_start=$(date +%s)

stage_names=()
stage_secs=()
stage_results=()
print_timings() {
  echo
  echo "stage timings:"
  printf '  %-22s %8s  %s\n' stage seconds result
  local i
  for i in "${!stage_names[@]}"; do
    printf '  %-22s %8s  %s\n' "${stage_names[$i]}" "${stage_secs[$i]}" "${stage_results[$i]}"
  done
  printf '  %-22s %8s\n' total "$(($(date +%s) - t_start))"
}
trap print_timings EXIT

# run_stage NAME CAP_SECONDS FUNCTION: runs FUNCTION in a child bash under `timeout` (the stage
# cap), or skips it when the cap no longer fits in the budget; records its time and result.
run_stage() {
  local name=$1 cap=$2 fn=$3 left rc start
  if [ -n "${CAPI_RELAY_STAGES:-}" ] && [[ " $CAPI_RELAY_STAGES " != *" $name "* ]]; then
    skip_stage "$name" "not in CAPI_RELAY_STAGES"
    return 0
  fi
  left=$((budget - ($(date +%s) - t_start)))
  # A stage whose cap no longer fits in the budget is skipped rather than cut short: a shortened
  # cap would turn a slow machine into a failure instead of a smaller run.
  if [ "$left" -lt "$cap" ]; then
    echo "== $name: skipped, ${left}s left of the time budget (${budget}s), the stage may need ${cap}s"
    stage_names+=("$name"); stage_secs+=(0); stage_results+=("skipped (budget)")
    return 0
  fi
  echo "== $name (cap ${cap}s)"
  start=$(date +%s)
  set +e
  timeout -k 30 "$cap" bash -c "set -euo pipefail; $fn"
  rc=$?
  set -e
  stage_names+=("$name"); stage_secs+=($(($(date +%s) - start)))
  if [ "$rc" -eq 0 ]; then
    stage_results+=("ok")
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    stage_results+=("TIMED OUT after ${cap}s")
  else
    stage_results+=("FAILED ($rc)")
  fi
  return "$rc"
}
skip_stage() {
  echo "== $1: skipped: $2"
  stage_names+=("$1"); stage_secs+=(0); stage_results+=("skipped ($2)")
}

# ---- stage 1 (primary): the normal build and every test ----------------------------------------
stage_primary() {
  scripts/install-deps.sh test
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAPI_RELAY_TESTS=ON -DCAPI_RELAY_BENCH=ON >/dev/null
  cmake --build build -j"$jobs"
  cd build
  ctest --output-on-failure --timeout 600 -j"$jobs"
}

# ---- stage 1b: the browser snippet in headless Chromium against the real relay ---------------
stage_browser() {
  tests/browser/run.sh --real
}

# ---- stage 2: clang build with ASan + UBSan + libFuzzer (no benchmarks) ------------------------
have_clang() {
  command -v clang++-14 >/dev/null 2>&1 || return 1
  # The fuzzer and sanitizer runtimes (libclang-rt-14-dev) must link.
  echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' |
    clang++-14 -x c++ -fsanitize=fuzzer,address,undefined -o /tmp/capi-relay-clang-probe - \
      >/dev/null 2>&1 || return 1
  rm -f /tmp/capi-relay-clang-probe
}
install_clang() {
  [ "$(id -u)" -eq 0 ] || return 1
  command -v apt-get >/dev/null 2>&1 || return 1
  echo "installing clang-14 libclang-rt-14-dev (sanitizer and fuzzing stages)"
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang-14 \
    libclang-rt-14-dev >/dev/null 2>&1
}
stage_sanitize_build() {
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++-14 -DCAPI_RELAY_SANITIZE=ON -DCAPI_RELAY_FUZZ=ON \
    -DCAPI_RELAY_TESTS=ON -DCAPI_RELAY_BENCH=OFF >/dev/null
  cmake --build build-asan -j"$jobs"
}
# ---- stage 3: unit + integration tests and the stored fuzz inputs, under the sanitizers --------
stage_sanitize_tests() {
  export ASAN_OPTIONS=detect_leaks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  cd build-asan
  # Tests that bound resident memory ("Rss" in the name) mean nothing under ASan's shadow memory
  # and quarantine; the primary stage runs them.
  ctest --output-on-failure --timeout 600 -j"$jobs" -E 'Rss'
}
# ---- stage 4: bounded fuzzing of each target ---------------------------------------------------
# New inputs go to build-asan/fuzz-corpus/<target> (the seeds in tests/fuzz are read only); a
# crash leaves build-asan/fuzz-artifacts/<target>-crash-*: reproduce with
# `build-asan/bin/<target>_fuzz FILE`, fix, and keep FILE in tests/fuzz/regressions/<target>/.
stage_fuzz() {
  export ASAN_OPTIONS=detect_leaks=1:symbolize=1
  local failed=0 f name short work
  mkdir -p build-asan/fuzz-artifacts
  for f in build-asan/bin/*_fuzz; do
    name=$(basename "$f")
    short=${name%_fuzz}
    work=build-asan/fuzz-corpus/$short
    mkdir -p "$work"
    local dirs=("$work" "tests/fuzz/corpus/$short")
    [ -d "tests/fuzz/regressions/$short" ] && dirs+=("tests/fuzz/regressions/$short")
    echo "-- $name for ${fuzz_seconds}s"
    if ! timeout -k 10 $((fuzz_seconds + 120)) "$f" -max_total_time="$fuzz_seconds" -timeout=10 \
        -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="build-asan/fuzz-artifacts/$short-" "${dirs[@]}" \
        >"build-asan/fuzz-artifacts/$short.log" 2>&1; then
      echo "!! $name failed; last lines of build-asan/fuzz-artifacts/$short.log:"
      tail -n 40 "build-asan/fuzz-artifacts/$short.log"
      failed=1
    else
      grep -E '^(stat::number_of_executed_units|Done )' "build-asan/fuzz-artifacts/$short.log" || true
    fi
  done
  return "$failed"
}
export jobs fuzz_seconds
export -f stage_primary stage_browser stage_sanitize_build stage_sanitize_tests stage_fuzz

run_stage primary 2400 stage_primary
run_stage browser 600 stage_browser

skip_sanitize=""
if [ "${CAPI_RELAY_SKIP_SANITIZE:-0}" = 1 ]; then
  skip_sanitize="CAPI_RELAY_SKIP_SANITIZE=1"
elif ! have_clang && ! { install_clang && have_clang; }; then
  skip_sanitize="clang++-14 with libclang-rt-14-dev not available"
fi
if [ -n "$skip_sanitize" ]; then
  for s in sanitize-build sanitize-tests fuzz; do skip_stage "$s" "$skip_sanitize"; done
else
  run_stage sanitize-build 1200 stage_sanitize_build
  run_stage sanitize-tests 900 stage_sanitize_tests
  run_stage fuzz $((6 * (fuzz_seconds + 30))) stage_fuzz
fi
