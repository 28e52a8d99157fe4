// GGUF reader: maps the file, then walks it once with a bounds-checked cursor. Nothing points
// into the mapping until the bytes it covers have been checked to lie inside the file, and
// every size computed from file contents is overflow-checked before use.
#include "gguf/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "common/fs.h"
#include "common/huge_pages.h"

namespace reel::gguf {

static_assert(std::endian::native == std::endian::little,
              "raw GGUF arrays are read in place, which assumes a little-endian host");

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t kDefaultAlignment = 32;
constexpr int kMaxDims = 4;
// Nesting is recursive; a bound keeps a hostile file from exhausting the stack.
constexpr int kMaxArrayDepth = 8;
// Smallest encodings, used to reject counts the remaining bytes cannot possibly hold before
// anything is reserved: a KV is key length (8) + type (4) + at least one byte of value; a tensor
// info is name length (8) + n_dims (4) + one ne (8) + type (4) + offset (8); an array element
// that is an array is elem type (4) + count (8); a string is its length (8).
constexpr uint64_t kMinKvBytes = 13;
constexpr uint64_t kMinTensorInfoBytes = 32;
constexpr uint64_t kMinNestedArrayBytes = 12;
constexpr uint64_t kMinStringBytes = 8;

// Size of a fixed-size scalar value type, or 0 for STRING / ARRAY / unknown ids.
size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::BOOL:
      return 1;
    case ValueType::U16:
    case ValueType::I16:
      return 2;
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::F32:
      return 4;
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64:
      return 8;
    default:
      return 0;
  }
}

bool is_known_value_type(uint32_t id) {
  return id <= static_cast<uint32_t>(ValueType::F64);
}

bool is_signed_integer(ValueType t) {
  return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}
bool is_unsigned_integer(ValueType t) {
  return t == ValueType::U8 || t == ValueType::U16 || t == ValueType::U32 || t == ValueType::U64;
}
bool is_integer_type(ValueType t) {
  return is_signed_integer(t) || is_unsigned_integer(t);
}

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Decodes one little-endian fixed-size scalar of type t at p into the Value fields.
void decode_scalar(ValueType t, const uint8_t* p, Value* v) {
  switch (t) {
    case ValueType::U8:
      v->u = load<uint8_t>(p);
      break;
    case ValueType::I8:
      v->i = load<int8_t>(p);
      break;
    case ValueType::U16:
      v->u = load<uint16_t>(p);
      break;
    case ValueType::I16:
      v->i = load<int16_t>(p);
      break;
    case ValueType::U32:
      v->u = load<uint32_t>(p);
      break;
    case ValueType::I32:
      v->i = load<int32_t>(p);
      break;
    case ValueType::U64:
      v->u = load<uint64_t>(p);
      break;
    case ValueType::I64:
      v->i = load<int64_t>(p);
      break;
    case ValueType::F32:
      v->f = load<float>(p);
      break;
    case ValueType::F64:
      v->f = load<double>(p);
      break;
    case ValueType::BOOL:
      v->i = p[0];
      break;
    default:
      break;
  }
}

// Names come from the file: escape control bytes and cut long ones so messages stay one line.
std::string quoted(std::string_view s) {
  constexpr size_t kMaxShown = 80;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (s.size() > kMaxShown) out += "...";
  out.push_back('\'');
  return out;
}

}  // namespace

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::U8:
      return "u8";
    case ValueType::I8:
      return "i8";
    case ValueType::U16:
      return "u16";
    case ValueType::I16:
      return "i16";
    case ValueType::U32:
      return "u32";
    case ValueType::I32:
      return "i32";
    case ValueType::F32:
      return "f32";
    case ValueType::BOOL:
      return "bool";
    case ValueType::STRING:
      return "string";
    case ValueType::ARRAY:
      return "array";
    case ValueType::U64:
      return "u64";
    case ValueType::I64:
      return "i64";
    case ValueType::F64:
      return "f64";
  }
  return "unknown";
}

bool Value::is_integer() const {
  return is_integer_type(type);
}

// ---------------------------------------------------------------------------------------------
// Parsing

class Parser {
 public:
  explicit Parser(File& file) : f_(file), base_(file.map_), size_(file.size_) {}

