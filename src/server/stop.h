// Stop strings over a streamed answer: text is passed on as it comes, except a tail that could
// still become a stop string, which is held back until it is decided. The answer ends before
// the first stop string and the stop string itself is never sent.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace reel::server {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Appends a piece; returns the text that may be sent now. After a stop string has been
  // seen, stopped() is true and nothing more is returned.
  std::string push(std::string_view piece);
  // The held-back tail, at the end of the answer.
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace reel::server
