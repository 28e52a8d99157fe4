// Error type shared by every layer: one exception carrying a one-line, user-facing message.
// Frontends catch it, print `reel: <message>` and exit non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace reel {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace reel