  void parse() {
    parse_header();
    parse_metadata();
    parse_alignment();
    parse_tensor_infos();
    place_tensor_data();
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(f_.path_ + ": " + what); }
  // A well-formed file that uses what Reel does not read (another version, a newer type).
  [[noreturn]] void unsupported(const std::string& what) const {
    throw Unsupported(f_.path_ + ": " + what);
  }

  size_t remaining() const { return size_ - pos_; }

  // Claims n bytes at the cursor for `what`, failing cleanly when the file is too short.
  const uint8_t* take(uint64_t n, std::string_view what) {
    if (n > remaining()) {
      fail("truncated file: " + std::string(what) + " at offset " + std::to_string(pos_) +
           " needs " + std::to_string(n) + " bytes, only " + std::to_string(remaining()) + " left");
    }
    const uint8_t* p = base_ + pos_;
    pos_ += n;
    return p;
  }
  uint32_t read_u32(std::string_view what) { return load<uint32_t>(take(4, what)); }
  uint64_t read_u64(std::string_view what) { return load<uint64_t>(take(8, what)); }

  std::string_view read_string(std::string_view what) {
    const uint64_t len = read_u64(what);
    if (len > remaining()) {
      fail(std::string(what) + " at offset " + std::to_string(pos_ - 8) + " has length " +
           std::to_string(len) + ", past the end of the file");
    }
    return {reinterpret_cast<const char*>(take(len, what)), len};
  }

  // Fails unless `count` items of at least `min_bytes` each can fit in the rest of the file.
  void check_count(uint64_t count, uint64_t min_bytes, const std::string& what) {
    if (count > remaining() / min_bytes) {
      fail(what + " " + std::to_string(count) + " exceeds what the file can hold (" +
           std::to_string(remaining()) + " bytes left at offset " + std::to_string(pos_) +
           "): truncated or corrupt file");
    }
  }

  void parse_header() {
    if (size_ == 0) fail("empty file (not a GGUF file)");
    if (size_ < 4 || load<uint32_t>(base_) != kMagic) fail("not a GGUF file (bad magic)");
    pos_ = 4;
    const uint32_t version = read_u32("version");
    if (version == 1) unsupported("GGUF version 1 is not supported (only versions 2 and 3)");
    if (version != 2 && version != 3) {
      const bool big_endian = version == 0x02000000u || version == 0x03000000u;
      unsupported("unsupported GGUF version " + std::to_string(version) +
                  (big_endian ? " (big-endian files are not supported)" : " (expected 2 or 3)"));
    }
    f_.version_ = version;
    tensor_count_ = read_u64("tensor count");
    kv_count_ = read_u64("metadata count");
  }

  void parse_metadata() {
    check_count(kv_count_, kMinKvBytes, "metadata count");
    f_.kv_.reserve(kv_count_);
    for (uint64_t k = 0; k < kv_count_; ++k) {
      KeyValue kv;
      kv.key = read_string("metadata key");
      const uint32_t type = read_u32("metadata value type");
      if (!is_known_value_type(type)) {
        fail("key " + quoted(kv.key) + " has unknown value type " + std::to_string(type));
      }
      kv.value = read_value(static_cast<ValueType>(type), kv.key, 0);
      if (!f_.kv_index_.emplace(kv.key, f_.kv_.size()).second) {
        fail("duplicate metadata key " + quoted(kv.key));
      }
      f_.kv_.push_back(std::move(kv));
    }
  }

  Value read_value(ValueType type, std::string_view key, int depth) {
    Value v;
    v.type = type;
    if (type == ValueType::STRING) {
      v.str = read_string("string value of " + quoted(key));
    } else if (type == ValueType::ARRAY) {
      read_array(key, depth, &v);
    } else {
      const uint8_t* p = take(scalar_size(type), "value of " + quoted(key));
      check_bool(type, p, 1, key);
      decode_scalar(type, p, &v);
    }
    return v;
  }

  void check_bool(ValueType type, const uint8_t* p, uint64_t count, std::string_view key) {
    if (type != ValueType::BOOL) return;
    for (uint64_t i = 0; i < count; ++i) {
      if (p[i] > 1) fail("key " + quoted(key) + " has bool value " + std::to_string(p[i]));
    }
  }

