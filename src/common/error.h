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

// Failures a caller words or handles differently (the CLI picks messages and exit codes; a
// server will pick HTTP statuses). Messages name no frontend flag or command.

// The work was stopped through a cancellation flag; no partial result is kept.
class Cancelled : public Error {
 public:
  Cancelled() : Error("cancelled") {}
};

// The request does not fit in the context that is left (numbers in the message).
class ContextFull : public Error {
 public:
  using Error::Error;
};

}  // namespace reel
