#include "tokenizer/tokenizer.h"

#include <array>
#include <limits>
#include <unordered_map>
#include <utility>

#include "common/error.h"
#include "gguf/gguf.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/utf8.h"

namespace reel {
namespace {

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum TokenType : int64_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

// Byte trie over the added tokens, for leftmost-longest matching in the raw text.
class AddedTrie {
 public:
  AddedTrie() : nodes_(1) {}

  void add(std::string_view text, TokenId id, bool control) {
    int32_t node = 0;
    for (char ch : text) node = child_or_new(node, static_cast<uint8_t>(ch));
    if (nodes_[node].id < 0) {
      nodes_[node].id = id;
      nodes_[node].control = control;
    }
    first_[static_cast<uint8_t>(text[0])] = true;
  }

  // Longest added token starting at s[i] (control ones only when allowed): {length, id}.
  std::pair<size_t, TokenId> match(std::string_view s, size_t i, bool allow_control) const {
    std::pair<size_t, TokenId> best{0, -1};
    if (!first_[static_cast<uint8_t>(s[i])]) return best;
    int32_t node = 0;
    for (size_t j = i; j < s.size(); ++j) {
      node = child(node, static_cast<uint8_t>(s[j]));
      if (node < 0) break;
      const Node& n = nodes_[node];
      if (n.id >= 0 && (allow_control || !n.control)) best = {j + 1 - i, n.id};
    }
    return best;
  }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> kids;
    TokenId id = -1;
    bool control = false;
  };

  int32_t child(int32_t node, uint8_t b) const {
    for (const auto& [byte, kid] : nodes_[node].kids) {
      if (byte == b) return kid;
    }
    return -1;
  }
  int32_t child_or_new(int32_t node, uint8_t b) {
    if (int32_t kid = child(node, b); kid >= 0) return kid;
    nodes_.emplace_back();
    const auto kid = static_cast<int32_t>(nodes_.size() - 1);
    nodes_[node].kids.emplace_back(b, kid);
    return kid;
  }

  std::vector<Node> nodes_;
  std::array<bool, 256> first_{};
};

}  // namespace

struct Tokenizer::Impl {
  std::vector<std::string> bytes;                         // per id: what the token decodes to
  std::vector<uint8_t> types;                             // per id: TokenType
  std::unordered_map<std::string_view, TokenId> by_text;  // vocab entry -> id (first wins)
  std::vector<std::string> texts;                         // backing store for by_text keys
  AddedTrie added;
  std::unique_ptr<bpe::Merger> merger;
  pretok::Regex regex = pretok::Regex::kQwen2;
  TokenId eos = -1;

  void load_tokens(const gguf::File& f);
  void load_merges(const gguf::File& f);
  void encode_plain(std::string_view text, std::vector<TokenId>* out) const;
};

namespace {

std::string where(const gguf::File& f) {
  return f.path() + ": ";
}

// The pre-tokenizer named by tokenizer.ggml.pre: Qwen2's split ("qwen2", Qwen2 to Qwen3-VL)
// or Qwen3.5's, which keeps combining marks with their letters ("qwen35").
pretok::Regex check_kind(const gguf::File& f) {
  const auto model = f.opt_str("tokenizer.ggml.model");
  if (!model) throw Error(where(f) + "no tokenizer (tokenizer.ggml.model missing)");
  if (*model != "gpt2") {
    throw Unsupported(where(f) + "tokenizer model '" + std::string(*model) +
                      "' is not supported (need gpt2)");
  }
  const auto pre = f.opt_str("tokenizer.ggml.pre");
  if (!pre) throw Error(where(f) + "tokenizer.ggml.pre missing (need qwen2 or qwen35)");
  if (*pre == "qwen2") return pretok::Regex::kQwen2;
  if (*pre == "qwen35") return pretok::Regex::kQwen35;
  throw Unsupported(where(f) + "pre-tokenizer '" + std::string(*pre) +
                    "' is not supported (need qwen2 or qwen35)");
}

}  // namespace

