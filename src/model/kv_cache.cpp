#include "model/kv_cache.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "common/error.h"
#include "model/qwen3vl_text.h"

namespace reel {
namespace {

size_t page_size() {
  static const size_t page = [] {
    const long p = sysconf(_SC_PAGE_SIZE);
    return p > 0 ? size_t(p) : size_t{4096};
  }();
  return page;
}

size_t round_up(size_t n, size_t to) {
  return (n + to - 1) / to * to;
}

}  // namespace

const char* kv_type_name(KvType type) {
  return type == KvType::F16 ? "f16" : "f32";
}

KvCache::KvCache(const TextConfig& c, int n_ctx, KvType type)
    : n_ctx_(n_ctx),
      n_layer_(c.n_layer),
      n_head_kv_(c.n_head_kv),
      head_dim_(c.head_dim),
      type_(type) {
  if (n_ctx < 1) throw InternalError("a KV cache needs a positive context");
  block_bytes_ = round_up(size_t(n_ctx) * head_dim_ * element_bytes(), page_size());
  reserved_ = 2 * size_t(n_layer_) * n_head_kv_ * block_bytes_;
  // Address space only: the kernel commits (zeroed) pages as positions are first written.
  void* p = mmap(nullptr, reserved_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    throw IoError("cannot reserve " + std::to_string(reserved_ >> 20) +
                  " MiB of address space for a KV cache of " + std::to_string(n_ctx) + " tokens");
  data_ = static_cast<uint8_t*>(p);
}

KvCache::~KvCache() {
  if (data_) munmap(data_, reserved_);
}

size_t KvCache::block_pages_bytes(int n_tokens) const {
  return std::min(block_bytes_,
                  round_up(size_t(n_tokens) * head_dim_ * element_bytes(), page_size()));
}

size_t KvCache::bytes_for(int n_tokens) const {
  return 2 * size_t(n_layer_) * n_head_kv_ * block_pages_bytes(n_tokens);
}

size_t KvCache::bytes() const {
  return bytes_for(high_water_);
}

size_t KvCache::full_bytes(const TextConfig& c, int n_ctx, KvType type) {
  const size_t elem = type == KvType::F16 ? 2 : 4;
  return 2 * size_t(c.n_layer) * c.n_head_kv * size_t(n_ctx) * c.head_dim * elem;
}

void KvCache::advance(int n) {
  if (n < 0 || n > room()) throw InternalError("KV cache advanced past its context");
  n_past_ += n;
  high_water_ = std::max(high_water_, n_past_);
}

void KvCache::truncate(int n) {
  if (n < 0 || n > n_past_) throw InternalError("cannot truncate the KV cache beyond its length");
  n_past_ = n;
  const size_t keep = block_pages_bytes(n), held = block_pages_bytes(high_water_);
  if (keep < held) {
    for (size_t b = 0; b < 2 * size_t(n_layer_) * n_head_kv_; ++b)
      madvise(data_ + b * block_bytes_ + keep, held - keep, MADV_DONTNEED);
  }
  high_water_ = n;
}

}  // namespace reel
