#!/usr/bin/env bash
# Writes the seed corpus of the video fuzzer (fuzz/video_fuzz.cpp) into fuzz/corpus/video/:
# tiny clips (32x24, 3-6 frames, a few KB each) in the containers and codecs that Reel reads,
# made from FFmpeg's lavfi test sources with Debian 12's ffmpeg. Small seeds keep every fuzzing
# iteration fast while still walking each demuxer's and decoder's real code paths.
# Usage: scripts/make-video-corpus.sh [OUT_DIR]   (default fuzz/corpus/video)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/fuzz/corpus/video}
mkdir -p "$out"

# Moving test pattern, 10 fps; 32x24 is the smallest size every encoder below accepts.
src="testsrc2=size=32x24:rate=10"
# No encoder version strings, dates or random ids in the files, so reruns change nothing
# where the encoder allows it.
exact=(-fflags +bitexact -flags:v +bitexact -map_metadata -1)

# make NAME FRAMES ENCODER-ARGS...: one clip from the test source.
make() {
  local name=$1 frames=$2
  shift 2
  ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i "$src" -frames:v "$frames" \
    "${exact[@]}" "$@" "$out/$name"
  printf '%-24s %6d bytes\n' "$name" "$(stat -c %s "$out/$name")"
}

# Delta frames and B-frames (reordering) where the codec has them, so seeking, decode order
# and timestamps get exercised, not only intra frames.
make h264.mp4 6 -c:v libx264 -preset veryfast -g 3 -bf 2 -pix_fmt yuv420p
# Display corrections: non-square pixels, and a 90 degree display matrix. FFmpeg drops the
# rotation when it encodes (it would rotate the pixels instead), so it is added by a remux.
make h264-sar.mp4 4 -c:v libx264 -preset veryfast -g 2 -pix_fmt yuv420p -vf setsar=4/3
ffmpeg -nostdin -hide_banner -loglevel error -y -i "$out/h264-sar.mp4" -c copy "${exact[@]}" \
  -metadata:s:v:0 rotate=90 "$out/h264-rot90-sar.mp4"
rm "$out/h264-sar.mp4"
printf '%-24s %6d bytes\n' h264-rot90-sar.mp4 "$(stat -c %s "$out/h264-rot90-sar.mp4")"
make hevc.mp4 4 -c:v libx265 -preset veryfast -x265-params log-level=error:keyint=2 \
  -pix_fmt yuv420p -tag:v hvc1
make vp9.mkv 4 -c:v libvpx-vp9 -deadline realtime -g 2 -pix_fmt yuv420p
make vp8.webm 4 -c:v libvpx -deadline realtime -g 2
make av1.mkv 3 -c:v libaom-av1 -cpu-used 8 -g 2 -pix_fmt yuv420p
make mjpeg.avi 4 -c:v mjpeg -q:v 8 -pix_fmt yuvj420p
make mpeg4.mov 4 -c:v mpeg4 -q:v 8 -g 2 -bf 1
make mpeg2.ts 4 -c:v mpeg2video -q:v 8 -g 2 -f mpegts
make h264.ts 4 -c:v libx264 -preset veryfast -g 2 -pix_fmt yuv420p -f mpegts
make flv1.flv 4 -c:v flv -q:v 8
make theora.ogv 5 -c:v libtheora -q:v 5
make ffv1.mkv 3 -c:v ffv1 -pix_fmt yuv420p
make anim.gif 4 -c:v gif -pix_fmt rgb8

# One clip with an audio track beside the video (real files have one; the reader skips it).
ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i "$src" \
  -f lavfi -i "sine=frequency=440:sample_rate=8000" -frames:v 4 -t 0.4 "${exact[@]}" \
  -c:v libx264 -preset veryfast -g 2 -pix_fmt yuv420p -c:a aac -b:a 16k -shortest \
  "$out/h264-aac.mp4"
printf '%-24s %6d bytes\n' h264-aac.mp4 "$(stat -c %s "$out/h264-aac.mp4")"
