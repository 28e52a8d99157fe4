// The set-up the tokenizer parity tests share (tokenizer_test.cpp for Qwen2/Qwen3-VL,
// qwen35_tokenizer_test.cpp for Qwen3.5): a fixture file's bytes, a tokenizer from a vocabulary
// GGUF, and ids printed for a readable failure message.
#pragma once

#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace reel::test {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::unique_ptr<Tokenizer> tokenizer_from(const std::string& gguf_path) {
  const auto f = gguf::File::open(gguf_path);
  return Tokenizer::from_gguf(*f);
}

// "id id id " (a mismatch shows as two lines of numbers).
inline std::string show(const std::vector<TokenId>& ids) {
  std::string s;
  for (TokenId id : ids) s += std::to_string(id) + " ";
  return s;
}

}  // namespace reel::test
