#!/usr/bin/env bash
# Builds every libFuzzer target (fuzz/CMakeLists.txt, reel_fuzzer()) with clang and runs each
# for a bounded time from its seed corpus. Fails on any crash, sanitizer report, leak, timeout
# or out-of-memory. Crash inputs are kept under build-fuzz/artifacts/<target>/.
# Usage: FUZZ_SECONDS=60 FUZZ_JOBS=2 scripts/fuzz-ci.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-2}

# clang 14 and its runtime (libFuzzer, sanitizers) from Debian 12, plus the usual build deps.
"$root/scripts/install-deps.sh" clang libclang-rt-14-dev

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DREEL_FUZZ=ON -DREEL_TESTS=OFF
mapfile -t fuzzers < <(grep -v '^$' "$build/fuzzers.txt")
[[ ${#fuzzers[@]} -gt 0 ]] || { echo "no fuzzer targets registered" >&2; exit 1; }
cmake --build "$build" -j"$jobs" --target "${fuzzers[@]}"

status=0
for fuzzer in "${fuzzers[@]}"; do
  seeds="$root/fuzz/corpus/${fuzzer%_fuzz}"
  work="$build/corpus/$fuzzer"      # new inputs go here, never into the committed seeds
  artifacts="$build/artifacts/$fuzzer/"
  mkdir -p "$work" "$artifacts"
  dirs=("$work")
  [[ -d "$seeds" ]] && dirs+=("$seeds")
  echo "== $fuzzer: ${seconds}s"
  if ! "$build/$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 \
       -artifact_prefix="$artifacts" -print_final_stats=1 "${dirs[@]}"; then
    echo "FAILED: $fuzzer (inputs in $artifacts)" >&2
    status=1
  fi
done
exit $status
