#include "pipeline/media_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/fs.h"
#include "gguf/gguf.h"

namespace reel {

// Entry files and keys are written with the host's byte order; every target Reel runs on
// (x86-64, AArch64) is little-endian, and a big-endian host fails here rather than misreading.
static_assert(std::endian::native == std::endian::little, "media cache entries are little-endian");

namespace {

// ---- Format -------------------------------------------------------------------------------
// An entry file: a 48-byte header, then the payload.
//   magic[8] | u32 format version | u32 kind | u64 key.lo | u64 key.hi
//   | u64 payload bytes | u64 XXH3-64 of the payload
// Raising kFormatVersion (any change to the payload or to what a key covers) turns every older
// entry into a miss that is dropped on sight.
constexpr char kMagic[8] = {'R', 'E', 'E', 'L', 'M', 'C', '\r', '\n'};
constexpr uint32_t kFormatVersion = 2;  // 2: the spatial merge size is stored
constexpr size_t kHeaderBytes = 48;
constexpr char kEntrySuffix[] = ".reelmc";
constexpr char kTempMarker[] = ".reelmc.tmp.";

// Sanity limits checked before anything is allocated (sizes are also bounded by the bytes left
// in the file). 64 GiB is far beyond any real encoding (a 16k-token video of a 4096-wide model
// with three DeepStack layers is about 1 GiB).
constexpr uint64_t kMaxEntryBytes = uint64_t(1) << 36;
constexpr uint64_t kMaxStringBytes = 1 << 16;
constexpr uint64_t kMaxNotes = 1 << 12;
constexpr int64_t kMaxDim = 1 << 20;  // pixels, patches, feature width
constexpr int kMaxDeepstack = 64;

const char* kind_name(MediaKind kind) {
  return kind == MediaKind::Image ? "image" : "video";
}

// ---- Hashing ------------------------------------------------------------------------------

struct StateDeleter {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};
using HashState = std::unique_ptr<XXH3_state_t, StateDeleter>;

HashState new_state() {
  HashState s(XXH3_createState());
  if (!s) throw std::bad_alloc();
  return s;
}

// Feeds typed values into an XXH3-128 state; every variable-length field is preceded by its
// length, so different field splits never hash alike.
// Typed fields over a byte sink (Derived::bytes): the same encoding for keys and payloads.
template <class Derived>
class FieldWriter {
 public:
  template <typename T>
  void scalar(T v) {
    static_assert(std::is_arithmetic_v<T>);
    self().bytes(&v, sizeof v);
  }
  void flag(bool b) { scalar<uint8_t>(b ? 1 : 0); }
  void str(std::string_view s) {
    scalar<uint64_t>(s.size());
    self().bytes(s.data(), s.size());
  }
  template <typename T>
  void vec(const std::vector<T>& v) {
    scalar<uint64_t>(v.size());
    self().bytes(v.data(), v.size() * sizeof(T));
  }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
};

class KeyHasher : public FieldWriter<KeyHasher> {
 public:
  KeyHasher() : state_(new_state()) { XXH3_128bits_reset(state_.get()); }
  void bytes(const void* p, size_t n) {
    if (n) XXH3_128bits_update(state_.get(), p, n);
  }
  void key(const MediaKey& k) {
    scalar(k.lo);
    scalar(k.hi);
  }
  MediaKey digest() const {
    const XXH128_hash_t h = XXH3_128bits_digest(state_.get());
    return {h.low64, h.high64};
  }

