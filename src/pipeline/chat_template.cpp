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

std::string render_chat(const std::vector<ChatMessage>& messages,
                        const std::string& generation_prompt) {
  return render_chat(messages, false) + generation_prompt;
}

ThinkingSwitch thinking_switch(std::string_view t) {
  ThinkingSwitch sw;
  // Only the generation prompt's block matters (the templates may test enable_thinking
  // elsewhere too, e.g. for earlier assistant turns): the text after its last mention.
  const size_t gen = t.rfind("add_generation_prompt");
  if (gen == std::string_view::npos) return sw;
  const std::string_view block = t.substr(gen);
  sw.present = block.find("enable_thinking") != std::string_view::npos &&
               block.find("<think>") != std::string_view::npos;
  if (!sw.present) return sw;
  // The test that guards the thinking branch names the value that changes the default:
  // "is true" opens thinking only on request, "is false" closes it only on request.
  const bool on_request = block.find("enable_thinking is true") != std::string_view::npos ||
                          block.find("enable_thinking == true") != std::string_view::npos;
  sw.default_on = !on_request;
  return sw;
}

std::string generation_prompt(const ThinkingSwitch& sw, Think think) {
  if (!sw.present) {
    if (think == Think::kOn)
      throw Unsupported(
          "this model's chat template has no thinking switch (enable_thinking); thinking on "
          "request needs a model that has one, such as Qwen3.5");
    return kAssistantPrompt;
  }
  const bool on = think == Think::kDefault ? sw.default_on : think == Think::kOn;
  return std::string(kAssistantPrompt) + (on ? "<think>\n" : "<think>\n\n</think>\n\n");
}

}  // namespace reel
