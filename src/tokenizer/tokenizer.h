// Byte-level BPE tokenizer built from a GGUF's `tokenizer.ggml.*` metadata (model "gpt2",
// pre-tokenizer "qwen2" or "qwen35"), matching Hugging Face's Qwen2 and Qwen3.5 tokenizers: NFC
// normalization, the file's pre-tokenizer split (Qwen3.5's keeps combining marks with their
// letters), BPE by merge rank, and added tokens (control and user-defined) matched atomically
// in the text before any of that.
//
// Input that is not valid UTF-8 is first made valid by replacing each maximal invalid subpart
// with U+FFFD, the text Python's `bytes.decode("utf-8", "replace")` would hand to HF.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace reel::gguf {
class File;
}

namespace reel {

using TokenId = int32_t;

class Tokenizer {
 public:
  // Throws reel::Error when the metadata is missing, inconsistent, or of another tokenizer kind.
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& file);
  ~Tokenizer();

  // Text to ids. With parse_special, added tokens written in the text (e.g. "<|im_start|>")
  // become their ids; without, control tokens are tokenized as plain text while user-defined
  // ones (<think>, <tool_call>, ...) are still matched, as llama.cpp and HF's
  // split_special_tokens do. Nothing is prepended. Thread-safe.
  std::vector<TokenId> encode(std::string_view text, bool parse_special = true) const;

  // The bytes a token stands for (byte-level alphabet undone; added tokens as their text).
  std::string token_bytes(TokenId id) const;
  // Concatenated bytes of ids (may end in an incomplete UTF-8 sequence). Both throw
  // reel::Error for an id outside [0, vocab_size()).
  std::string decode(const std::vector<TokenId>& ids) const;

  int32_t vocab_size() const;                     // number of entries in tokenizer.ggml.tokens
  TokenId token_id(std::string_view text) const;  // exact vocab entry lookup, -1 if absent
  bool is_control(TokenId id) const;              // control / special tokens (<|im_end|>, ...)
  TokenId eos_id() const;                         // tokenizer.ggml.eos_token_id, -1 if absent

 private:
  Tokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Streaming detokenizer: feed ids one at a time, get text that is always whole UTF-8.
// Bytes of an incomplete sequence are held back until the sequence completes; invalid bytes
// are replaced by U+FFFD when it becomes certain they cannot complete.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(tok) {}
  std::string push(TokenId id);  // newly complete text (possibly empty)
  std::string flush();           // whatever is held back, invalid bytes replaced
  void reset() { pending_.clear(); }

 private:
  const Tokenizer& tok_;
  std::string pending_;
};

}  // namespace reel
