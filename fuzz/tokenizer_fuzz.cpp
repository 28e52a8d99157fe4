// libFuzzer target for the tokenizer: arbitrary bytes (invalid UTF-8 included) must encode
// without crashing, with and without special-token parsing, and the ids must decode, in one go
// and streamed, to the same valid UTF-8. The Qwen3-VL vocabulary fixture is loaded once; its
// path is REEL_TOKENIZER_VOCAB (environment variable, else the build-time default).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace {

const reel::Tokenizer& tokenizer() {
  static const auto tok = [] {
    const char* env = std::getenv("REEL_TOKENIZER_VOCAB");
    const auto file = reel::gguf::File::open(env ? env : REEL_TOKENIZER_VOCAB);
    return reel::Tokenizer::from_gguf(*file);
  }();
  return *tok;
}

// Encoding replaced invalid input with U+FFFD, so the ids must spell valid UTF-8, and the
// stream decoder (which holds back and replaces bytes) must then give exactly the same text.
void check_round_trip(const std::vector<reel::TokenId>& ids) {
  const reel::Tokenizer& tok = tokenizer();
  const std::string whole = tok.decode(ids);
  reel::StreamDecoder stream(tok);
  std::string streamed;
  for (reel::TokenId id : ids) streamed += stream.push(id);
  streamed += stream.flush();
  if (!reel::utf8::is_valid(whole)) {
    std::fprintf(stderr, "decode gave invalid UTF-8\n");
    std::abort();
  }
  if (streamed != whole) {
    std::fprintf(stderr, "streamed decode differs from decode\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const reel::Tokenizer& tok = tokenizer();
  for (bool special : {true, false}) {
    const auto ids = tok.encode(text, special);
    for (reel::TokenId id : ids) {
      if (id < 0 || id >= tok.vocab_size()) std::abort();
    }
    check_round_trip(ids);
  }
  return 0;
}