 private:
  HashState state_;
};

// What starts every cache key: a domain tag, the format version and the kind.
KeyHasher key_hasher(MediaKind kind) {
  KeyHasher h;
  h.str("reel.media-cache.key");
  h.scalar(kFormatVersion);
  h.scalar(uint32_t(kind));
  return h;
}

size_t gguf_scalar_bytes(gguf::ValueType t) {
  using T = gguf::ValueType;
  switch (t) {
    case T::U8:
    case T::I8:
    case T::BOOL:
      return 1;
    case T::U16:
    case T::I16:
      return 2;
    case T::U32:
    case T::I32:
    case T::F32:
      return 4;
    case T::U64:
    case T::I64:
    case T::F64:
      return 8;
    default:
      return 0;
  }
}

void hash_value(KeyHasher& h, const gguf::Value& v) {
  h.scalar(uint32_t(v.type));
  switch (v.type) {
    case gguf::ValueType::STRING:
      h.str(v.str);
      return;
    case gguf::ValueType::ARRAY:
      h.scalar(uint32_t(v.elem_type));
      h.scalar(v.count);
      if (v.elem_type == gguf::ValueType::STRING) {
        for (std::string_view s : v.strs) h.str(s);
      } else if (v.elem_type == gguf::ValueType::ARRAY) {
        for (const gguf::Value& e : v.elems) hash_value(h, e);
      } else if (v.raw) {
        h.bytes(v.raw, v.count * gguf_scalar_bytes(v.elem_type));
      }
      return;
    default:  // scalars: only the field of the type is set, the others stay zero
      h.scalar(v.i);
      h.scalar(v.u);
      h.scalar(v.f);
  }
}

// ---- File I/O -----------------------------------------------------------------------------

// Internal: an entry file is wrong. Caught in MediaCache, never seen by callers.
struct CorruptEntry : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void corrupt(const char* why) {
  throw CorruptEntry(why);
}
void expect(bool ok, const char* why) {
  if (!ok) corrupt(why);
}

// read() until n bytes or end of file; returns the bytes read.
size_t read_fully(int fd, void* dst, size_t n) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::read(fd, static_cast<char*>(dst) + done, n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw std::runtime_error(std::strerror(errno));
    if (r == 0) break;
    done += size_t(r);
  }
  return done;
}

void write_fully(int fd, const void* src, size_t n, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::write(fd, static_cast<const char*>(src) + done, n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw IoError(path + ": " + std::strerror(errno));
    done += size_t(r);
  }
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Buffered payload output that hashes what it writes.
class PayloadWriter : public FieldWriter<PayloadWriter> {
 public:
  PayloadWriter(int fd, std::string path) : fd_(fd), path_(std::move(path)), state_(new_state()) {
    XXH3_64bits_reset(state_.get());
    buffer_.reserve(kBuffer);
  }
  void bytes(const void* p, size_t n) {
    if (n == 0) return;
    XXH3_64bits_update(state_.get(), p, n);
    size_ += n;
    if (buffer_.size() + n > kBuffer) flush();
    if (n >= kBuffer) {
      write_fully(fd_, p, n, path_);
    } else {
      const auto* c = static_cast<const char*>(p);
      buffer_.insert(buffer_.end(), c, c + n);
    }
  }
  void flush() {
    write_fully(fd_, buffer_.data(), buffer_.size(), path_);
    buffer_.clear();
  }
  uint64_t size() const { return size_; }
  uint64_t digest() const { return XXH3_64bits_digest(state_.get()); }

 private:
  static constexpr size_t kBuffer = 1 << 20;
  int fd_;
  std::string path_;
  HashState state_;
  std::vector<char> buffer_;
  uint64_t size_ = 0;
};

// Buffered payload input that hashes what it reads and never reads, or lets a caller allocate,
// past the payload's declared (and file-size-checked) length.
class PayloadReader {
 public:
  PayloadReader(int fd, uint64_t payload_bytes)
      : fd_(fd), remaining_(payload_bytes), state_(new_state()) {
    XXH3_64bits_reset(state_.get());
  }
  void bytes(void* dst, size_t n) {
    expect(n <= remaining_, "payload shorter than its fields");
    remaining_ -= n;
    auto* out = static_cast<char*>(dst);
    const size_t from_buffer = std::min(n, end_ - pos_);
    if (from_buffer) std::memcpy(out, buffer_.data() + pos_, from_buffer);
    pos_ += from_buffer;
    size_t left = n - from_buffer;
    if (left >= buffer_.size()) {  // large arrays: straight into the destination
      expect(read_fully(fd_, out + from_buffer, left) == left, "file shorter than its header");
    } else if (left > 0) {
      refill(left);
      expect(end_ >= left, "file shorter than its header");
      std::memcpy(out + from_buffer, buffer_.data(), left);
      pos_ = left;
    }
    if (n) XXH3_64bits_update(state_.get(), dst, n);
  }
  template <typename T>
  T scalar() {
    static_assert(std::is_arithmetic_v<T>);
    T v;
    bytes(&v, sizeof v);
    return v;
  }
  bool flag() {
    const uint8_t b = scalar<uint8_t>();
    expect(b <= 1, "flag byte neither 0 nor 1");
    return b == 1;
  }
  int dim() {
    const int32_t v = scalar<int32_t>();
    expect(v >= 0 && v <= kMaxDim, "size out of range");
    return v;
  }
  // A length prefix, checked against `max` and against the bytes left before any allocation.
  size_t count(size_t elem_bytes, uint64_t max) {
    const uint64_t n = scalar<uint64_t>();
    expect(n <= max && n <= remaining_ / elem_bytes, "length beyond the entry's size");
    return size_t(n);
  }
  std::string str() {
    std::string s(count(1, kMaxStringBytes), '\0');
    bytes(s.data(), s.size());
    return s;
  }
  template <typename T>
  std::vector<T> vec() {
    std::vector<T> v(count(sizeof(T), std::numeric_limits<uint64_t>::max()));
    bytes(v.data(), v.size() * sizeof(T));
    return v;
  }
  // At the payload's end with the checksum the header promised.
  void finish(uint64_t expected_digest) {
    expect(remaining_ == 0, "payload longer than its fields");
    expect(XXH3_64bits_digest(state_.get()) == expected_digest, "checksum mismatch");
  }

 private:
  // Reads ahead at most to the payload's end: `needed` bytes now plus what is left after them.
  void refill(size_t needed) {
    pos_ = 0;
    end_ = read_fully(fd_, buffer_.data(), std::min<uint64_t>(buffer_.size(), needed + remaining_));
  }
  int fd_;
  uint64_t remaining_;  // payload bytes not yet handed out
  HashState state_;
  std::vector<char> buffer_ = std::vector<char>(size_t(1) << 16);
  size_t pos_ = 0, end_ = 0;
};

// ---- Payloads -----------------------------------------------------------------------------

void write_payload(PayloadWriter& w, const EncodedImage& e) {
  w.str(e.path);
  for (int v : {e.width, e.height, e.resized_w, e.resized_h, e.grid_h, e.grid_w, e.merge})
    w.scalar<int32_t>(v);
  w.scalar(e.decode_ms);
  w.scalar(e.encode_ms);
  w.vec(e.main);
  w.vec(e.deepstack);
}

// main is [tokens][D] and deepstack [layers][tokens][D] for some D >= 1 and layers >= 0.
void check_features(size_t main, size_t deepstack, unsigned __int128 tokens) {
  expect(tokens >= 1 && tokens <= unsigned(std::numeric_limits<int>::max()), "no tokens");
  expect(main > 0 && main % tokens == 0, "main features do not match the token grid");
  expect(deepstack % main == 0 && deepstack / main <= size_t(kMaxDeepstack),
         "DeepStack features do not match the main features");
}

EncodedImage read_image(PayloadReader& r) {
  EncodedImage e;
  e.path = r.str();
  for (int* v : {&e.width, &e.height, &e.resized_w, &e.resized_h, &e.grid_h, &e.grid_w, &e.merge})
    *v = r.dim();
  expect(e.merge >= 1 && e.merge <= 64 && e.grid_h % e.merge == 0 && e.grid_w % e.merge == 0,
         "the token grid does not divide into merged tokens");
  e.decode_ms = r.scalar<double>();
  e.encode_ms = r.scalar<double>();
  e.main = r.vec<float>();
  e.deepstack = r.vec<float>();
  check_features(e.main.size(), e.deepstack.size(),
                 (unsigned __int128)(int64_t(e.grid_h) * e.grid_w / (e.merge * e.merge)));
  return e;
}

void write_info(PayloadWriter& w, const media::VideoInfo& i) {
  for (int v : {i.width, i.height, i.coded_width, i.coded_height, i.rotation}) w.scalar<int32_t>(v);
  w.flag(i.mirrored);
  w.scalar<int32_t>(i.sar_num);
  w.scalar<int32_t>(i.sar_den);
  w.scalar(i.fps);
  w.scalar(i.header_fps);
  w.scalar<int64_t>(i.n_frames);
  w.scalar(i.duration_s);
  w.str(i.codec);
  w.str(i.container);
  w.flag(i.has_audio);
  w.flag(i.vfr_times_s != nullptr);
  if (i.vfr_times_s) w.vec(*i.vfr_times_s);
}

media::VideoInfo read_info(PayloadReader& r) {
  media::VideoInfo i;
  for (int* v : {&i.width, &i.height, &i.coded_width, &i.coded_height}) *v = r.dim();
  i.rotation = r.scalar<int32_t>();
  expect(i.rotation == 0 || i.rotation == 90 || i.rotation == 180 || i.rotation == 270,
         "rotation not a multiple of 90 degrees");
  i.mirrored = r.flag();
  i.sar_num = r.scalar<int32_t>();
  i.sar_den = r.scalar<int32_t>();
  i.fps = r.scalar<double>();
  i.header_fps = r.scalar<double>();
  i.n_frames = r.scalar<int64_t>();
  expect(i.n_frames >= 0, "negative frame count");
  i.duration_s = r.scalar<double>();
  i.codec = r.str();
  i.container = r.str();
  i.has_audio = r.flag();
  if (r.flag()) {
    auto times = r.vec<double>();
    expect(int64_t(times.size()) == i.n_frames, "frame times do not match the frame count");
    i.vfr_times_s = std::make_shared<const std::vector<double>>(std::move(times));
  }
  return i;
}

void write_payload(PayloadWriter& w, const EncodedVideo& v) {
  const VideoPlan& p = v.plan;
  w.str(p.path);
  write_info(w, p.info);
  w.vec(p.indices);
  w.vec(p.frames);
  w.vec(p.group_times);
  w.flag(p.as_images);
  w.flag(p.display_corrections);
  for (int d : {p.resized_w, p.resized_h, p.grid_h, p.grid_w, p.merge, p.n_groups})
    w.scalar<int32_t>(d);
  w.scalar<uint64_t>(p.notes.size());
  for (const std::string& n : p.notes) w.str(n);
  w.scalar<int32_t>(v.out_dim);
  w.scalar<int32_t>(v.n_deepstack);
  w.vec(v.main);
  w.vec(v.deepstack);
  w.scalar(v.decode_ms);
  w.scalar(v.encode_ms);
  w.scalar(v.wall_ms);
}

// The plan must be one the prompt code can walk without bounds checks: frames inside the
// video, one time per group, the slots of every group present.
void check_plan(const VideoPlan& p) {
  int64_t previous = -1;
  for (int64_t i : p.indices) {
    expect(i > previous && i < p.info.n_frames, "sampled frames not ascending inside the video");
    previous = i;
  }
  for (int64_t f : p.frames) expect(f >= 0 && f < p.info.n_frames, "slot frame outside the video");
  expect(p.n_groups >= 1 && size_t(p.n_groups) == p.group_times.size(),
         "group times do not match the group count");
  const size_t slots = p.as_images ? 1 : 2;
  expect(p.frames.size() == size_t(p.n_groups) * slots, "slot frames do not match the groups");
}

EncodedVideo read_video(PayloadReader& r) {
  EncodedVideo v;
  VideoPlan& p = v.plan;
  p.path = r.str();
  p.info = read_info(r);
  p.indices = r.vec<int64_t>();
  p.frames = r.vec<int64_t>();
  p.group_times = r.vec<double>();
  p.as_images = r.flag();
  p.display_corrections = r.flag();
  for (int* d : {&p.resized_w, &p.resized_h, &p.grid_h, &p.grid_w, &p.merge, &p.n_groups})
    *d = r.dim();
  expect(p.merge >= 1 && p.merge <= 64 && p.grid_h % p.merge == 0 && p.grid_w % p.merge == 0,
         "the token grid does not divide into merged tokens");
  p.notes.resize(r.count(sizeof(uint64_t), kMaxNotes));
  for (std::string& n : p.notes) n = r.str();
  v.out_dim = r.dim();
  v.n_deepstack = r.dim();
  expect(v.out_dim >= 1 && v.n_deepstack <= kMaxDeepstack, "feature sizes out of range");
  v.main = r.vec<float>();
  v.deepstack = r.vec<float>();
  v.decode_ms = r.scalar<double>();
  v.encode_ms = r.scalar<double>();
  v.wall_ms = r.scalar<double>();
  check_plan(p);
  const auto tokens =
      (unsigned __int128)p.n_groups * (int64_t(p.grid_h) * p.grid_w / (p.merge * p.merge));
  check_features(v.main.size(), v.deepstack.size(), tokens);
  expect(v.main.size() == tokens * unsigned(v.out_dim), "main features do not match out_dim");
  expect(v.deepstack.size() == v.main.size() * size_t(v.n_deepstack),
         "DeepStack features do not match n_deepstack");
  return v;
}

// ---- Header -------------------------------------------------------------------------------

struct Header {
  MediaKind kind;
  MediaKey key;
  uint64_t payload_bytes = 0, checksum = 0;
};

std::array<char, kHeaderBytes> encode_header(const Header& h) {
  std::array<char, kHeaderBytes> out{};
  char* p = out.data();
  auto put = [&](const auto& v) {
    std::memcpy(p, &v, sizeof v);
    p += sizeof v;
  };
  std::memcpy(p, kMagic, sizeof kMagic);
  p += sizeof kMagic;
  put(kFormatVersion);
  put(uint32_t(h.kind));
  put(h.key.lo);
  put(h.key.hi);
  put(h.payload_bytes);
  put(h.checksum);
  return out;
}

// Reads and checks the header of an entry file of `file_bytes` bytes, expected to hold `key`.
Header read_header(int fd, uint64_t file_bytes, const MediaKey& key, MediaKind kind) {
  expect(file_bytes >= kHeaderBytes, "shorter than a header");
  expect(file_bytes <= kMaxEntryBytes, "larger than any entry");
  std::array<char, kHeaderBytes> raw{};
  expect(read_fully(fd, raw.data(), raw.size()) == raw.size(), "shorter than a header");
  const char* p = raw.data();
  auto get = [&](auto& v) {
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
  };
  expect(std::memcmp(p, kMagic, sizeof kMagic) == 0, "not a media cache entry");
  p += sizeof kMagic;
  uint32_t version = 0, kind_value = 0;
  Header h;
  get(version);
  get(kind_value);
  get(h.key.lo);
  get(h.key.hi);
  get(h.payload_bytes);
  get(h.checksum);
  expect(version == kFormatVersion, "another format version");
  expect(kind_value == uint32_t(kind), "another kind of entry");
  expect(h.key == key, "another key");
  expect(h.payload_bytes == file_bytes - kHeaderBytes, "payload size does not match the file");
  h.kind = kind;
  return h;
}

std::shared_ptr<const void> read_entry(int fd, uint64_t file_bytes, const MediaKey& key,
                                       MediaKind kind) {
  const Header h = read_header(fd, file_bytes, key, kind);
  PayloadReader r(fd, h.payload_bytes);
  std::shared_ptr<const void> value;
  if (kind == MediaKind::Image) {
    auto e = std::make_shared<EncodedImage>(read_image(r));
    r.finish(h.checksum);
    value = std::move(e);
  } else {
    auto v = std::make_shared<EncodedVideo>(read_video(r));
    r.finish(h.checksum);
    value = std::move(v);
  }
  return value;
}

// Removes temporaries left by processes that died while writing (an hour is far longer than
// any write takes, so a live writer's file is never touched).
void remove_stale_temporaries(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.find(kTempMarker) == std::string::npos) continue;
    std::error_code ignored;
    if (it->is_regular_file(ignored) && it->last_write_time(ignored) < cutoff)
      fs::remove(it->path(), ignored);
  }
}

}  // namespace

