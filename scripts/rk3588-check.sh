#!/usr/bin/env bash
# Checks an RK3588 board for Reel's NPU backend and compares it with Reel's CPU path, the way the
# original app reported itself: RAM, cold and warm load of both models, vision time per frame,
# tokens/s. Run it on the board (it cannot run elsewhere; the test suite only checks its syntax):
#
#   scripts/rk3588-check.sh VISION.rknn TEXT.rkllm VIDEO [FRAMES] [--gguf TEXT.gguf MMPROJ.gguf]
#
# It prints the NPU driver's version, where the runtime libraries are and which versions they
# are, then runs `reel VISION.rknn TEXT.rkllm VIDEO FRAMES` (the NPU) and, with --gguf, the same
# command line with the GGUF pair (the CPU), asking one question about the video, and prints
# both runs' stats as a table; then the NPU's one-shot mode (-p, --stats json) once. Environment: REEL (the reel binary; default build/reel, else reel
# on PATH), QUESTION (default "<image>Describe this video."), REEL_RKNN_LIB / REEL_RKLLM_LIB
# (runtime libraries outside the loader's search path). Logs stay in a temporary folder, named
# at the end.
set -euo pipefail

usage() {
  echo "usage: $0 VISION.rknn TEXT.rkllm VIDEO [FRAMES] [--gguf TEXT.gguf MMPROJ.gguf]" >&2
  exit 2
}

