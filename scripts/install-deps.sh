#!/usr/bin/env bash
# Installs the Debian 12 packages Reel builds and tests with, skipping those already present.
# Usage: scripts/install-deps.sh [extra packages...]
set -euo pipefail

packages=(
  g++ cmake make pkg-config xz-utils
  libhwy-dev libicu-dev libcli11-dev nlohmann-json3-dev libedit-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libxxhash-dev  # XXH3 hashes of the media cache (src/pipeline/media_cache.cpp)
  libjpeg62-turbo-dev libpng-dev libwebp-dev zlib1g-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  libavdevice-dev  # V4L2 cameras for `reel watch /dev/video0` (src/media/stream.cpp)
  libcpp-httplib-dev  # `reel serve`
  python3-venv  # tests/server/run_openai_test.sh (the `openai` client from PyPI)
  ffmpeg  # the CLI: tests/media/video_test.cpp generates its clips with it
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "Installing: ${missing[*]}"
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