void Tokenizer::Impl::load_tokens(const gguf::File& f) {
  const auto tokens = f.get_str_array("tokenizer.ggml.tokens");
  const size_t n = tokens.size();
  if (n == 0 || n > static_cast<size_t>(std::numeric_limits<TokenId>::max())) {
    throw Error(where(f) + "tokenizer.ggml.tokens has " + std::to_string(n) + " entries");
  }
  std::vector<int64_t> tt(n, kNormal);
  if (f.find("tokenizer.ggml.token_type")) tt = f.get_int_array("tokenizer.ggml.token_type");
  if (tt.size() != n)
    throw Error(where(f) + "tokenizer.ggml.token_type and tokens differ in length");

  bytes.resize(n);
  types.resize(n);
  texts.assign(tokens.begin(), tokens.end());
  by_text.reserve(n);
  std::unordered_map<std::string_view, TokenId> by_bytes;  // BPE tokens only
  by_bytes.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<TokenId>(i);
    const std::string_view text = texts[i];
    if (tt[i] < kNormal || tt[i] > kByte) {
      throw Error(where(f) + "token " + std::to_string(i) + " has unknown type " +
                  std::to_string(tt[i]));
    }
    types[i] = static_cast<uint8_t>(tt[i]);
    by_text.try_emplace(text, id);
    if (tt[i] == kControl || tt[i] == kUserDefined) {
      // Added tokens are stored as plain text and matched in the raw input.
      bytes[i] = text;
      if (!text.empty()) added.add(text, id, tt[i] == kControl);
    } else if (!bpe::unmap_bytes(text, &bytes[i])) {
      if (tt[i] != kUnused) {
        throw Error(where(f) + "token " + std::to_string(i) + " is not in the byte-level alphabet");
      }
      bytes[i] = text;
    } else if (tt[i] != kUnused) {
      by_bytes.try_emplace(bytes[i], id);
    }
  }

  std::array<TokenId, 256> byte_ids;
  for (int b = 0; b < 256; ++b) {
    const auto it = by_bytes.find(std::string_view(reinterpret_cast<const char*>(&b), 1));
    if (it == by_bytes.end()) throw Error(where(f) + "vocabulary lacks byte " + std::to_string(b));
    byte_ids[b] = it->second;
  }
  merger = std::make_unique<bpe::Merger>(byte_ids);
}

void Tokenizer::Impl::load_merges(const gguf::File& f) {
  const auto merges = f.get_str_array("tokenizer.ggml.merges");
  merger->reserve(merges.size());
  auto lookup = [&](std::string_view text, size_t rank) {
    const auto it = by_text.find(text);
    if (it == by_text.end() || types[it->second] == kControl || types[it->second] == kUserDefined) {
      throw Error(where(f) + "merge " + std::to_string(rank) + " uses unknown token '" +
                  std::string(text) + "'");
    }
    return it->second;
  };
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string_view m = merges[rank];
    const size_t sp = m.find(' ');
    if (sp == 0 || sp == std::string_view::npos || sp + 1 == m.size() ||
        m.find(' ', sp + 1) != std::string_view::npos) {
      throw Error(where(f) + "merge " + std::to_string(rank) + " is not 'left right'");
    }
    const std::string_view l = m.substr(0, sp), r = m.substr(sp + 1);
    joined.assign(l).append(r);
    merger->add_merge(lookup(l, rank), lookup(r, rank), lookup(joined, rank),
                      static_cast<int32_t>(rank));
  }
}

void Tokenizer::Impl::encode_plain(std::string_view text, std::vector<TokenId>* out) const {
  if (text.empty()) return;
  // HF normalizes the text between added tokens, then splits it.
  const std::string norm = pretok::nfc(text);
  for (std::string_view piece : pretok::split(norm, regex)) merger->encode(piece, out);
}

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  const pretok::Regex regex = check_kind(file);
  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  Impl& im = *tok->impl_;
  im.regex = regex;
  im.load_tokens(file);
  im.load_merges(file);
  if (const auto eos = file.opt_u32("tokenizer.ggml.eos_token_id")) {
    if (*eos >= im.bytes.size()) {
      throw Error(where(file) + "tokenizer.ggml.eos_token_id " + std::to_string(*eos) +
                  " is outside the vocabulary");
    }
    im.eos = static_cast<TokenId>(*eos);
  }
  return tok;
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool parse_special) const {
  std::string clean;
  if (!utf8::is_valid(text)) {
    clean = utf8::sanitize(text);
    text = clean;
  }
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 1);
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    const auto [len, id] = impl_->added.match(text, i, parse_special);
    if (len == 0) {
      ++i;
      continue;
    }
    impl_->encode_plain(text.substr(start, i - start), &out);
    out.push_back(id);
    i += len;
    start = i;
  }
  impl_->encode_plain(text.substr(start), &out);
  return out;
}

std::string Tokenizer::token_bytes(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->bytes.size()) {
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
  }
  return impl_->bytes[id];
}

std::string Tokenizer::decode(const std::vector<TokenId>& ids) const {
  std::string out;
  for (TokenId id : ids) out += token_bytes(id);
  return out;
}

int32_t Tokenizer::vocab_size() const {
  return static_cast<int32_t>(impl_->bytes.size());
}

TokenId Tokenizer::token_id(std::string_view text) const {
  const auto it = impl_->by_text.find(text);
  return it == impl_->by_text.end() ? -1 : it->second;
}

bool Tokenizer::is_control(TokenId id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->types.size() && impl_->types[id] == kControl;
}

TokenId Tokenizer::eos_id() const {
  return impl_->eos;
}

std::string StreamDecoder::push(TokenId id) {
  pending_ += tok_.token_bytes(id);
  size_t used = 0;
  std::string out = utf8::take_complete(pending_, &used);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = utf8::sanitize(pending_);
  pending_.clear();
  return out;
}

}  // namespace reel