[ $# -ge 3 ] || usage
vision=$1 text=$2 video=$3
shift 3
frames=8
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
  frames=$1
  shift
fi
gguf_text="" gguf_mmproj=""
if [ $# -gt 0 ]; then
  [ "$1" = "--gguf" ] && [ $# -eq 3 ] || usage
  gguf_text=$2 gguf_mmproj=$3
fi
for f in "$vision" "$text" "$video" ${gguf_text:+"$gguf_text"} ${gguf_mmproj:+"$gguf_mmproj"}; do
  [ -r "$f" ] || { echo "$0: cannot read $f" >&2; exit 1; }
done

here=$(cd "$(dirname "$0")/.." && pwd)
reel=${REEL:-}
if [ -z "$reel" ]; then
  if [ -x "$here/build/reel" ]; then reel=$here/build/reel; else reel=$(command -v reel || true); fi
fi
[ -n "$reel" ] && [ -x "$reel" ] || { echo "$0: no reel binary: build it or set REEL" >&2; exit 1; }
question=${QUESTION:-"<image>Describe this video."}
logs=$(mktemp -d "${TMPDIR:-/tmp}/rk3588-check.XXXXXX")

echo "== board"
echo "machine:  $(uname -m), kernel $(uname -r)"
if [ -r /proc/device-tree/compatible ]; then
  echo "soc:      $(tr '\0' ' ' < /proc/device-tree/compatible)"
fi
[ "$(uname -m)" = "aarch64" ] || echo "warning: not an aarch64 machine; the NPU runs only on the board"

echo "== NPU driver"
driver=""
for f in /sys/kernel/debug/rknpu/version /sys/module/rknpu/version; do
  if [ -r "$f" ] && driver=$(cat "$f" 2>/dev/null) && [ -n "$driver" ]; then
    echo "version:  $driver ($f)"
    break
  fi
done
if [ -z "$driver" ]; then
  line=$(dmesg 2>/dev/null | grep -i -m1 -E "rknpu.*(version|driver)" || true)
  if [ -n "$line" ]; then
    echo "dmesg:    $line"
  else
    echo "version:  not found (try as root: /sys/kernel/debug/rknpu/version needs debugfs)"
  fi
fi

# Where the dynamic loader finds `name`, or the override's path.
find_library() {
  local name=$1 override=$2
  if [ -n "$override" ]; then echo "$override"; return; fi
  ldconfig -p 2>/dev/null | awk -v n="$name" '$1 == n { print $NF; exit }'
}

# The version strings the library carries (Rockchip's runtimes print them at start-up).
library_version() {
  strings "$1" 2>/dev/null | grep -m2 -i -E "$2" || echo "(no version string found)"
}

echo "== runtimes"
rknn_lib=$(find_library librknnrt.so "${REEL_RKNN_LIB:-}")
rkllm_lib=$(find_library librkllmrt.so "${REEL_RKLLM_LIB:-}")
for entry in "librknnrt.so|REEL_RKNN_LIB|$rknn_lib|librknnrt version|rknn_api version" \
             "librkllmrt.so|REEL_RKLLM_LIB|$rkllm_lib|rkllm-runtime version|rkllm version"; do
  IFS='|' read -r name env_var path pattern <<< "$entry"
  if [ -n "$path" ] && [ -r "$path" ]; then
    echo "$name: $path ($(stat -c %s "$path") bytes)"
    library_version "$path" "$pattern" | sed 's/^/    /'
  else
    echo "$name: NOT FOUND (install Rockchip's runtime, or set $env_var to its path)"
  fi
done

# Runs reel with the given model pair, the question then <exit> on stdin; logs to $logs/$1.*.
run_reel() {
  local label=$1 first=$2 second=$3
  printf '%s\n<exit>\n' "$question" >"$logs/$label.in"
  echo "== $label: $reel $first $second $video $frames"
  if "$reel" "$first" "$second" "$video" "$frames" <"$logs/$label.in" >"$logs/$label.out" \
       2>"$logs/$label.err"; then
    echo "answer: $(head -c 400 "$logs/$label.out")"
  else
    echo "FAILED (exit $?): $(tail -n 1 "$logs/$label.err")"
  fi
}

# One table row from a run's stderr (the stats lines Reel prints in the original app's mode).
stats_row() {
  local label=$1 err=$logs/$1.err
  [ -s "$err" ] || { printf '%-6s %s\n' "$label" "(no run)"; return; }
  local v_cold v_warm t_cold t_warm per_frame prefill decode ram
  v_cold=$(sed -n -E 's/^reel: vision .* cold +([0-9.]+) ms .*/\1/p' "$err" | head -n1)
  v_warm=$(sed -n -E 's/^reel: vision .* warm +([0-9.]+) ms.*/\1/p' "$err" | head -n1)
  t_cold=$(sed -n -E 's/^reel: text .* cold +([0-9.]+) ms .*/\1/p' "$err" | head -n1)
  t_warm=$(sed -n -E 's/^reel: text .* warm +([0-9.]+) ms.*/\1/p' "$err" | head -n1)
  per_frame=$(sed -n -E 's/.*\(([0-9.]+) ms\/frame\)\].*/\1/p' "$err" | head -n1)
  prefill=$(sed -n -E 's/^\[prompt [0-9]+ tokens, ([0-9.]+) tok\/s.*/\1/p' "$err" | head -n1)
  decode=$(sed -n -E 's/.*generated [0-9]+ tokens, ([0-9.]+) tok\/s.*/\1/p' "$err" | head -n1)
  ram=$(sed -n -E 's/.*peak RAM ([0-9.]+) MiB\]$/\1/p' "$err" | tail -n1)
  printf '%-6s %9s %7s %7s %7s %7s %10s %10s %10s\n' "$label" "${ram:--}" "${v_cold:--}" \
    "${v_warm:--}" "${t_cold:--}" "${t_warm:--}" "${per_frame:--}" "${prefill:--}" "${decode:--}"
}

run_reel npu "$vision" "$text"
grep -E "^reel: NPU:" "$logs/npu.err" || true
if [ -n "$gguf_text" ]; then
  run_reel cpu "$gguf_mmproj" "$gguf_text"
fi

# The one-shot path on the NPU (-p, stats as one JSON line): the same question, asked once.
echo "== npu one-shot: $reel -m $text --mmproj $vision --video $video --frames $frames -p ..."
if "$reel" -m "$text" --mmproj "$vision" --video "$video" --frames "$frames" -p "$question" \
     --stats json >"$logs/npu-oneshot.out" 2>"$logs/npu-oneshot.err"; then
  echo "answer: $(head -c 400 "$logs/npu-oneshot.out")"
  grep -E '^\{' "$logs/npu-oneshot.err" || true
else
  echo "FAILED (exit $?): $(tail -n 1 "$logs/npu-oneshot.err")"
fi

echo "== stats (ms unless named; RAM in MiB: Reel's peak resident memory)"
printf '%-6s %9s %7s %7s %7s %7s %10s %10s %10s\n' "path" "peak RAM" "vis-cold" "vis-warm" \
  "txt-cold" "txt-warm" "vis/frame" "prefill/s" "decode/s"
stats_row npu
[ -z "$gguf_text" ] || stats_row cpu
echo "logs: $logs"