// ---- Keys ---------------------------------------------------------------------------------

std::string MediaKey::hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(32, '0');
  for (int i = 0; i < 16; ++i) {
    s[size_t(i)] = kDigits[(hi >> (60 - 4 * i)) & 15];
    s[size_t(16 + i)] = kDigits[(lo >> (60 - 4 * i)) & 15];
  }
  return s;
}

MediaKey hash_file(const std::string& path) {
  Fd fd(open_regular_file(path, "media"));
  KeyHasher h;
  std::vector<char> chunk(size_t(1) << 20);
  for (;;) {
    size_t n = 0;
    try {
      n = read_fully(fd.get(), chunk.data(), chunk.size());
    } catch (const std::runtime_error& e) {
      throw IoError(path + ": read error: " + e.what());
    }
    h.bytes(chunk.data(), n);
    if (n < chunk.size()) break;
  }
  return h.digest();
}

MediaKey model_identity(const gguf::File& f) {
  // A few KiB from the start, middle and end of each tensor: any retraining or requantization
  // changes them, and an 800 MB mmproj costs a few MB of page reads.
  constexpr uint64_t kSample = 4096;
  KeyHasher h;
  h.str("reel.model-identity");
  h.scalar(uint64_t(f.size()));
  h.scalar(f.version());
  h.scalar(f.alignment());
  h.scalar(uint64_t(f.metadata().size()));
  for (const gguf::KeyValue& kv : f.metadata()) {
    h.str(kv.key);
    hash_value(h, kv.value);
  }
  h.scalar(uint64_t(f.tensors().size()));
  for (const gguf::TensorInfo& t : f.tensors()) {
    h.str(t.name);
    h.scalar(t.n_dims);
    for (int64_t ne : t.ne) h.scalar(ne);
    h.scalar(uint32_t(t.type));
    h.scalar(t.offset);
    h.scalar(t.nbytes);
    if (!t.data) continue;
    if (t.nbytes <= 3 * kSample) {
      h.bytes(t.data, t.nbytes);
    } else {
      h.bytes(t.data, kSample);
      h.bytes(t.data + (t.nbytes - kSample) / 2, kSample);
      h.bytes(t.data + t.nbytes - kSample, kSample);
    }
  }
  return h.digest();
}