  void read_array(std::string_view key, int depth, Value* v) {
    if (depth >= kMaxArrayDepth) {
      fail("key " + quoted(key) + " nests arrays deeper than " + std::to_string(kMaxArrayDepth) +
           " levels");
    }
    const uint32_t elem = read_u32("array element type");
    if (!is_known_value_type(elem)) {
      fail("array " + quoted(key) + " has unknown element type " + std::to_string(elem));
    }
    v->elem_type = static_cast<ValueType>(elem);
    v->count = read_u64("array length");
    const std::string what = "array " + quoted(key) + " length";
    if (v->elem_type == ValueType::STRING) {
      check_count(v->count, kMinStringBytes, what);
      v->strs.reserve(v->count);
      for (uint64_t i = 0; i < v->count; ++i) {
        v->strs.push_back(read_string("string element of " + quoted(key)));
      }
    } else if (v->elem_type == ValueType::ARRAY) {
      check_count(v->count, kMinNestedArrayBytes, what);
      v->elems.reserve(v->count);
      for (uint64_t i = 0; i < v->count; ++i) {
        v->elems.push_back(read_value(ValueType::ARRAY, key, depth + 1));
      }
    } else {
      const size_t elem_size = scalar_size(v->elem_type);
      check_count(v->count, elem_size, what);
      v->raw = take(v->count * elem_size, "elements of " + quoted(key));
      check_bool(v->elem_type, v->raw, v->count, key);
    }
  }

  void parse_alignment() {
    const Value* a = f_.find("general.alignment");
    f_.alignment_ = kDefaultAlignment;
    if (a == nullptr) return;
    if (!is_unsigned_integer(a->type) && !is_signed_integer(a->type)) {
      fail("general.alignment has type " + std::string(value_type_name(a->type)) +
           ", expected an integer");
    }
    const bool negative = is_signed_integer(a->type) && a->i < 0;
    const uint64_t value = is_signed_integer(a->type) ? static_cast<uint64_t>(a->i) : a->u;
    if (negative || !std::has_single_bit(value)) {
      fail("general.alignment " + (negative ? std::to_string(a->i) : std::to_string(value)) +
           " is not a nonzero power of two");
    }
    f_.alignment_ = value;
  }

  void parse_tensor_infos() {
    check_count(tensor_count_, kMinTensorInfoBytes, "tensor count");
    f_.tensors_.reserve(tensor_count_);
    for (uint64_t t = 0; t < tensor_count_; ++t) {
      TensorInfo info = read_tensor_info();
      if (!f_.tensor_index_.emplace(info.name, f_.tensors_.size()).second) {
        fail("duplicate tensor " + quoted(info.name));
      }
      f_.tensors_.push_back(info);
    }
  }

