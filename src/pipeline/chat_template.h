// The Qwen3-VL chat template (the GGUF's tokenizer.chat_template), rendered in C++ so that no
// Jinja engine is needed. Text-only turns for now; media markers are plain text in content.
#pragma once

#include <string>
#include <string_view>
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

// Qwen3.5's thinking switch: its templates take `enable_thinking` and start the assistant turn
// with "<think>\n" (thinking) or with the empty block "<think>\n\n</think>\n\n" (not). Which
// one a file does by default is its template's choice: Qwen3.5-0.8B's thinks only when asked
// ("enable_thinking is defined and enable_thinking is true"), the larger sizes' unless told
// not to ("... is false"). Qwen3-VL's templates have no switch.
enum class Think { kDefault, kOn, kOff };

struct ThinkingSwitch {
  bool present = false;     // the template reads enable_thinking
  bool default_on = false;  // and thinks when it is not given
  // The template splits "<think>...</think>" off assistant turns (Qwen3.5's, and Qwen3's
  // thinking models'; found by its ns.last_query_index): see render_chat below.
  bool think_blocks = false;
};

// The switch of a GGUF's tokenizer.chat_template (empty: none).
ThinkingSwitch thinking_switch(std::string_view chat_template);

// The generation prompt: kAssistantPrompt, then for a template with the switch the think
// block `think` (or the template's default) asks for. Throws reel::Unsupported for kOn when
// the template has no switch (a Qwen3-VL model does not think on request); kOff is then the
// plain prompt.
std::string generation_prompt(const ThinkingSwitch& sw, Think think);

// render_chat with a given generation prompt after the turns. With think_blocks, assistant
// turns as Qwen3.5's template renders them: the content is trimmed and split at "</think>";
// a turn before the last user message keeps only its answer (earlier turns' reasoning leaves
// the context), a later one is "<think>\nREASONING\n</think>\n\nANSWER" (an empty block when
// it had none).
std::string render_chat(const std::vector<ChatMessage>& messages,
                        const std::string& generation_prompt, bool think_blocks = false);

// An assistant turn's content as a think_blocks template keeps it before the last user
// message: trimmed, then what follows the last "</think>", less its leading newlines.
std::string answer_without_thinking(std::string_view content);

}  // namespace reel
