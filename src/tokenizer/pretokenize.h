// Text normalization and the Qwen2 pre-tokenizer split, as Hugging Face `tokenizers` does them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace reel::pretok {

// NFC of valid UTF-8 (ICU). Returns the input unchanged when it is already NFC.
std::string nfc(std::string_view text);

// Splits valid UTF-8 into the pieces matched by the Qwen2 pre-tokenizer regex
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//   \s*[\r\n]+|\s+(?!\S)|\s+
// The regex matches every character somewhere, so the pieces concatenate to the input.
// Pieces are views into `text`.
std::vector<std::string_view> split(std::string_view text);

}  // namespace reel::pretok
