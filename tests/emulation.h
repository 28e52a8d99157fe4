// Tests of a cross build run under an emulator (qemu-aarch64): Reel is 10-50 times slower there
// than on the machine, and /proc/self describes the emulator's process, not only Reel's.
// tests/CMakeLists.txt sets REEL_UNDER_EMULATION=1 for every test of a build with
// CMAKE_CROSSCOMPILING_EMULATOR. Waits for Reel are multiplied by slowdown(); a check that would
// measure the emulator rather than Reel is skipped with GTEST_SKIP() and the reason. Numerical
// checks are never skipped.
#pragma once

#include <cstdlib>
#include <string>

namespace reel::test {

inline bool under_emulation() {
  const char* v = std::getenv("REEL_UNDER_EMULATION");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

// 1 natively. Under emulation REEL_EMULATION_SLOWDOWN (default 30: qemu-user runs Reel's kernels
// 10-50 times slower, and the machines that run it are shared).
inline double slowdown() {
  if (!under_emulation()) return 1;
  const char* v = std::getenv("REEL_EMULATION_SLOWDOWN");
  const double s = v != nullptr ? std::atof(v) : 0;
  return s >= 1 ? s : 30;
}

}  // namespace reel::test
