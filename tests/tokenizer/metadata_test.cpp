// Tokenizer construction from hand-built GGUF metadata: a toy byte-level vocabulary that loads
// and encodes as expected, and each kind of bad metadata rejected with a clear reel::Error.
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "gguf/gguf.h"
#include "mini_gguf.h"
#include "tokenizer/tokenizer.h"

namespace reel {
namespace {

using testing::I32Array;
using testing::MiniGguf;
using testing::StrArray;

// GPT-2's byte -> character table, written out independently of the library.
std::string byte_char(int b) {
  const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
  int cp = b;
  if (!printable) {
    int next = 256;
    for (int i = 0; i < b; ++i) {
      if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174)) ++next;
    }
    cp = next;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// 256 byte tokens (ids 0..255), then he(256) ll(257) hell(258) Ġw(259) <|im_end|>(260, control)
// <think>(261, user-defined) [PAD262](262, unused).
MiniGguf toy() {
  StrArray tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(byte_char(b));
  const std::string sp = byte_char(' ');
  const StrArray extra{"he", "ll", "hell", sp + "w", "<|im_end|>", "<think>", "[PAD262]"};
  tokens.insert(tokens.end(), extra.begin(), extra.end());
  I32Array types(256, 1);
  for (int t : {1, 1, 1, 1, 3, 4, 5}) types.push_back(t);
  MiniGguf g;
  g.kv["tokenizer.ggml.model"] = std::string("gpt2");
  g.kv["tokenizer.ggml.pre"] = std::string("qwen2");
  g.kv["tokenizer.ggml.tokens"] = tokens;
  g.kv["tokenizer.ggml.token_type"] = types;
  g.kv["tokenizer.ggml.merges"] = StrArray{"l l", "h e", "he ll", sp + " w"};
  g.kv["tokenizer.ggml.eos_token_id"] = uint32_t{260};
  return g;
}

std::unique_ptr<Tokenizer> load(const MiniGguf& g) {
  const auto file = gguf::File::open(g.write());
  return Tokenizer::from_gguf(*file);
}

// Expects loading to throw reel::Error of `kind` whose message contains `needle`: broken
// metadata is InvalidInput, another tokenizer family Unsupported.
void expect_rejected(const MiniGguf& g, const std::string& needle,
                     ErrorKind kind = ErrorKind::InvalidInput) {
  try {
    load(g);
    ADD_FAILURE() << "accepted; expected an error mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "multi-line message";
    EXPECT_EQ(e.kind(), kind) << e.what() << " is " << error_kind_name(e.kind());
  }
}

TEST(TokenizerMetadata, ToyVocabularyEncodes) {
  const auto tok = load(toy());
  EXPECT_EQ(tok->vocab_size(), 263);
  EXPECT_EQ(tok->eos_id(), 260);
  EXPECT_TRUE(tok->is_control(260));
  EXPECT_FALSE(tok->is_control(261));
  // "ll" ranks before "he", then "he"+"ll"; " w" merges; "o" stays a byte.
  EXPECT_EQ(tok->encode("hello world"), (std::vector<TokenId>{258, 'o', 259, 'o', 'r', 'l', 'd'}));
  EXPECT_EQ(tok->encode("x<|im_end|><think>"), (std::vector<TokenId>{'x', 260, 261}));
  // Without parse_special, control tokens are text; user-defined ones stay atomic.
  EXPECT_EQ(tok->encode("<|im_end|><think>", false),
            (std::vector<TokenId>{'<', '|', 'i', 'm', '_', 'e', 'n', 'd', '|', '>', 261}));
  // Unused tokens are never matched in text.
  EXPECT_EQ(tok->encode("[PAD262]").size(), 8u);
  EXPECT_EQ(tok->token_bytes(259), " w");
  EXPECT_EQ(tok->token_bytes(260), "<|im_end|>");
  EXPECT_EQ(tok->token_id("<think>"), 261);
  EXPECT_EQ(tok->token_id("nope"), -1);
  EXPECT_THROW(tok->token_bytes(263), Error);
  EXPECT_THROW(tok->decode({-1}), Error);
}

TEST(TokenizerMetadata, RejectsMissingOrOtherModel) {
  MiniGguf g = toy();
  g.kv.erase("tokenizer.ggml.model");
  expect_rejected(g, "tokenizer.ggml.model");
  g = toy();
  g.kv["tokenizer.ggml.model"] = std::string("llama");
  expect_rejected(g, "'llama' is not supported", ErrorKind::Unsupported);
}

TEST(TokenizerMetadata, RejectsMissingOrOtherPre) {
  MiniGguf g = toy();
  g.kv.erase("tokenizer.ggml.pre");
  expect_rejected(g, "tokenizer.ggml.pre");
  g = toy();
  g.kv["tokenizer.ggml.pre"] = std::string("llama-bpe");
  expect_rejected(g, "'llama-bpe' is not supported", ErrorKind::Unsupported);
}

TEST(TokenizerMetadata, RejectsInconsistentVocabulary) {
  MiniGguf g = toy();
  g.kv.erase("tokenizer.ggml.tokens");
  expect_rejected(g, "tokenizer.ggml.tokens");
  g = toy();
  g.kv["tokenizer.ggml.token_type"] = I32Array{1, 1};
  expect_rejected(g, "differ in length");
  g = toy();
  std::get<I32Array>(g.kv["tokenizer.ggml.token_type"])[5] = 9;
  expect_rejected(g, "unknown type 9");
  g = toy();
  std::get<StrArray>(g.kv["tokenizer.ggml.tokens"])[65] = "AA";  // byte 'A' has no token now
  expect_rejected(g, "lacks byte 65");
  g = toy();
  std::get<StrArray>(g.kv["tokenizer.ggml.tokens"])[256] = "h e";  // space is not byte-level
  expect_rejected(g, "byte-level alphabet");
  g = toy();
  g.kv["tokenizer.ggml.eos_token_id"] = uint32_t{263};
  expect_rejected(g, "eos_token_id");
}

TEST(TokenizerMetadata, RejectsBadMerges) {
  MiniGguf g = toy();
  g.kv.erase("tokenizer.ggml.merges");
  expect_rejected(g, "tokenizer.ggml.merges");
  g = toy();
  g.kv["tokenizer.ggml.merges"] = StrArray{"l l", "hell"};
  expect_rejected(g, "merge 1 is not");
  g = toy();
  g.kv["tokenizer.ggml.merges"] = StrArray{"x y"};  // "xy" is not a token
  expect_rejected(g, "merge 0 uses unknown token 'xy'");
}

}  // namespace
}  // namespace reel
