#include "tokenizer/bpe.h"

#include <algorithm>
#include <queue>

#include "tokenizer/utf8.h"

namespace reel::bpe {
namespace {

// The GPT-2 table: printable Latin-1 bytes stand for themselves, the other 68 bytes take the
// code points from U+0100 up, in byte order.
std::array<char32_t, 256> byte_to_char() {
  std::array<char32_t, 256> table{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    table[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return table;
}

// Inverse of byte_to_char, over code points 0..323; -1 where no byte maps.
const std::array<int16_t, 324>& char_to_byte() {
  static const std::array<int16_t, 324> table = [] {
    std::array<int16_t, 324> t;
    t.fill(-1);
    const auto fwd = byte_to_char();
    for (int b = 0; b < 256; ++b) t[fwd[b]] = static_cast<int16_t>(b);
    return t;
  }();
  return table;
}

struct Symbol {
  int32_t id;
  int32_t prev;  // -1 at the start
  int32_t next;  // -1 at the end
};

// A candidate merge of the symbol at `pos` with its right neighbour; ids detect staleness.
struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t left;
  int32_t right;
  int32_t merged;
  // priority_queue is a max-heap: "less" means lower priority (higher rank, later position).
  bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

bool unmap_bytes(std::string_view text, std::string* bytes) {
  const auto& table = char_to_byte();
  bytes->clear();
  for (size_t i = 0; i < text.size();) {
    const utf8::Scan sc = utf8::scan(text.substr(i));
    if (sc.kind != utf8::Scan::kValid || sc.cp >= table.size() || table[sc.cp] < 0) return false;
    bytes->push_back(static_cast<char>(table[sc.cp]));
    i += sc.len;
  }
  return true;
}

void Merger::add_merge(int32_t left, int32_t right, int32_t merged, int32_t rank) {
  // The first occurrence of a pair wins, like HF's merge map built from the list.
  merges_.try_emplace(key(left, right), Merge{rank, merged});
}

const Merger::Merge* Merger::find(int32_t l, int32_t r) const {
  const auto it = merges_.find(key(l, r));
  return it == merges_.end() ? nullptr : &it->second;
}

void Merger::encode(std::string_view piece, std::vector<int32_t>* out) const {
  const auto n = static_cast<int32_t>(piece.size());
  if (n == 0) return;
  if (n == 1) {
    out->push_back(byte_ids_[static_cast<uint8_t>(piece[0])]);
    return;
  }
  std::vector<Symbol> syms(n);
  for (int32_t i = 0; i < n; ++i) {
    syms[i] = {byte_ids_[static_cast<uint8_t>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};
  }
  std::vector<Candidate> storage;
  storage.reserve(n);
  std::priority_queue<Candidate> heap(std::less<Candidate>(), std::move(storage));
  auto consider = [&](int32_t pos) {
    const int32_t nx = syms[pos].next;
    if (nx < 0) return;
    if (const Merge* m = find(syms[pos].id, syms[nx].id)) {
      heap.push({m->rank, pos, syms[pos].id, syms[nx].id, m->merged});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);

  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Symbol& left = syms[c.pos];
    const int32_t nx = left.next;
    // Stale: the left symbol was absorbed or changed, or its neighbour changed.
    if (left.id != c.left || nx < 0 || syms[nx].id != c.right) continue;
    left.id = c.merged;
    left.next = syms[nx].next;
    if (left.next >= 0) syms[left.next].prev = c.pos;
    syms[nx].id = -1;
    if (left.prev >= 0) consider(left.prev);
    consider(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = syms[i].next) out->push_back(syms[i].id);
}

}  // namespace reel::bpe
