// A tiny GGUF writer for tests: appends raw little-endian fields, so tests can build both
// valid files and files broken in exactly one place.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace reel::gguf::testing {

class Builder {
 public:
  Builder& u8(uint8_t v) { return raw(&v, 1); }
  Builder& u32(uint32_t v) { return raw(&v, 4); }
  Builder& u64(uint64_t v) { return raw(&v, 8); }
  Builder& f32(float v) { return raw(&v, 4); }
  Builder& str(std::string_view s) {
    u64(s.size());
    return raw(s.data(), s.size());
  }
  Builder& raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
    return *this;
  }
  Builder& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    return u32(0x46554747).u32(version).u64(tensors).u64(kvs);
  }
  // Key + value type; the caller appends the value.
  Builder& key(std::string_view k, uint32_t type) { return str(k).u32(type); }
  Builder& kv_u32(std::string_view k, uint32_t v) { return key(k, 4).u32(v); }
  Builder& kv_str(std::string_view k, std::string_view v) { return key(k, 8).str(v); }
  Builder& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t n : ne) u64(n);
    return u32(type).u64(offset);
  }
  Builder& pad_to(size_t alignment) {
    while (bytes_.size() % alignment != 0) bytes_.push_back(0);
    return *this;
  }
  Builder& zeros(size_t n) {
    bytes_.resize(bytes_.size() + n);
    return *this;
  }
  size_t size() const { return bytes_.size(); }
  std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace reel::gguf::testing
