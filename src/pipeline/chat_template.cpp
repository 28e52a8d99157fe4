#include "pipeline/chat_template.h"

#include <string_view>

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

namespace {

constexpr std::string_view kSpaces = " \t\n\r\f\v";
constexpr std::string_view kThinkEnd = "</think>";

// Jinja's trim (Python's str.strip(), here for ASCII whitespace).
std::string_view trim(std::string_view s) {
  const size_t b = s.find_first_not_of(kSpaces);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpaces) - b + 1);
}

std::string_view lstrip_newlines(std::string_view s) {
  const size_t b = s.find_first_not_of('\n');
  return b == std::string_view::npos ? std::string_view() : s.substr(b);
}

std::string_view rstrip_newlines(std::string_view s) {
  const size_t e = s.find_last_not_of('\n');
  return e == std::string_view::npos ? std::string_view() : s.substr(0, e + 1);
}

// The index of the last user message that is not a tool response (the template's
// ns.last_query_index; its initial value, the last message, when there is none).
size_t last_query_index(const std::vector<ChatMessage>& messages) {
  for (size_t i = messages.size(); i-- > 0;) {
    if (messages[i].role != "user") continue;
    const std::string_view c = trim(messages[i].content);
    if (!(c.starts_with("<tool_response>") && c.ends_with("</tool_response>"))) return i;
  }
  return messages.empty() ? 0 : messages.size() - 1;
}

// An assistant turn after the last user message: its reasoning (before the first "</think>",
// after the last "<think>") in a block, then the answer.
std::string render_thinking_turn(std::string_view content) {
  std::string_view c = trim(content), reasoning;
  if (const size_t end = c.find(kThinkEnd); end != std::string_view::npos) {
    reasoning = rstrip_newlines(c.substr(0, end));
    if (const size_t open = reasoning.rfind("<think>"); open != std::string_view::npos)
      reasoning = reasoning.substr(open + 7);
    reasoning = trim(lstrip_newlines(reasoning));
    c = lstrip_newlines(c.substr(c.rfind(kThinkEnd) + kThinkEnd.size()));
  }
  return "<|im_start|>assistant\n<think>\n" + std::string(reasoning) + "\n</think>\n\n" +
         std::string(c) + "<|im_end|>\n";
}

}  // namespace

std::string answer_without_thinking(std::string_view content) {
  std::string_view c = trim(content);
  if (const size_t end = c.rfind(kThinkEnd); end != std::string_view::npos)
    c = lstrip_newlines(c.substr(end + kThinkEnd.size()));
  return std::string(c);
}

std::string render_chat(const std::vector<ChatMessage>& messages,
                        const std::string& generation_prompt, bool think_blocks) {
  if (!think_blocks) return render_chat(messages, false) + generation_prompt;
  const size_t last_query = last_query_index(messages);
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "system") {
      if (i == 0) out += render_turn("system", m.content);  // later ones are dropped
    } else if (m.role == "user") {
      out += render_turn("user", m.content);
    } else if (m.role != "assistant") {
      throw Error("unknown chat role '" + m.role + "'");
    } else {
      out += i > last_query ? render_thinking_turn(m.content)
                            : render_turn("assistant", answer_without_thinking(m.content));
    }
  }
  return out + generation_prompt;
}

ThinkingSwitch thinking_switch(std::string_view t) {
  ThinkingSwitch sw;
  // The assistant turns' think blocks depend on where the last user query is.
  sw.think_blocks = t.find("last_query_index") != std::string_view::npos &&
                    t.find("</think>") != std::string_view::npos;
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