  TensorInfo read_tensor_info() {
    TensorInfo info;
    info.name = read_string("tensor name");
    const std::string tensor = "tensor " + quoted(info.name);
    const uint32_t n_dims = read_u32("tensor n_dims");
    if (n_dims < 1 || n_dims > kMaxDims) {
      fail(tensor + " has " + std::to_string(n_dims) + " dimensions (expected 1 to 4)");
    }
    info.n_dims = static_cast<int>(n_dims);
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = read_u64("tensor shape");
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail(tensor + " has invalid size " + std::to_string(ne) + " in dimension " +
             std::to_string(d));
      }
      if (elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne) {
        fail(tensor + " has too many elements (shape overflows)");
      }
      elements *= ne;
      info.ne[d] = static_cast<int64_t>(ne);
    }
    const uint32_t type_id = read_u32("tensor type");
    const std::optional<TypeInfo> type = type_info(type_id);
    if (!type) unsupported(tensor + " has unknown ggml type id " + std::to_string(type_id));
    info.type = type->type;
    if (info.ne[0] % type->block_elems != 0) {
      fail(tensor + " row of " + std::to_string(info.ne[0]) +
           " elements is not a multiple of the " + std::string(type->name) + " block size " +
           std::to_string(type->block_elems));
    }
    // Bytes = blocks * block_bytes; blocks <= elements < 2^63, so only the product can overflow.
    const uint64_t blocks = elements / static_cast<uint64_t>(type->block_elems);
    if (blocks > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(type->block_bytes)) {
      fail(tensor + " data size overflows");
    }
    info.nbytes = blocks * static_cast<uint64_t>(type->block_bytes);
    info.offset = read_u64("tensor offset");
    if (info.offset % f_.alignment_ != 0) {
      fail(tensor + " offset " + std::to_string(info.offset) +
           " is not a multiple of the alignment " + std::to_string(f_.alignment_));
    }
    return info;
  }

  // The data section starts at the first aligned offset after the tensor infos. Every tensor's
  // byte range must lie inside the file and no two may overlap.
  void place_tensor_data() {
    const uint64_t align = f_.alignment_;
    const uint64_t padding = (align - pos_ % align) % align;
    f_.data_offset_ = pos_ + padding;  // pos_ <= size_ and padding < 2^63: no overflow
    if (f_.tensors_.empty()) return;   // nothing is read from the data section
    if (f_.data_offset_ > size_) {
      fail("truncated file: data section at offset " + std::to_string(f_.data_offset_) +
           " starts past the end of the file (" + std::to_string(size_) + " bytes)");
    }
    const uint64_t data_size = size_ - f_.data_offset_;
    for (TensorInfo& t : f_.tensors_) {
      if (t.offset > data_size || t.nbytes > data_size - t.offset) {
        fail("tensor " + quoted(t.name) + " data (offset " + std::to_string(t.offset) + ", " +
             std::to_string(t.nbytes) + " bytes) extends past the end of the file");
      }
      t.data = base_ + f_.data_offset_ + t.offset;
    }
    check_no_overlap();
  }

  void check_no_overlap() {
    std::vector<const TensorInfo*> by_offset;
    by_offset.reserve(f_.tensors_.size());
    for (const TensorInfo& t : f_.tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const TensorInfo& prev = *by_offset[i - 1];
      const TensorInfo& next = *by_offset[i];
      if (prev.offset + prev.nbytes > next.offset) {  // both in range: no overflow
        fail("tensors " + quoted(prev.name) + " and " + quoted(next.name) + " overlap");
      }
    }
  }

  File& f_;
  const uint8_t* base_;
  size_t size_;
  size_t pos_ = 0;
  uint64_t tensor_count_ = 0;
  uint64_t kv_count_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Opening

namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

// Closes a descriptor on every exit path.
struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

// Whether the kernel grants transparent huge pages to a madvise(MADV_HUGEPAGE) region.
bool transparent_huge_pages_enabled() {
  const int fd = ::open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  FdCloser closer{fd};
  char buf[128] = {};
  const ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  if (n <= 0) return false;
  const std::string_view mode(buf, static_cast<size_t>(n));
  return mode.find("[always]") != std::string_view::npos ||
         mode.find("[madvise]") != std::string_view::npos;
}

// Whether a copy of `size` bytes leaves room: MemAvailable (/proc/meminfo, which counts the
// reclaimable page cache, this file's pages included) must exceed it by 256 MiB. Where it does
// not, the lazy mapping pages weights in and out instead of the copy failing.
bool fits_in_memory(size_t size) {
  const int fd = ::open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  FdCloser closer{fd};
  char buf[4096] = {};
  const ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  if (n <= 0) return false;
  const char* line = std::strstr(buf, "MemAvailable:");
  if (line == nullptr) return false;
  const unsigned long long kib = std::strtoull(line + std::strlen("MemAvailable:"), nullptr, 10);
  return size + (size_t{256} << 20) <= static_cast<size_t>(kib) * 1024;
}

// `size` bytes of fd read into a 2 MiB-aligned anonymous region that asks for huge pages, then
// made read-only like the mapping. Returns the region's length through `mapped`.
void* read_into_huge_pages(int fd, size_t size, const std::string& path, size_t* mapped) {
  size_t len = 0;
  auto* p = static_cast<uint8_t*>(map_huge_page_region(size, &len));
  if (p == nullptr)
    throw IoError(path + ": cannot allocate " + std::to_string(size) +
                  " bytes to read it into: " + errno_text(errno));
  size_t done = 0;
  while (done < size) {
    const ssize_t r = ::pread(fd, p + done, size - done, static_cast<off_t>(done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const std::string why = r < 0 ? errno_text(errno) : "the file shrank while being read";
      unmap_huge_page_region(p, len);
      throw IoError(path + ": cannot read: " + why);
    }
    done += static_cast<size_t>(r);
  }
  ::mprotect(p, len, PROT_READ);
  *mapped = len;
  return p;
}

}  // namespace

