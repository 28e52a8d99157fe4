// Parity with Hugging Face's Qwen2/Qwen3-VL tokenizer: llama.cpp's shared test vectors and the
// corpus written by tools/reference/make_tokenizer_fixtures.py (ids from transformers), plus
// streaming decode and the speed of long inputs.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "../emulation.h"
#include "fixture_files.h"
#include "tokenizer/utf8.h"

namespace reel {
namespace {

using test::read_file;
using test::show;

const Tokenizer& shared_vocab() {
  static const auto tok = test::tokenizer_from(REEL_TEST_DATA "/tokenizer/ggml-vocab-qwen2.gguf");
  return *tok;
}

const Tokenizer& qwen3vl_vocab() {
  static const auto tok = test::tokenizer_from(REEL_FIXTURE_DIR "/tokenizer/qwen3vl-vocab.gguf");
  return *tok;
}

std::string hex_to_bytes(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

TEST(Tokenizer, SharedLlamaCppVectors) {
  const std::string inp = read_file(REEL_TEST_DATA "/tokenizer/ggml-vocab-qwen2.gguf.inp");
  std::istringstream out(read_file(REEL_TEST_DATA "/tokenizer/ggml-vocab-qwen2.gguf.out"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  size_t pos = 0, count = 0;
  for (size_t next; (next = inp.find(sep, pos)) != std::string::npos; pos = next + sep.size()) {
    const std::string text = inp.substr(pos, next - pos);
    std::string line;
    ASSERT_TRUE(std::getline(out, line)) << "fewer .out lines than inputs";
    std::vector<TokenId> want;
    std::istringstream ls(line);
    for (TokenId id; ls >> id;) want.push_back(id);
    EXPECT_EQ(show(shared_vocab().encode(text)), show(want)) << "input: '" << text << "'";
    EXPECT_EQ(shared_vocab().decode(want), text);
    ++count;
  }
  EXPECT_EQ(count, 46u);
}

TEST(Tokenizer, HfCorpus) {
  std::istringstream in(read_file(REEL_FIXTURE_SRC "/tokenizer/corpus.jsonl"));
  const Tokenizer& tok = qwen3vl_vocab();
  size_t lines = 0, plain = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    const auto e = nlohmann::json::parse(line);
    const std::string text =
        e.contains("hex") ? hex_to_bytes(e["hex"]) : e["text"].get<std::string>();
    const auto ids = e["ids"].get<std::vector<TokenId>>();
    EXPECT_EQ(show(tok.encode(text)), show(ids)) << "line " << lines + 1 << ": " << line;
    EXPECT_EQ(utf8::sanitize(tok.decode(ids)), e["decoded"].get<std::string>())
        << "line " << lines + 1;
    if (e.contains("ids_plain")) {
      EXPECT_EQ(show(tok.encode(text, false)), show(e["ids_plain"].get<std::vector<TokenId>>()))
          << "parse_special=false, line " << lines + 1 << ": " << line;
      ++plain;
    }
  }
  EXPECT_GE(lines, 300u);
  EXPECT_GE(plain, 250u);
}

TEST(Tokenizer, Qwen3VlAddedTokens) {
  const Tokenizer& tok = qwen3vl_vocab();
  EXPECT_EQ(tok.vocab_size(), 151936);
  EXPECT_EQ(tok.eos_id(), 151645);
  EXPECT_EQ(tok.token_id("<|image_pad|>"), 151655);
  EXPECT_EQ(tok.token_id("<think>"), 151667);
  EXPECT_TRUE(tok.is_control(151645));
  EXPECT_TRUE(tok.is_control(151662));   // <|fim_pad|>: looks special, so control in GGUF
  EXPECT_FALSE(tok.is_control(151667));  // <think>: user-defined
  EXPECT_FALSE(tok.is_control(151669));  // padding: unused
  EXPECT_FALSE(tok.is_control(9707));
  EXPECT_EQ(tok.token_bytes(151644), "<|im_start|>");
  EXPECT_EQ(tok.token_bytes(220), " ");
  EXPECT_EQ(tok.token_bytes(198), "\n");
}

TEST(Tokenizer, StreamDecoderHoldsSplitSequences) {
  const Tokenizer& tok = qwen3vl_vocab();
  // "😁" is two tokens (26525 223) that split its 4 bytes.
  const auto ids = tok.encode("a 😁 中文 é👨‍👩‍👧");
  StreamDecoder dec(tok);
  std::string got;
  bool held_back = false;
  for (TokenId id : ids) {
    const std::string piece = dec.push(id);
    EXPECT_TRUE(utf8::is_valid(piece));
    held_back |= piece.empty();
    got += piece;
  }
  got += dec.flush();
  EXPECT_EQ(got, "a 😁 中文 é👨‍👩‍👧");
  EXPECT_TRUE(held_back);

  // Split emoji: 26525 is " " plus its first 3 bytes; the space comes out, the rest waits.
  const TokenId e1 = 26525, e2 = 223;
  ASSERT_EQ(tok.decode({e1, e2}), " 😁");
  EXPECT_EQ(dec.push(e1), " ");
  EXPECT_EQ(dec.push(e2), "😁");
  // An incomplete sequence followed by a complete character is invalid: one U+FFFD.
  EXPECT_EQ(dec.push(e1), " ");
  EXPECT_EQ(dec.push(tok.token_id("a")),
            "\xEF\xBF\xBD"
            "a");
  // Held back at the end: flush replaces it.
  EXPECT_EQ(dec.push(e1), " ");
  EXPECT_EQ(dec.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(dec.flush(), "");
  dec.push(e1);
  dec.reset();
  EXPECT_EQ(dec.push(tok.token_id("a")), "a");
}

TEST(Tokenizer, InvalidUtf8IsReplacedNotFatal) {
  const Tokenizer& tok = qwen3vl_vocab();
  const auto replaced = tok.encode("\xEF\xBF\xBD");
  EXPECT_EQ(tok.encode("\xFF"), replaced);
  EXPECT_EQ(tok.encode(std::string("a\0b", 3)).size(), 3u);
  EXPECT_EQ(tok.encode(""), std::vector<TokenId>{});
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

TEST(Tokenizer, LongInputsAreFast) {
  const Tokenizer& tok = qwen3vl_vocab();
  std::string english;
  const std::string para =
      "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
      "the age of foolishness; we had everything before us, we had nothing before us.\n";
  while (english.size() < 100 * 1024) english += para;
  auto t0 = Clock::now();
  const auto ids = tok.encode(english);
  const double english_s = seconds_since(t0);
  EXPECT_EQ(tok.decode(ids), english);
  // Bounds 10-100x the native times: they catch a quadratic path (minutes), not a slow machine.
  // Under an emulator everything is test::slowdown() times slower.
  const double slow = test::slowdown();
  EXPECT_LT(english_s, 1.0 * slow);

  // 1 MB in one pre-tokenizer piece each: letters, punctuation, CJK.
  for (const char* unit : {"a", "ab", "!", "中"}) {
    std::string big;
    while (big.size() < (1 << 20)) big += unit;
    t0 = Clock::now();
    const auto big_ids = tok.encode(big);
    const double s = seconds_since(t0);
    EXPECT_EQ(tok.decode(big_ids), big);
    EXPECT_LT(s, 10.0 * slow) << "unit '" << unit << "'";
    std::printf("[ timing ] 1 MiB of '%s': %zu tokens in %.3f s\n", unit, big_ids.size(), s);
  }
  std::printf("[ timing ] 100 KiB English: %zu tokens in %.4f s\n", ids.size(), english_s);
}

}  // namespace
}  // namespace reel