MediaKey image_key(const MediaKey& file, int resized_w, int resized_h, const MediaKey& model) {
  KeyHasher h = key_hasher(MediaKind::Image);
  h.key(file);
  h.scalar<int32_t>(resized_w);
  h.scalar<int32_t>(resized_h);
  h.key(model);
  return h.digest();
}

MediaKey video_key(const MediaKey& file, const VideoPlan& plan, const MediaKey& model) {
  KeyHasher h = key_hasher(MediaKind::Video);
  h.key(file);
  h.vec(plan.indices);
  h.vec(plan.frames);
  h.vec(plan.group_times);
  for (int d :
       {plan.resized_w, plan.resized_h, plan.grid_h, plan.grid_w, plan.merge, plan.n_groups})
    h.scalar<int32_t>(d);
  h.scalar<uint8_t>(plan.as_images);
  h.scalar<uint8_t>(plan.display_corrections);
  h.key(model);
  return h.digest();
}

size_t memory_bytes(const EncodedImage& e) {
  return sizeof e + e.path.size() + sizeof(float) * (e.main.size() + e.deepstack.size());
}

size_t memory_bytes(const EncodedVideo& v) {
  const VideoPlan& p = v.plan;
  size_t n = sizeof v + p.path.size() + p.info.codec.size() + p.info.container.size();
  n += sizeof(int64_t) * (p.indices.size() + p.frames.size());
  n += sizeof(double) * p.group_times.size();
  if (p.info.vfr_times_s) n += sizeof(double) * p.info.vfr_times_s->size();
  for (const std::string& s : p.notes) n += sizeof s + s.size();
  return n + sizeof(float) * (v.main.size() + v.deepstack.size());
}

