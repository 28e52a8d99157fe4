// Encoded-media cache: the vision encoder's output for an image or a video, kept so that a second
// question about the same file skips decoding and encoding. Entries are keyed by a hash of the
// file's bytes, of everything that decides the encoding and of the vision model's identity.
// They live in memory (least recently used dropped first, bounded in bytes) and, optionally, on
// disk in a folder shared by every process, one checksummed file per entry. A corrupt, truncated
// or foreign entry file is detected, deleted and reported as a miss, never trusted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "pipeline/image_encoder.h"
#include "pipeline/video_encoder.h"

namespace reel {

namespace gguf {
class File;
}

// A 128-bit hash (XXH3-128).
struct MediaKey {
  uint64_t lo = 0, hi = 0;
  std::string hex() const;  // 32 lower-case hex digits, hi first
  bool operator==(const MediaKey&) const = default;
};

// XXH3-128 of a file's bytes, read in chunks after the checks of open_regular_file (a FIFO,
// device or directory is refused). Throws reel::Error naming the file.
MediaKey hash_file(const std::string& path);

// Identity of a model file: its GGUF metadata, tensor table and a sample of each tensor's bytes
// (the first, middle and last few KiB), cheap at load. Two files that differ only in weight
// bytes outside every sample share an identity; training changes every tensor throughout.
MediaKey model_identity(const gguf::File& mmproj);

// Cache keys. Each folds in a format version and the kind, so an image and a video key never
// collide and a change of what the key covers invalidates old entries.
// Image: the file, its model-input size and the model.
MediaKey image_key(const MediaKey& file, int resized_w, int resized_h, const MediaKey& model);
// Video: the file, the plan's sampled indices, frame of each slot, group times, resized size and
// grid, as_images and display_corrections, and the model. The plan's notes (words about the
// budget) are not part of the key: a hit may carry the notes of the plan that made the entry.
MediaKey video_key(const MediaKey& file, const VideoPlan& plan, const MediaKey& model);

struct MediaCacheStats {
  int64_t memory_hits = 0, disk_hits = 0, misses = 0;
  int64_t corrupt_dropped = 0;  // entry files found wrong and deleted
  int64_t evictions = 0;        // memory entries dropped for space
  int64_t disk_writes = 0;      // entry files written
  int64_t disk_evictions = 0;   // entry files deleted to keep the folder under its limit
  int64_t disk_write_failures = 0;
  size_t memory_bytes = 0;
  size_t memory_entries = 0;
};

enum class MediaKind : uint32_t { Image = 1, Video = 2 };

// Thread-safe: one mutex guards the memory part; disk reads and writes run outside it.
class MediaCache {
 public:
  // memory_limit_bytes: the most the memory part holds (0: nothing kept in memory).
  // disk_dir: empty for no disk part; otherwise created if missing. Throws reel::Error when it
  // exists and is not a folder or cannot be created.
  // note: called (from the thread that met it) with a one-line message when disk writing fails;
  // after the first failure the cache stops writing to disk for its lifetime (a full disk or a
  // read-only folder does not mend itself), and keeps reading.
  // disk_limit_bytes: the most the folder's entries may take (0: no limit). After each write the
  // least recently used entries go (by modification time, which a disk hit renews), so the
  // folder stays bounded even when several processes share it.
  explicit MediaCache(size_t memory_limit_bytes, std::string disk_dir = "",
                      std::function<void(const std::string&)> note = nullptr,
                      uint64_t disk_limit_bytes = 0);

  // Memory first, then disk (a disk hit is kept in memory). Null on a miss.
  std::shared_ptr<const EncodedImage> find_image(const MediaKey& key);
  std::shared_ptr<const EncodedVideo> find_video(const MediaKey& key);
  // Into memory (unless larger than the whole limit) and onto disk if enabled. Never throws
  // for a disk problem; a null value is ignored.
  void put_image(const MediaKey& key, std::shared_ptr<const EncodedImage> value);
  void put_video(const MediaKey& key, std::shared_ptr<const EncodedVideo> value);

  MediaCacheStats stats() const;
  // Where the entry for `key` lives on disk (empty without a disk part).
  std::string entry_path(const MediaKey& key, MediaKind kind) const;

 private:
  struct Entry {
    MediaKey key;
    MediaKind kind;
    std::shared_ptr<const void> value;  // EncodedImage or EncodedVideo, by kind
    size_t bytes = 0;
  };
  struct SlotHash {
    size_t operator()(const std::pair<MediaKey, MediaKind>& k) const {
      return size_t(k.first.lo ^ (k.first.hi * 31) ^ uint64_t(k.second));
    }
  };
  using Lru = std::list<Entry>;

  std::shared_ptr<const void> find(const MediaKey& key, MediaKind kind);
  void put(const MediaKey& key, MediaKind kind, std::shared_ptr<const void> value, size_t bytes);
  std::shared_ptr<const void> memory_find(const MediaKey& key, MediaKind kind);
  void memory_put(const MediaKey& key, MediaKind kind, std::shared_ptr<const void> value,
                  size_t bytes);
  std::shared_ptr<const void> disk_read(const MediaKey& key, MediaKind kind);
  void disk_write(const MediaKey& key, MediaKind kind, const void* value);
  void drop_file(const std::string& path, uint64_t dev, uint64_t ino);
  void trim_disk();

  const size_t limit_;
  const std::string dir_;
  const std::function<void(const std::string&)> note_;
  const uint64_t disk_limit_;
  mutable std::mutex mutex_;
  Lru lru_;  // most recently used first
  std::unordered_map<std::pair<MediaKey, MediaKind>, Lru::iterator, SlotHash> index_;
  MediaCacheStats stats_;
  bool disk_writable_ = true;
};

// Bytes an entry is charged in memory: its floats plus its metadata.
size_t memory_bytes(const EncodedImage& image);
size_t memory_bytes(const EncodedVideo& video);

}  // namespace reel
