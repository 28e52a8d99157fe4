#!/usr/bin/env bash
# Installs what `make build-aarch64` / `make test-aarch64` need on a Debian 12 x86-64 machine:
# the native build's packages (scripts/install-deps.sh: header-only libraries, cmake, ffmpeg for
# test clips), the aarch64 cross compiler, qemu-user (qemu-aarch64 runs the tests) and, through
# multiarch, the arm64 variants of every library the build links. Skips what is already present.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

# ccache: the cross build's compiler launcher (Makefile), so that CI's fresh clones and
# repeated `make build-aarch64` runs recompile only what changed.
cross=(g++-aarch64-linux-gnu qemu-user ccache)
# The arm64 libraries the build links (their -dev packages carry the .pc files and CMake configs).
arm64=(
  libhwy-dev libicu-dev libedit-dev libxxhash-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libjpeg62-turbo-dev libpng-dev libwebp-dev zlib1g-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  libcpp-httplib-dev
)

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "Adding the arm64 architecture (dpkg --add-architecture arm64)"
  $sudo dpkg --add-architecture arm64
  $sudo apt-get update -qq
fi

missing=()
for p in "${cross[@]}" "${arm64[@]/%/:arm64}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "Installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
