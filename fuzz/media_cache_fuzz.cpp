// libFuzzer target for the media cache's entry files: the input is written as the disk entry of
// a fixed key, as an image and as a video entry, and read through MediaCache. Any input must be
// either refused (a miss, the file deleted) or read back as a value that writes out to exactly
// the same bytes (the format has one encoding per value). Each input is tried twice: as it is,
// and resealed (payload size and checksum in the header made to match), so that mutations reach
// the payload parser behind the checksum, where every size must be bounded before allocating.
// Seeds (fuzz/corpus/media_cache/): valid entries written by MediaCache itself.
#include <unistd.h>
#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/media_cache.h"

namespace {

constexpr size_t kHeaderBytes = 48;  // see media_cache.cpp
// The key the seeds were written under (bytes 16..31 of their headers).
const reel::MediaKey kKey{0x0123456789abcdefull, 0xfedcba9876543210ull};

struct Workspace {
  std::string dir;
  std::unique_ptr<reel::MediaCache> cache;
  Workspace() {
    char tmpl[] = "/tmp/reel_media_cache_fuzz_XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    dir = tmpl;
    // No memory part: every find reads the entry file.
    cache = std::make_unique<reel::MediaCache>(0, dir);
  }
  ~Workspace() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

Workspace& workspace() {
  static Workspace w;
  return w;
}

void write_file(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  if (!out) std::abort();
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Reads `data` as the entry of `kind`; a value read back must write out to the same bytes.
void try_entry(const uint8_t* data, size_t size, reel::MediaKind kind) {
  Workspace& w = workspace();
  const std::string path = w.cache->entry_path(kKey, kind);
  write_file(path, data, size);
  bool found = false;
  if (kind == reel::MediaKind::Image) {
    if (auto image = w.cache->find_image(kKey)) {
      found = true;
      w.cache->put_image(kKey, image);
    }
  } else if (auto video = w.cache->find_video(kKey)) {
    found = true;
    w.cache->put_video(kKey, video);
  }
  const bool exists = std::filesystem::exists(path);
  if (found != exists) __builtin_trap();  // a refused entry must be gone, a good one kept
  if (found) {
    const std::vector<uint8_t> again = read_file(path);
    if (again.size() != size || std::memcmp(again.data(), data, size) != 0) __builtin_trap();
    std::filesystem::remove(path);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (auto kind : {reel::MediaKind::Image, reel::MediaKind::Video}) {
    try_entry(data, size, kind);
    if (size >= kHeaderBytes) {
      std::vector<uint8_t> sealed(data, data + size);
      const uint64_t payload = size - kHeaderBytes;
      const uint64_t sum = XXH3_64bits(sealed.data() + kHeaderBytes, payload);
      std::memcpy(sealed.data() + 32, &payload, sizeof payload);
      std::memcpy(sealed.data() + 40, &sum, sizeof sum);
      try_entry(sealed.data(), sealed.size(), kind);
    }
  }
  return 0;
}