// ---- MediaCache ---------------------------------------------------------------------------

MediaCache::MediaCache(size_t memory_limit_bytes, std::string disk_dir,
                       std::function<void(const std::string&)> note, uint64_t disk_limit_bytes)
    : limit_(memory_limit_bytes),
      dir_(std::move(disk_dir)),
      note_(std::move(note)),
      disk_limit_(disk_limit_bytes) {
  if (dir_.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (!std::filesystem::is_directory(dir_))
    throw Error(dir_ + ": cannot use as the media cache folder: " +
                (ec ? ec.message() : std::string("not a directory")));
  remove_stale_temporaries(dir_);
}

std::string MediaCache::entry_path(const MediaKey& key, MediaKind kind) const {
  if (dir_.empty()) return {};
  return dir_ + "/" + key.hex() + "." + kind_name(kind) + kEntrySuffix;
}

std::shared_ptr<const EncodedImage> MediaCache::find_image(const MediaKey& key) {
  return std::static_pointer_cast<const EncodedImage>(find(key, MediaKind::Image));
}

std::shared_ptr<const EncodedVideo> MediaCache::find_video(const MediaKey& key) {
  return std::static_pointer_cast<const EncodedVideo>(find(key, MediaKind::Video));
}

void MediaCache::put_image(const MediaKey& key, std::shared_ptr<const EncodedImage> value) {
  if (!value) return;
  const size_t bytes = memory_bytes(*value);
  put(key, MediaKind::Image, std::move(value), bytes);
}

void MediaCache::put_video(const MediaKey& key, std::shared_ptr<const EncodedVideo> value) {
  if (!value) return;
  const size_t bytes = memory_bytes(*value);
  put(key, MediaKind::Video, std::move(value), bytes);
}

MediaCacheStats MediaCache::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::shared_ptr<const void> MediaCache::find(const MediaKey& key, MediaKind kind) {
  if (auto hit = memory_find(key, kind)) return hit;
  std::shared_ptr<const void> value = dir_.empty() ? nullptr : disk_read(key, kind);
  if (!value) {
    std::lock_guard lock(mutex_);
    ++stats_.misses;
    return nullptr;
  }
  const size_t bytes = kind == MediaKind::Image
                           ? memory_bytes(*std::static_pointer_cast<const EncodedImage>(value))
                           : memory_bytes(*std::static_pointer_cast<const EncodedVideo>(value));
  {
    std::lock_guard lock(mutex_);
    ++stats_.disk_hits;
  }
  memory_put(key, kind, value, bytes);
  return value;
}

void MediaCache::put(const MediaKey& key, MediaKind kind, std::shared_ptr<const void> value,
                     size_t bytes) {
  memory_put(key, kind, value, bytes);
  if (!dir_.empty()) disk_write(key, kind, value.get());
}

std::shared_ptr<const void> MediaCache::memory_find(const MediaKey& key, MediaKind kind) {
  std::lock_guard lock(mutex_);
  const auto it = index_.find({key, kind});
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  ++stats_.memory_hits;
  return it->second->value;
}

void MediaCache::memory_put(const MediaKey& key, MediaKind kind, std::shared_ptr<const void> value,
                            size_t bytes) {
  std::lock_guard lock(mutex_);
  if (const auto it = index_.find({key, kind}); it != index_.end()) {
    stats_.memory_bytes -= it->second->bytes;
    lru_.erase(it->second);
    index_.erase(it);
  }
  if (bytes <= limit_) {
    lru_.push_front(Entry{key, kind, std::move(value), bytes});
    index_[{key, kind}] = lru_.begin();
    stats_.memory_bytes += bytes;
  }
  while (stats_.memory_bytes > limit_) {
    const Entry& victim = lru_.back();
    stats_.memory_bytes -= victim.bytes;
    index_.erase({victim.key, victim.kind});
    lru_.pop_back();
    ++stats_.evictions;
  }
  stats_.memory_entries = lru_.size();
}

std::shared_ptr<const void> MediaCache::disk_read(const MediaKey& key, MediaKind kind) {
  const std::string path = entry_path(key, kind);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return nullptr;  // no entry: a plain miss
  // A link, FIFO or folder planted under an entry's name is dropped, never followed or waited on
  // (O_NOFOLLOW and O_NONBLOCK cover one swapped in after the lstat).
  if (!S_ISREG(st.st_mode)) {
    drop_file(path, st.st_dev, st.st_ino);
    return nullptr;
  }
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) {
    if (errno == ELOOP) drop_file(path, st.st_dev, st.st_ino);
    return nullptr;  // gone since the lstat, or the system is short of something: a miss
  }
  try {
    expect(::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode), "not a regular file");
    auto value = read_entry(fd.get(), uint64_t(st.st_size), key, kind);
    if (disk_limit_ > 0) ::futimens(fd.get(), nullptr);  // used now: last to go when trimming
    return value;
  } catch (const CorruptEntry&) {
    // Corrupt, truncated or foreign: recomputing is always correct, trusting never is.
    drop_file(path, st.st_dev, st.st_ino);
  } catch (const std::exception&) {
    // A read error or no memory for a large entry: the file may be fine, so it stays.
  }
  return nullptr;
}

