// GGUF v2/v3 reader. The file is memory-mapped and validated once at open: every count,
// string length, array length, tensor shape, offset and size is checked for overflow and
// against the file size before anything points into the mapping. After open() succeeds all
// views below are safe to dereference for the lifetime of the File.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gguf/types.h"

namespace reel::gguf {

enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view value_type_name(ValueType t);

// A metadata value. Scalars are decoded; strings point into the mapping. Arrays of fixed-size
// scalars are kept raw (decoded on demand by the getters) so that a huge array costs no
// memory beyond the mapping; string arrays keep a view per element; nested arrays are Values.
struct Value {
  ValueType type = ValueType::U8;
  int64_t i = 0;    // signed integer types and BOOL (0/1)
  uint64_t u = 0;   // unsigned integer types
  double f = 0;     // F32, F64
  std::string_view str;                 // STRING
  ValueType elem_type = ValueType::U8;  // ARRAY: element type
  uint64_t count = 0;                   // ARRAY: number of elements
  const uint8_t* raw = nullptr;         // ARRAY of fixed-size scalars: little-endian elements
  std::vector<std::string_view> strs;   // ARRAY of STRING
  std::vector<Value> elems;             // ARRAY of ARRAY

  bool is_integer() const;
};

struct KeyValue {
  std::string_view key;
  Value value;
};

struct TensorInfo {
  std::string_view name;
  int n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous dimension
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;           // relative to the data section
  const uint8_t* data = nullptr; // into the mapping
  uint64_t nbytes = 0;

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
};

// How File::open holds a file's bytes.
//  kMap: a private read-only mapping, paged in on first touch; nothing is read up front, and
//    processes share the page cache.
//  kHugePages: read at open into anonymous memory that asks the kernel for transparent huge
//    pages (madvise), then made read-only. A decode step streams every weight once; with 4 KiB
//    pages that is a TLB miss and a cold start of the hardware prefetcher every 4 KiB, with
//    2 MiB pages neither. Measured (2B-shaped Q8_0, one thread, Intel Xeon, 5 alternated
//    pairs): 5.71-6.01 tokens/s against 5.26-5.51 mapped; anonymous 4 KiB pages were no faster
//    than the mapping.
//    The price is at start: every page of the copy is fresh memory. On this project's VM the
//    kernel's zeroing of it (host faults on first touch) made loading the 1.8 GB model take
//    3.4-9.5 s against 2.1 s mapped (warm page cache), hence not the default.
//  kAuto: kHugePages for files of at least kHugePagesMinBytes when the kernel's transparent
//    huge pages are enabled ("always" or "madvise") and the copy fits in available memory,
//    else kMap (`--hugepages`). Either way the file is validated on a mapping first, so a file
//    that is not a model is refused before anything is copied.
enum class LoadMode { kAuto, kMap, kHugePages };
constexpr size_t kHugePagesMinBytes = size_t{64} << 20;

class File {
 public:
  // Maps (or reads, see LoadMode) and validates `path`. Throws reel::Error("<path>: <what is
  // wrong>") on any problem.
  static std::unique_ptr<File> open(const std::string& path, LoadMode mode = LoadMode::kMap);
  // Validates a GGUF image already in memory (tests, fuzzers). The File does not own `data`,
  // which must outlive it; `name` stands in for the path in messages.
  static std::unique_ptr<File> from_memory(const uint8_t* data, size_t size, std::string name);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the tensor data section
  size_t size() const { return size_; }
  bool huge_pages() const { return huge_pages_; }  // open() took LoadMode::kHugePages
  const std::vector<KeyValue>& metadata() const { return kv_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  const Value* find(std::string_view key) const;
  const TensorInfo* find_tensor(std::string_view name) const;

  // Typed getters: throw reel::Error naming the key and file when the key is missing or
  // holds another type. Integer getters accept any integer type whose value fits.
  uint32_t get_u32(std::string_view key) const;
  uint64_t get_u64(std::string_view key) const;
  int64_t get_i64(std::string_view key) const;
  float get_f32(std::string_view key) const;  // F32 or F64
  bool get_bool(std::string_view key) const;
  std::string_view get_str(std::string_view key) const;
  // Arrays; element type must match (any integer type for the integer ones).
  std::vector<std::string_view> get_str_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;
  std::vector<float> get_f32_array(std::string_view key) const;
  std::vector<bool> get_bool_array(std::string_view key) const;

  // Optional variants: nullopt when the key is absent (still throw on a type mismatch).
  std::optional<uint32_t> opt_u32(std::string_view key) const;
  std::optional<float> opt_f32(std::string_view key) const;
  std::optional<bool> opt_bool(std::string_view key) const;
  std::optional<std::string_view> opt_str(std::string_view key) const;

 private:
  File() = default;
  // A File over `map` (size bytes of file image, `mapped` to unmap), parsed and validated.
  static std::unique_ptr<File> adopt(const std::string& path, void* map, size_t size, size_t mapped,
                                     bool huge_pages);
  const Value& get(std::string_view key) const;  // throws when absent
  [[noreturn]] void fail(std::string_view what) const;

  std::string path_;
  const uint8_t* map_ = nullptr;
  size_t size_ = 0;
  bool owns_mapping_ = false;  // true when map_ came from mmap() and must be unmapped
  size_t mapped_bytes_ = 0;    // the length to unmap (size_ rounded up for kHugePages)
  bool huge_pages_ = false;    // read into huge-page memory (LoadMode::kHugePages)
  uint64_t data_offset_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<KeyValue> kv_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> kv_index_;      // key -> index in kv_
  std::unordered_map<std::string_view, size_t> tensor_index_;  // name -> index in tensors_
  friend class Parser;
};

}  // namespace reel::gguf
