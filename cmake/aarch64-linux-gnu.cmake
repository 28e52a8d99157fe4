# Cross-compiling Reel for 64-bit ARM Linux on a Debian 12 x86-64 machine with Debian's
# g++-aarch64-linux-gnu and the arm64 libraries installed through multiarch
# (scripts/install-deps-aarch64.sh). Built programs run under qemu-aarch64 (qemu-user): CTest
# and the tests that start `reel` go through CMAKE_CROSSCOMPILING_EMULATOR; QEMU_CPU in the
# environment picks the CPU model (cortex-a72, cortex-a76, max, ...).
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Multiarch: the arm64 libraries live in /usr/lib/aarch64-linux-gnu beside the native ones, and
# their headers are in /usr/include (shared with the native packages, identical per Multi-Arch:
# same) or /usr/include/aarch64-linux-gnu. The root path is the whole system: find_* searches it
# with the library architecture; programs (xz, ffmpeg, sh) are the build machine's.
set(CMAKE_FIND_ROOT_PATH /usr/lib/aarch64-linux-gnu /usr/aarch64-linux-gnu /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# pkg-config reads only the arm64 .pc files (and the architecture-independent ones).
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")

# The arm64 dynamic loader and libraries are the multiarch ones (libc6:arm64, pulled in by the
# packages above: /lib/ld-linux-aarch64.so.1, /usr/lib/aarch64-linux-gnu), so qemu needs no -L.
# `-L /usr/aarch64-linux-gnu` (the cross toolchain's libc6-arm64-cross) must not be used: its
# ld.so (glibc 2.36-8) then loads the multiarch libc.so.6 (2.36-9+deb12u*), a mismatch of their
# private interface that hangs the first pthread_create.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
