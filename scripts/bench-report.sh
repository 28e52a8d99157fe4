#!/usr/bin/env bash
# The numbers of the closing notes, measured side by side in one run: text decode against the
# memory-bandwidth roofline (Q8_0 and Q4_K_M), vision encoding against the FMA peak, and time to
# first token for a video, native vs one image per frame. Uses 2B-shaped models with random
# weights written by tools/reference/make_bench_model.py into models/bench/ (see its --help).
# Usage: [REEL_BENCH_CLIP=video] scripts/bench-report.sh [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-2}
reel=./build/reel
b=models/bench
for f in 2b-q8_0.gguf 2b-q4_k_m.gguf 2b-mmproj-f16.gguf; do
  [[ -f $b/$f ]] || { echo "missing $b/$f: see tools/reference/make_bench_model.py --help" >&2; exit 1; }
done
clip=${REEL_BENCH_CLIP:-tests/data/media/clip-10s-720x358-h264.mp4}  # the real 10 s clip

echo "== text decode, $t threads"
$reel bench -m $b/2b-q8_0.gguf -t "$t" -p 64 -n 32 -r 2
$reel bench -m $b/2b-q4_k_m.gguf -t "$t" -p 64 -n 32 -r 2
echo "== vision encoder, $t threads"
$reel bench --mmproj $b/2b-mmproj-f16.gguf -t "$t" -r 1 --image-size 448x448 --image-size 1280x720
echo "== video, 8 frames, time to first token, $t threads"
for mode in "" "--video-as-images"; do
  echo "-- ${mode:-native}"
  $reel -m $b/2b-q4_k_m.gguf --mmproj $b/2b-mmproj-f16.gguf --video "$clip" --frames 8 $mode \
    -p "Describe this video." -n 1 -t "$t" --temp 0 --stats json 2>&1 >/dev/null | tail -1
done

echo "== batched decoding: aggregate tokens/s at 1, 2, 4, 8 sequences (Q8_0), $t threads"
$reel bench -m $b/2b-q8_0.gguf -t "$t" -p 64 -n 32 -r 2 --parallel 1,2,4,8 --json

echo "== peak memory: Q4_K_M + F16 mmproj, 8 frames, -c 8192 (f16 KV, then f32 KV)"
for kv in f16 f32; do
  $reel -m $b/2b-q4_k_m.gguf --mmproj $b/2b-mmproj-f16.gguf --video "$clip" --frames 8 \
    -c 8192 --kv-type $kv -p "Describe this video." -n 1 -t "$t" --temp 0 --stats json \
    2>&1 >/dev/null | tail -1
done