std::unique_ptr<File> File::open(const std::string& path, LoadMode mode) {
  // Refuses FIFOs, devices, sockets, directories and link loops with their own reasons, without
  // blocking: mapping /dev/zero or waiting for a FIFO's writer must never happen.
  const int fd = open_regular_file(path, "GGUF");
  FdCloser closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw IoError(path + ": cannot stat: " + errno_text(errno));
  if (st.st_size == 0) throw Error(path + ": empty file (not a GGUF file)");

  const size_t size = static_cast<size_t>(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  // The file is open, regular and not empty: a failed mapping is the system's (no memory or
  // address space, a file system without mmap), not the file's.
  if (map == MAP_FAILED) throw IoError(path + ": cannot map: " + errno_text(errno));
  // Validated on the mapping first, so that a file that is not a model (or a hostile one) is
  // refused having read only what the parser touched, whatever its size.
  std::unique_ptr<File> mapped = adopt(path, map, size, size, false);
  if (mode == LoadMode::kAuto) {
    mode = size >= kHugePagesMinBytes && transparent_huge_pages_enabled() && fits_in_memory(size)
               ? LoadMode::kHugePages
               : LoadMode::kMap;
  }
  if (mode == LoadMode::kMap) return mapped;
  size_t len = 0;
  void* copy = read_into_huge_pages(fd, size, path, &len);
  return adopt(path, copy, size, len, true);  // parsed again: its pointers point into the copy
}

std::unique_ptr<File> File::adopt(const std::string& path, void* map, size_t size, size_t mapped,
                                  bool huge_pages) {
  std::unique_ptr<File> file(new File());
  file->path_ = path;
  file->map_ = static_cast<const uint8_t*>(map);
  file->size_ = size;
  file->mapped_bytes_ = mapped;
  file->huge_pages_ = huge_pages;
  file->owns_mapping_ = true;  // from here the destructor unmaps, also when parsing throws
  Parser(*file).parse();
  return file;
}

std::unique_ptr<File> File::from_memory(const uint8_t* data, size_t size, std::string name) {
  std::unique_ptr<File> file(new File());
  file->path_ = std::move(name);
  file->map_ = data;
  file->size_ = data == nullptr ? 0 : size;
  Parser(*file).parse();
  return file;
}

File::~File() {
  if (owns_mapping_) ::munmap(const_cast<uint8_t*>(map_), mapped_bytes_);
}

// ---------------------------------------------------------------------------------------------
// Lookup and typed getters

void File::fail(std::string_view what) const {
  throw Error(path_ + ": " + std::string(what));
}

const Value* File::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].value;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const Value& File::get(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) fail("missing key " + quoted(key));
  return *v;
}

namespace {

std::string type_text(const Value& v) {
  std::string s(value_type_name(v.type));
  if (v.type == ValueType::ARRAY) s += " of " + std::string(value_type_name(v.elem_type));
  return s;
}

std::string mismatch(std::string_view key, const Value& v, std::string_view expected) {
  return "key " + quoted(key) + " has type " + type_text(v) + ", expected " + std::string(expected);
}

// Integer value as a (negative?, magnitude) pair so range checks need no wider type.
struct IntValue {
  bool negative;
  uint64_t magnitude;
  std::string text() const { return (negative ? "-" : "") + std::to_string(magnitude); }
};

IntValue int_value(const Value& v) {
  if (is_signed_integer(v.type) && v.i < 0) {
    return {true, static_cast<uint64_t>(0) - static_cast<uint64_t>(v.i)};
  }
  return {false, is_signed_integer(v.type) ? static_cast<uint64_t>(v.i) : v.u};
}

// Decodes element i of a raw scalar array.
Value raw_element(const Value& array, uint64_t i) {
  Value e;
  e.type = array.elem_type;
  decode_scalar(array.elem_type, array.raw + i * scalar_size(array.elem_type), &e);
  return e;
}

}  // namespace

