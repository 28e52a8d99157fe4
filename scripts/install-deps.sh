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
  # tests/cli/rtsp_server.py: GStreamer's RTSP server for the RTSP pulls of `reel watch`
  python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good
  gstreamer1.0-plugins-ugly  # x264enc
  nginx  # tests/server/test_replicas.py: replicas behind nginx (deploy/nginx/reel.conf.in)
  "$@"
)

# Installed for this machine's architecture (or for all): with arm64 multiarch packages beside the
# native ones (make deps-aarch64), dpkg-query prints one line per architecture.
native=$(dpkg --print-architecture)
missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Architecture} ${Status}\n' "$p" 2>/dev/null || true)
  grep -qxE "($native|all) install ok installed" <<< "$status" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "Installing: ${missing[*]}"
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# Packages with a service (nginx) would start it on installation: on port 80, where it may fail
# (port taken, or no init system in a container) and fail the whole install, or run a web server
# nobody asked for. The tests start their own nginx, unprivileged, on a free port. So, unless the
# system already has a policy, one that refuses every service start holds during the install
# (Debian's invoke-rc.d and deb-systemd-invoke both honour /usr/sbin/policy-rc.d). Under
# systemd the service is still enabled for the next boot: `systemctl disable nginx` if unwanted.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  trap '$sudo rm -f "$policy"' EXIT
  printf '#!/bin/sh\n# scripts/install-deps.sh: no service starts while it installs packages\nexit 101\n' |
    $sudo tee "$policy" > /dev/null
  $sudo chmod 755 "$policy"
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
