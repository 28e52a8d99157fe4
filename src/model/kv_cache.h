// One sequence's key/value cache: for every layer and KV head, the keys (and values) of positions
// [0, n_ctx) in f16 (default) or f32. The whole context is reserved as address space once, and
// memory is committed page by page as positions are written: a short conversation in a long
// context costs only what it holds. truncate() returns the pages past the new end.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace reel {

struct TextConfig;

enum class KvType : uint8_t { F16, F32 };
const char* kv_type_name(KvType type);  // "f16" | "f32"

class KvCache {
 public:
  // Throws reel::IoError when the address space cannot be reserved.
  KvCache(const TextConfig& config, int n_ctx, KvType type = KvType::F16);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int n_ctx() const { return n_ctx_; }
  int n_past() const { return n_past_; }
  int room() const { return n_ctx_ - n_past_; }
  KvType type() const { return type_; }
  GgmlType element_type() const { return type_ == KvType::F16 ? GgmlType::F16 : GgmlType::F32; }
  size_t element_bytes() const { return type_ == KvType::F16 ? 2 : 4; }

  // Forget every position from n on (n <= n_past); whole pages past n go back to the system.
  void truncate(int n);
  // Memory the cache holds now: the pages its positions occupy.
  size_t bytes() const;
  // The same for a cache holding n tokens of this shape (what a request would need).
  size_t bytes_for(int n_tokens) const;
  // Memory of a full context of this shape and type (for the up-front check against RAM).
  static size_t full_bytes(const TextConfig& config, int n_ctx, KvType type);

  // Keys (values) of one layer's KV head: position p at element p * head_dim.
  void* keys(int layer, int head) { return base(0, layer, head); }
  void* values(int layer, int head) { return base(1, layer, head); }
  // Elements from one KV head's block to the next (page aligned).
  int64_t head_stride() const { return int64_t(block_bytes_ / element_bytes()); }
  // Moves the end after a forward pass wrote positions [n_past, n_past + n).
  void advance(int n);

 private:
  void* base(int kv, int layer, int head) {
    return data_ + ((size_t(kv) * n_layer_ + layer) * n_head_kv_ + head) * block_bytes_;
  }
  size_t block_pages_bytes(int n_tokens) const;

  int n_ctx_ = 0, n_past_ = 0, high_water_ = 0;
  int n_layer_ = 0, n_head_kv_ = 0, head_dim_ = 0;
  KvType type_ = KvType::F16;
  size_t block_bytes_ = 0;  // one (layer, KV head) block of n_ctx rows, page aligned
  size_t reserved_ = 0;
  uint8_t* data_ = nullptr;
};

}  // namespace reel