void MediaCache::drop_file(const std::string& path, uint64_t dev, uint64_t ino) {
  // Only the file that was read: another process may have renamed a good entry over it since.
  struct stat now {};
  if (::lstat(path.c_str(), &now) == 0 && now.st_dev == dev && now.st_ino == ino)
    ::unlink(path.c_str());
  std::lock_guard lock(mutex_);
  ++stats_.corrupt_dropped;
}

void MediaCache::disk_write(const MediaKey& key, MediaKind kind, const void* value) {
  {
    std::lock_guard lock(mutex_);
    if (!disk_writable_) return;
  }
  const std::string final_path = entry_path(key, kind);
  std::string temp =
      final_path.substr(0, final_path.size() - std::strlen(kEntrySuffix)) + kTempMarker + "XXXXXX";
  Fd fd(::mkstemp(temp.data()));
  const int create_error = errno;
  const bool created = fd.get() >= 0;
  try {
    if (!created) throw IoError(dir_ + ": " + std::strerror(create_error));
    Header h{kind, key};
    write_fully(fd.get(), encode_header(h).data(), kHeaderBytes, temp);
    PayloadWriter w(fd.get(), temp);
    if (kind == MediaKind::Image)
      write_payload(w, *static_cast<const EncodedImage*>(value));
    else
      write_payload(w, *static_cast<const EncodedVideo*>(value));
    w.flush();
    h.payload_bytes = w.size();
    h.checksum = w.digest();
    // The header goes in last, so a file cut short anywhere fails its checks. No fsync: after a
    // crash a renamed but unsynced entry reads as corrupt and is dropped, which costs only time.
    const auto header = encode_header(h);
    if (::pwrite(fd.get(), header.data(), kHeaderBytes, 0) != ssize_t(kHeaderBytes))
      throw IoError(temp + ": " + std::strerror(errno));
    if (::close(fd.release()) != 0) throw IoError(temp + ": " + std::strerror(errno));
    if (::rename(temp.c_str(), final_path.c_str()) != 0)
      throw IoError(final_path + ": " + std::strerror(errno));
    {
      std::lock_guard lock(mutex_);
      ++stats_.disk_writes;
    }
    if (disk_limit_ > 0) trim_disk();
  } catch (const std::exception& e) {
    if (created) ::unlink(temp.c_str());
    bool first = false;
    {
      std::lock_guard lock(mutex_);
      ++stats_.disk_write_failures;
      first = std::exchange(disk_writable_, false);
    }
    if (first && note_)
      note_(std::string("media cache: cannot write to ") + dir_ + " (" + e.what() +
            "); not saving encodings to disk for the rest of this run");
  }
}

