// Byte-level BPE over token ids: symbols start as the single-byte tokens and the pair with the
// lowest merge rank (leftmost on ties) is merged until no ranked pair is left, as HF's BPE
// model does without dropout. A heap keeps this O(n log n) in the piece length.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace reel::bpe {

// GPT-2's byte <-> printable-character table: vocab entries spell bytes with these characters.
// Returns false when `text` uses a character outside the table.
bool unmap_bytes(std::string_view text, std::string* bytes);

class Merger {
 public:
  // byte_ids[b]: id of the token that is the single byte b.
  explicit Merger(const std::array<int32_t, 256>& byte_ids) : byte_ids_(byte_ids) {}

  void add_merge(int32_t left, int32_t right, int32_t merged, int32_t rank);
  void reserve(size_t n) { merges_.reserve(n); }

  // Appends the ids of one pre-tokenized piece (raw bytes) to out.
  void encode(std::string_view piece, std::vector<int32_t>* out) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t merged;
  };
  static uint64_t key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  const Merge* find(int32_t l, int32_t r) const;

  std::array<int32_t, 256> byte_ids_;
  std::unordered_map<uint64_t, Merge> merges_;
};

}  // namespace reel::bpe
