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

# stats LOG: one line with a run's totals, from libFuzzer's final stats and last status line.
stats() {
  local execs rate last
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$1" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$1" | tail -1)
  last=$(grep -E '^#[0-9]+' "$1" | tail -1)
  echo "execs ${execs:-?}, ${rate:-?}/s, cov $(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")," \
    "corpus $(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$last")"
}

# why_failed NAME LOG ARTIFACTS: libFuzzer's reason, the first frames of its stack (past the
# fuzzer's and sanitizers' own) and each saved input (base64 when small), so that a failure seen
# only in a CI log can be reproduced: base64 -d > input && build-fuzz/NAME input.
why_failed() {
  local name=$1 log=$2 artifacts=$3 f
  echo "== $name failed:"
  grep -E '^(==[0-9]+== ?ERROR|SUMMARY):|ERROR: libFuzzer' "$log" | head -4
  grep -E '^ +#[0-9]+ ' "$log" | grep -v -E 'fuzzer::|__sanitizer|__asan|__interceptor' |
    head -12 | cut -c1-160
  for f in "$artifacts"*; do
    [[ -f $f ]] || continue
    echo "input $(basename "$f"), $(stat -c %s "$f") bytes:"
    if [[ $(stat -c %s "$f") -le 12000 ]]; then base64 -w 0 "$f"; echo; fi
  done
}

status=0
summary=()
failures=()
for fuzzer in "${fuzzers[@]}"; do
  seeds="$root/fuzz/corpus/${fuzzer%_fuzz}"
  work="$build/corpus/$fuzzer"      # new inputs go here, never into the committed seeds
  artifacts="$build/artifacts/$fuzzer/"
  mkdir -p "$work" "$artifacts"
  dirs=("$work")
  [[ -d "$seeds" ]] && dirs+=("$seeds")
  log="$build/logs/$fuzzer.log"
  mkdir -p "$build/logs"
  echo "== $fuzzer: ${seconds}s"
  result=ok
  if ! "$build/$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 \
       -artifact_prefix="$artifacts" -print_final_stats=1 "${dirs[@]}" 2>&1 | tee "$log"; then
    echo "FAILED: $fuzzer (inputs in $artifacts)" >&2
    result=FAILED
    status=1
    failures+=("$(why_failed "$fuzzer" "$log" "$artifacts")")
  fi
  summary+=("$(printf '%-16s %-7s %s' "$fuzzer" "$result" "$(stats "$log")")")
done
echo "== fuzzing summary (execs, execs/s, coverage, corpus)"
printf '%s\n' "${summary[@]}"
# A CI log is often read from its end only: the reason and the input go last.
[[ ${#failures[@]} -eq 0 ]] || printf '%s\n' "${failures[@]}"
exit $status