// Deletes the least recently used entries until the folder's entries fit the limit. Other
// processes may write or delete at the same time: a file gone before it is deleted is simply not
// counted, and one written meanwhile is seen by the next trim.
void MediaCache::trim_disk() {
  namespace fs = std::filesystem;
  struct File {
    fs::file_time_type used;
    uint64_t bytes;
    fs::path path;
  };
  std::vector<File> files;
  uint64_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= std::strlen(kEntrySuffix) || !name.ends_with(kEntrySuffix)) continue;
    std::error_code e1, e2;
    if (!it->is_regular_file(e1)) continue;
    const uint64_t bytes = it->file_size(e1);
    const auto used = it->last_write_time(e2);
    if (e1 || e2) continue;
    files.push_back({used, bytes, it->path()});
    total += bytes;
  }
  if (total <= disk_limit_) return;
  std::sort(files.begin(), files.end(),
            [](const File& a, const File& b) { return a.used < b.used; });
  int64_t removed = 0;
  for (const File& f : files) {
    if (total <= disk_limit_) break;
    std::error_code ignored;
    if (fs::remove(f.path, ignored)) ++removed;
    total -= f.bytes;
  }
  std::lock_guard lock(mutex_);
  stats_.disk_evictions += removed;
}

}  // namespace reel
