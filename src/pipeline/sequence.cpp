#include "pipeline/sequence.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>

#include "common/error.h"

namespace reel {
namespace {

double physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? double(pages) * double(page) : 0.0;
}

// The KV cache may take at most this share of physical memory.
constexpr double kMaxKvShareOfRam = 0.8;

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / double(1 << 30));
  return buf;
}

uint64_t mix(uint64_t x) {  // splitmix64's finalizer: spreads (block, row) over 64 bits
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

constexpr uint64_t kVisualBit = 1ULL << 63;

uint64_t unique_id() {
  return new_block_identity();
}

int resolve_ctx(const Model& model, int n_ctx, KvType type) {
  const TextConfig& c = model.text_config();
  if (n_ctx < 0) throw Error("the context size must not be negative");
  if (n_ctx == 0) n_ctx = c.n_ctx_train;
  if (n_ctx > c.n_ctx_train)
    throw Error("a context of " + std::to_string(n_ctx) +
                " tokens exceeds the model's context length " + std::to_string(c.n_ctx_train));
  check_kv_memory(n_ctx, double(model.decoder().state_bytes(n_ctx, type)), physical_memory_bytes());
  return n_ctx;
}

}  // namespace

uint64_t new_block_identity() {
  static std::atomic<uint64_t> next{1};
  return mix(next.fetch_add(1) ^ 0x5EEDULL) | 1;  // never 0
}

void check_kv_memory(int n_ctx, double kv_bytes, double ram_bytes) {
  if (ram_bytes > 0 && kv_bytes > kMaxKvShareOfRam * ram_bytes)
    throw Error("a context of " + std::to_string(n_ctx) + " tokens needs " + gib(kv_bytes) +
                " of KV cache, more than the " + gib(kMaxKvShareOfRam * ram_bytes) +
                " it may take (80% of this machine's " + gib(ram_bytes) +
                " of memory); use a smaller context");
}

std::vector<uint64_t> prompt_keys(std::span<const int32_t> ids, std::span<const VisualBlock> blocks,
                                  int32_t image_pad, int32_t video_pad) {
  std::vector<uint64_t> keys(ids.size());
  size_t b = 0;
  int k = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const bool pad = ids[i] >= 0 && (ids[i] == image_pad || ids[i] == video_pad);
    if (!pad || b >= blocks.size()) {  // (unmatched pads are refused by layout_prompt)
      keys[i] = static_cast<uint32_t>(ids[i]);
      continue;
    }
    // A block without an identity (0) matches nothing, not even itself in a later prompt.
    const uint64_t id = blocks[b].id ? blocks[b].id : unique_id();
    keys[i] = kVisualBit | mix(id * 0x9E3779B97F4A7C15ULL + uint64_t(k));
    if (++k == blocks[b].hm * blocks[b].wm) {
      k = 0;
      ++b;
    }
  }
  return keys;
}

Sequence::Sequence(const Model& model, SequenceOptions o)
    : n_ctx_(resolve_ctx(model, o.n_ctx, o.kv_type)),
      state_(model.decoder().new_state(n_ctx_, o.kv_type)) {
  keys_.reserve(n_ctx_);
  next_after_.reserve(n_ctx_);
}

int Sequence::common_prefix(std::span<const uint64_t> keys) const {
  const size_t n = std::min(keys.size(), keys_.size());
  size_t i = 0;
  while (i < n && keys[i] == keys_[i]) ++i;
  return static_cast<int>(i);
}

int Sequence::reusable_prefix(std::span<const uint64_t> keys, int max) const {
  const int n = std::min(common_prefix(keys), max);
  return state_->rewind_point(n);
}

void Sequence::truncate(int n) {
  n = state_->rewind_point(std::min(n, n_past()));  // e.g. a recurrent state's checkpoint
  state_->truncate(n);
  keys_.resize(n);
  next_after_.resize(n);
}

void Sequence::record_one(uint64_t key, const Pos3& p) {
  const int32_t after = std::max({p.t, p.h, p.w}) + 1;
  keys_.push_back(key);
  next_after_.push_back(std::max(after, next_pos()));
}

void Sequence::record(std::span<const uint64_t> keys, std::span<const Pos3> pos) {
  for (size_t i = 0; i < keys.size(); ++i) record_one(keys[i], pos[i]);
}

}  // namespace reel
