#include "pipeline/chat_template.h"

#include "common/error.h"

namespace reel {

std::string render_turn(const std::string& role, const std::string& content) {
  return "<|im_start|>" + role + "\n" + content + "<|im_end|>\n";
}

std::string render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "system") {
      if (i == 0) out += render_turn("system", m.content);
    } else if (m.role == "user" || m.role == "assistant") {
      out += render_turn(m.role, m.content);
    } else {
      throw Error("unknown chat role '" + m.role + "'");
    }
  }
  if (add_generation_prompt) out += kAssistantPrompt;
  return out;
}

}  // namespace reel