uint32_t File::get_u32(std::string_view key) const {
  const uint64_t v = get_u64(key);
  if (v > std::numeric_limits<uint32_t>::max()) {
    fail("key " + quoted(key) + " value " + std::to_string(v) + " does not fit u32");
  }
  return static_cast<uint32_t>(v);
}

uint64_t File::get_u64(std::string_view key) const {
  const Value& v = get(key);
  if (!v.is_integer()) fail(mismatch(key, v, "an integer"));
  const IntValue iv = int_value(v);
  if (iv.negative) fail("key " + quoted(key) + " value " + iv.text() + " is negative");
  return iv.magnitude;
}

int64_t File::get_i64(std::string_view key) const {
  const Value& v = get(key);
  if (!v.is_integer()) fail(mismatch(key, v, "an integer"));
  if (is_unsigned_integer(v.type) && v.u > static_cast<uint64_t>(INT64_MAX)) {
    fail("key " + quoted(key) + " value " + std::to_string(v.u) + " does not fit i64");
  }
  return is_signed_integer(v.type) ? v.i : static_cast<int64_t>(v.u);
}

float File::get_f32(std::string_view key) const {
  const Value& v = get(key);
  if (v.type != ValueType::F32 && v.type != ValueType::F64) fail(mismatch(key, v, "f32"));
  return static_cast<float>(v.f);
}

bool File::get_bool(std::string_view key) const {
  const Value& v = get(key);
  if (v.type != ValueType::BOOL) fail(mismatch(key, v, "bool"));
  return v.i != 0;
}

std::string_view File::get_str(std::string_view key) const {
  const Value& v = get(key);
  if (v.type != ValueType::STRING) fail(mismatch(key, v, "string"));
  return v.str;
}

std::vector<std::string_view> File::get_str_array(std::string_view key) const {
  const Value& v = get(key);
  if (v.type != ValueType::ARRAY || v.elem_type != ValueType::STRING) {
    fail(mismatch(key, v, "array of string"));
  }
  return v.strs;
}

std::vector<int64_t> File::get_int_array(std::string_view key) const {
  const Value& v = get(key);
  if (v.type != ValueType::ARRAY || !is_integer_type(v.elem_type)) {
    fail(mismatch(key, v, "array of integers"));
  }
  std::vector<int64_t> out;
  out.reserve(v.count);
  for (uint64_t i = 0; i < v.count; ++i) {
    const Value e = raw_element(v, i);
    if (is_unsigned_integer(e.type) && e.u > static_cast<uint64_t>(INT64_MAX)) {
      fail("key " + quoted(key) + " element " + std::to_string(i) + " value " +
           std::to_string(e.u) + " does not fit i64");
    }
    out.push_back(is_signed_integer(e.type) ? e.i : static_cast<int64_t>(e.u));
  }
  return out;
}

std::vector<float> File::get_f32_array(std::string_view key) const {
  const Value& v = get(key);
  if (v.type != ValueType::ARRAY ||
      (v.elem_type != ValueType::F32 && v.elem_type != ValueType::F64)) {
    fail(mismatch(key, v, "array of f32"));
  }
  std::vector<float> out;
  out.reserve(v.count);
  for (uint64_t i = 0; i < v.count; ++i) out.push_back(static_cast<float>(raw_element(v, i).f));
  return out;
}

std::vector<bool> File::get_bool_array(std::string_view key) const {
  const Value& v = get(key);
  if (v.type != ValueType::ARRAY || v.elem_type != ValueType::BOOL) {
    fail(mismatch(key, v, "array of bool"));
  }
  std::vector<bool> out(v.count);
  for (uint64_t i = 0; i < v.count; ++i) out[i] = v.raw[i] != 0;
  return out;
}

std::optional<uint32_t> File::opt_u32(std::string_view key) const {
  if (find(key) == nullptr) return std::nullopt;
  return get_u32(key);
}

std::optional<float> File::opt_f32(std::string_view key) const {
  if (find(key) == nullptr) return std::nullopt;
  return get_f32(key);
}

std::optional<bool> File::opt_bool(std::string_view key) const {
  if (find(key) == nullptr) return std::nullopt;
  return get_bool(key);
}

std::optional<std::string_view> File::opt_str(std::string_view key) const {
  if (find(key) == nullptr) return std::nullopt;
  return get_str(key);
}

}  // namespace reel::gguf
