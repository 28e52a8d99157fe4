// Wall-clock timing for stats: one steady clock and milliseconds since a point.
#pragma once

#include <chrono>

namespace reel {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace reel
