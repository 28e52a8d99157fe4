// Text normalization and the Qwen2 pre-tokenizer split, as Hugging Face `tokenizers` does them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace reel::pretok {

// NFC of valid UTF-8 (ICU). Returns the input unchanged when it is already NFC.
std::string nfc(std::string_view text);

// The pre-tokenizer regexes Reel knows, by their GGUF tokenizer.ggml.pre names.
enum class Regex {
  // "qwen2" (Qwen2 to Qwen3-VL):
  //   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|
  //   \s*[\r\n]+|\s+(?!\S)|\s+
  kQwen2,
  // "qwen35" (Qwen3.5): the same with combining marks joining letter runs,
  //   ...|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|...
  kQwen35,
};

// Splits valid UTF-8 into the pieces the regex matches. The regex matches every character
// somewhere, so the pieces concatenate to the input. Pieces are views into `text`.
std::vector<std::string_view> split(std::string_view text, Regex regex = Regex::kQwen2);

}  // namespace reel::pretok
