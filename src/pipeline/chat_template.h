// The Qwen3-VL chat template (the GGUF's tokenizer.chat_template), rendered in C++ so that no
// Jinja engine is needed. Text-only turns for now; media markers are plain text in content.
#pragma once

#include <string>
#include <vector>

namespace reel {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// As the template does: only a first system message is rendered (later ones are dropped),
// each turn is "<|im_start|>ROLE\nCONTENT<|im_end|>\n", and the generation prompt is
// "<|im_start|>assistant\n".
std::string render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt);

// The text of one turn, for appending to a conversation already in the KV cache.
std::string render_turn(const std::string& role, const std::string& content);
inline constexpr const char* kAssistantPrompt = "<|im_start|>assistant\n";

}  // namespace reel
