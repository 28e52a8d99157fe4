#include "pipeline/chat_line.h"

namespace reel {
namespace {

constexpr std::string_view kWhiteSpace = " \t\r\n";

std::string_view trim(std::string_view s) {
  const size_t b = s.find_first_not_of(kWhiteSpace);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kWhiteSpace) - b + 1);
}

int count(std::string_view s, std::string_view what) {
  int n = 0;
  for (size_t at = 0; (at = s.find(what, at)) != std::string_view::npos; at += what.size()) ++n;
  return n;
}

}  // namespace

ChatLine classify_chat_line(std::string_view line) {
  ChatLine out;
  const std::string_view t = trim(line);
  out.text = std::string(t);
  if (t.empty()) return out;
  if (t == "<exit>") {
    out.kind = ChatLineKind::kExit;
  } else if (t == "<clear>") {
    out.kind = ChatLineKind::kClear;
  } else if (count(t, "<exit>") + count(t, "<clear>") > 0) {
    // Half a command and half a question is more likely a slip than either.
    out.kind = ChatLineKind::kMisplacedCommand;
  } else {
    out.kind = ChatLineKind::kQuestion;
    out.image_markers = count(t, "<image>");
    out.video_markers = count(t, "<video>");
  }
  return out;
}

}  // namespace reel
