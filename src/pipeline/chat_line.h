// What a line typed into a chat asks for: the two commands (`<exit>`, `<clear>`, each on a line
// of its own), nothing (a blank line), or a question, with its media markers counted. The CPU
// chat (src/cli/chat.cpp) and the NPU chat (src/backends/rknpu/legacy_chat.cpp) both read their
// lines through this, so that they agree on every line.
#pragma once

#include <string>
#include <string_view>

namespace reel {

enum class ChatLineKind {
  kBlank,             // nothing but white space: skipped
  kExit,              // `<exit>`: ends the chat
  kClear,             // `<clear>`: forgets the dialogue
  kMisplacedCommand,  // `<exit>` or `<clear>` inside other text: refused, not asked
  kQuestion,          // anything else: asked
};

struct ChatLine {
  ChatLineKind kind = ChatLineKind::kBlank;
  std::string text;       // the line without leading and trailing white space
  int image_markers = 0;  // `<image>` in a question
  int video_markers = 0;  // `<video>` in a question
};

ChatLine classify_chat_line(std::string_view line);

// The one line a chat prints for kMisplacedCommand.
inline constexpr std::string_view kMisplacedCommandNote =
    "write <clear> or <exit> on a line of its own";

// Questions asked and answered in one chat, and the exit code they make: 1 when questions were
// asked and none was answered, 0 otherwise (an empty chat included).
class ChatTally {
 public:
  void asked() { ++asked_; }
  void answered() { ++answered_; }
  int n_asked() const { return asked_; }
  int n_answered() const { return answered_; }
  int exit_code() const { return asked_ > 0 && answered_ == 0 ? 1 : 0; }

 private:
  int asked_ = 0, answered_ = 0;
};

}  // namespace reel
