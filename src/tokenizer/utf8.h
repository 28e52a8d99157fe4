// UTF-8 helpers shared by the tokenizer and the stream decoder. Invalid input is handled the
// way Python's `bytes.decode("utf-8", "replace")` and Rust's `from_utf8_lossy` do: each
// maximal invalid subpart (a lead byte plus the continuation bytes that were still valid
// for it) becomes one U+FFFD.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace reel::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Result of looking at the sequence starting at one byte.
struct Scan {
  enum Kind { kValid, kInvalid, kIncomplete } kind;
  size_t len;       // bytes consumed: the sequence (kValid) or the maximal invalid subpart
  char32_t cp = 0;  // kValid only
};

// Classifies the sequence at s[0..]; s must be non-empty.
Scan scan(std::string_view s);

// True when every byte of s belongs to a complete, valid sequence.
bool is_valid(std::string_view s);

// s with invalid bytes replaced (an incomplete tail counts as invalid).
std::string sanitize(std::string_view s);

// Splits s into the longest prefix of whole text (invalid parts replaced) and a held-back
// tail: a valid but incomplete final sequence that more bytes could still complete.
// Returns the text; `*consumed` is the number of bytes of s it covers.
std::string take_complete(std::string_view s, size_t* consumed);

void append(std::string& out, char32_t cp);

}  // namespace reel::utf8
