// Qwen3.5's pre-tokenizer ("qwen35": Qwen2's split with combining marks joining letter runs)
// against transformers' Qwen3_5Tokenizer (tests/fixtures/tokenizer/corpus-qwen35.jsonl, written
// by tools/reference/make_qwen35_tokenizer_fixtures.py). Qwen3.5's own 248,320-entry vocabulary
// is not in the repo: the fixture builds transformers' Qwen3_5Tokenizer from the Qwen3-VL
// vocabulary and merges, and Reel reads the same vocabulary GGUF with tokenizer.ggml.pre set to
// "qwen35" (patched here), so the ids check the split and the id mapping together.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "fixture_files.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"

namespace reel {
namespace {

using test::read_file;
using test::show;

// GGUF string: u64 length, bytes.
std::string gguf_string(const std::string& s) {
  std::string out(8, '\0');
  const uint64_t n = s.size();
  std::memcpy(out.data(), &n, 8);
  return out + s;
}

// The Qwen3-VL vocabulary GGUF with tokenizer.ggml.pre = "qwen35". The file has no tensors, so
// the bytes after the key may move.
const Tokenizer& qwen35_vocab() {
  static const auto tok = [] {
    std::string bytes = read_file(REEL_FIXTURE_DIR "/tokenizer/qwen3vl-vocab.gguf");
    const std::string type_str("\x08\0\0\0", 4);
    const std::string from = gguf_string("tokenizer.ggml.pre") + type_str + gguf_string("qwen2");
    const size_t at = bytes.find(from);
    if (at == std::string::npos) throw std::runtime_error("no tokenizer.ggml.pre = qwen2 key");
    bytes.replace(at, from.size(),
                  gguf_string("tokenizer.ggml.pre") + type_str + gguf_string("qwen35"));
    const std::string path = ::testing::TempDir() + "/qwen35-vocab.gguf";
    std::ofstream(path, std::ios::binary) << bytes;
    return test::tokenizer_from(path);
  }();
  return *tok;
}

std::vector<std::string> pieces(std::string_view text, pretok::Regex regex) {
  const std::string norm = pretok::nfc(text);  // the pieces are views into it
  std::vector<std::string> out;
  for (std::string_view p : pretok::split(norm, regex)) out.emplace_back(p);
  return out;
}

TEST(Qwen35Tokenizer, HfCorpusIdsAndPieces) {
  std::istringstream in(read_file(REEL_FIXTURE_SRC "/tokenizer/corpus-qwen35.jsonl"));
  const Tokenizer& tok = qwen35_vocab();
  size_t lines = 0, with_pieces = 0, differing = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    const auto e = nlohmann::json::parse(line);
    const std::string text = e["text"].get<std::string>();
    EXPECT_EQ(show(tok.encode(text)), show(e["ids"].get<std::vector<TokenId>>()))
        << "line " << lines + 1 << ": " << line;
    if (e.contains("pieces")) {
      EXPECT_EQ(pieces(text, pretok::Regex::kQwen35), e["pieces"].get<std::vector<std::string>>())
          << "line " << lines + 1 << ": " << line;
      ++with_pieces;
    }
    differing += e["qwen2_differs"].get<bool>();
  }
  EXPECT_GE(lines, 700u);
  EXPECT_GE(with_pieces, 600u);
  EXPECT_GE(differing, 10u);  // the corpus does tell the two regexes apart
}

// The differences, spelled out (each checked against transformers by the corpus too).
TEST(Qwen35Tokenizer, CombiningMarksJoinLettersOnlyInQwen35) {
  using pretok::Regex;
  const std::string hindi = "\xe0\xa4\x95\xe0\xa5\x8d\xe0\xa4\xb7";  // क्ष: letter, virama, letter
  EXPECT_EQ(pieces(hindi, Regex::kQwen35), std::vector<std::string>{hindi});
  EXPECT_EQ(pieces(hindi, Regex::kQwen2),
            (std::vector<std::string>{"\xe0\xa4\x95", "\xe0\xa5\x8d\xe0\xa4\xb7"}));
  // A mark after punctuation starts a letter run in Qwen3.5, ends a punctuation run in Qwen2.
  EXPECT_EQ(pieces("!\xcc\x81", Regex::kQwen35), (std::vector<std::string>{"!\xcc\x81"}));
  EXPECT_EQ(pieces("?\xcc\x81!", Regex::kQwen35), (std::vector<std::string>{"?\xcc\x81", "!"}));
  EXPECT_EQ(pieces("?\xcc\x81!", Regex::kQwen2), (std::vector<std::string>{"?\xcc\x81!"}));
  // A mark of Unicode 16 (U+113B8, Tulu-Tigalari), unassigned in older ICU, is still a mark.
  EXPECT_EQ(pieces("x\xf0\x91\x8e\xb8y", Regex::kQwen35),
            (std::vector<std::string>{"x\xf0\x91\x8e\xb8y"}));
}

}  // namespace
}  // namespace reel
