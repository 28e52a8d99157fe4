// GGUF reader: valid files (from the in-test Builder and from gguf-py's GGUFWriter), every
// getter, and every rejection path.
#include <gtest/gtest.h>

#include <cstring>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "gguf/gguf.h"
#include "gguf_builder.h"

namespace reel::gguf {
namespace {

using testing::Builder;

constexpr uint32_t kU8 = 0, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8,
                   kArray = 9, kU64 = 10;
constexpr uint32_t kTypeF32 = 0, kTypeQ8_0 = 8;

// Parses from an exactly-sized heap copy so AddressSanitizer sees any read past the end.
struct Parsed {
  std::unique_ptr<uint8_t[]> data;
  std::unique_ptr<File> file;
};
Parsed parse(const std::vector<uint8_t>& bytes, size_t size) {
  Parsed p;
  p.data.reset(new uint8_t[size]);
  std::copy(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(size), p.data.get());
  p.file = File::from_memory(p.data.get(), size, "mem");
  return p;
}
Parsed parse(const std::vector<uint8_t>& bytes) {
  return parse(bytes, bytes.size());
}

// Expects a reel::Error of `kind` whose one-line message is "mem: ..." and contains `needle`.
// A broken file is InvalidInput; a well-formed one using what Reel does not read, Unsupported.
void expect_error(const std::vector<uint8_t>& bytes, const std::string& needle,
                  ErrorKind kind = ErrorKind::InvalidInput) {
  try {
    parse(bytes);
    ADD_FAILURE() << "no error; expected one containing: " << needle;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("mem: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_EQ(e.kind(), kind) << msg << " is " << error_kind_name(e.kind()) << ", expected "
                              << error_kind_name(kind);
  }
}

// A valid file: 9 KVs of assorted types (incl. an empty and a nested array) and two tensors;
// the file ends exactly where the last tensor's data does.
std::vector<uint8_t> valid_file() {
  Builder b;
  b.header(2, 9);
  b.kv_str("general.architecture", "test");
  b.kv_u32("a.u32", 7);
  b.key("a.i32", kI32).u32(static_cast<uint32_t>(-5));
  b.key("a.f32", kF32).f32(0.25f);
  b.key("a.bool", kBool).u8(1);
  b.key("a.arr_i16", kArray).u32(kI16).u64(3).raw("\x01\x00\xfe\xff\x03\x00", 6);
  b.key("a.empty", kArray).u32(kU32).u64(0);
  b.key("a.nested", kArray).u32(kArray).u64(2);
  b.u32(kString).u64(2).str("x").str("yy");
  b.u32(kU32).u64(1).u32(42);
  b.key("a.arr_str", kArray).u32(kString).u64(2).str("foo").str("");
  b.tensor("w", {32, 2}, kTypeQ8_0, 0);
  b.tensor("b", {4}, kTypeF32, 96);
  b.pad_to(32);
  const size_t data = b.size();
  b.zeros(68);
  b.bytes()[data] = 0x00;  // Q8_0 block 0: d = 1.0 (fp16 0x3c00), q[0] = 3
  b.bytes()[data + 1] = 0x3c;
  b.bytes()[data + 2] = 3;
  b.pad_to(32);
  const float values[4] = {1, 2, 3, 4};
  b.raw(values, sizeof values);
  return b.bytes();
}

TEST(Reader, ValidBuilderFile) {
  const std::vector<uint8_t> bytes = valid_file();
  Parsed p = parse(bytes);
  const File& f = *p.file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.metadata().size(), 9u);
  EXPECT_EQ(f.get_str("general.architecture"), "test");
  EXPECT_EQ(f.get_u32("a.u32"), 7u);
  EXPECT_EQ(f.get_u64("a.u32"), 7u);
  EXPECT_EQ(f.get_i64("a.i32"), -5);
  EXPECT_EQ(f.get_f32("a.f32"), 0.25f);
  EXPECT_TRUE(f.get_bool("a.bool"));
  EXPECT_EQ(f.get_int_array("a.arr_i16"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_TRUE(f.get_int_array("a.empty").empty());
  EXPECT_EQ(f.get_str_array("a.arr_str"), (std::vector<std::string_view>{"foo", ""}));
  const Value* nested = f.find("a.nested");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->elem_type, ValueType::ARRAY);
  ASSERT_EQ(nested->elems.size(), 2u);
  EXPECT_EQ(nested->elems[0].strs, (std::vector<std::string_view>{"x", "yy"}));
  EXPECT_EQ(nested->elems[1].elem_type, ValueType::U32);
  EXPECT_EQ(nested->elems[1].count, 1u);

  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorInfo* w = f.find_tensor("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->type, GgmlType::Q8_0);
  EXPECT_EQ(w->n_dims, 2);
  EXPECT_EQ(w->ne[0], 32);
  EXPECT_EQ(w->ne[1], 2);
  EXPECT_EQ(w->rows(), 2);
  EXPECT_EQ(w->nbytes, 68u);
  float row[32];
  dequantize_row_ref(w->type, w->data, row, 32);
  EXPECT_EQ(row[0], 3.0f);
  const TensorInfo* bias = f.find_tensor("b");
  ASSERT_NE(bias, nullptr);
  EXPECT_EQ(bias->data, p.data.get() + f.data_offset() + 96);
  EXPECT_EQ(reinterpret_cast<const float*>(bias->data)[3], 4.0f);
  EXPECT_EQ(f.find_tensor("nope"), nullptr);
}

TEST(Reader, GetterErrors) {
  const std::vector<uint8_t> bytes = valid_file();
  Parsed p = parse(bytes);
  const File& f = *p.file;
  EXPECT_THROW(f.get_u32("missing"), Error);
  EXPECT_THROW(f.get_u32("a.i32"), Error);  // negative
  EXPECT_THROW(f.get_str("a.u32"), Error);
  EXPECT_THROW(f.get_f32("a.u32"), Error);
  EXPECT_THROW(f.get_bool("a.u32"), Error);
  EXPECT_THROW(f.get_str_array("a.arr_i16"), Error);
  EXPECT_THROW(f.get_f32_array("a.arr_i16"), Error);
  EXPECT_THROW(f.get_bool_array("a.arr_str"), Error);
  EXPECT_THROW(f.get_int_array("a.nested"), Error);
  EXPECT_FALSE(f.opt_u32("missing").has_value());
  EXPECT_FALSE(f.opt_str("missing").has_value());
  EXPECT_FALSE(f.opt_f32("missing").has_value());
  EXPECT_FALSE(f.opt_bool("missing").has_value());
  EXPECT_EQ(f.opt_u32("a.u32"), 7u);
  EXPECT_THROW(f.opt_u32("general.architecture"), Error);
  try {
    f.get_u32("missing.key");
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "mem: missing key 'missing.key'");
  }
}

// Read into huge-page memory or mapped, the same file gives the same metadata and tensor bytes;
// kAuto maps a file under kHugePagesMinBytes.
TEST(Reader, HugePagesAndMappingHoldTheSameBytes) {
  const std::string path = std::string(REEL_FIXTURE_SRC) + "/gguf/writer-sample.gguf";
  const std::unique_ptr<File> mapped = File::open(path, LoadMode::kMap);
  const std::unique_ptr<File> read = File::open(path, LoadMode::kHugePages);
  EXPECT_FALSE(mapped->huge_pages());
  EXPECT_TRUE(read->huge_pages());
  EXPECT_FALSE(File::open(path)->huge_pages());  // a small file
  ASSERT_EQ(mapped->size(), read->size());
  // The image starts on a 2 MiB boundary, where a huge page can back it.
  const TensorInfo& first = read->tensors().at(0);
  EXPECT_EQ((reinterpret_cast<uintptr_t>(first.data) - read->data_offset() - first.offset) %
                (uintptr_t{2} << 20),
            0u);
  EXPECT_EQ(read->get_str("t.str"), mapped->get_str("t.str"));
  ASSERT_EQ(mapped->tensors().size(), read->tensors().size());
  for (size_t i = 0; i < mapped->tensors().size(); ++i) {
    const TensorInfo& a = mapped->tensors()[i];
    const TensorInfo& b = read->tensors()[i];
    EXPECT_EQ(a.name, b.name);
    ASSERT_EQ(a.nbytes, b.nbytes);
    EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0) << a.name;
  }
}

TEST(Reader, GgufPythonWriterSample) {
  const std::string path = std::string(REEL_FIXTURE_SRC) + "/gguf/writer-sample.gguf";
  const std::unique_ptr<File> f = File::open(path);
  EXPECT_EQ(f->path(), path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->get_u32("general.alignment"), 64u);
  EXPECT_EQ(f->get_str("general.architecture"), "reeltest");
  EXPECT_EQ(f->get_u32("t.u8"), 200u);
  EXPECT_EQ(f->get_i64("t.i8"), -100);
  EXPECT_EQ(f->get_u32("t.u16"), 60000u);
  EXPECT_EQ(f->get_i64("t.i16"), -30000);
  EXPECT_EQ(f->get_u32("t.u32"), 4000000000u);
  EXPECT_EQ(f->get_i64("t.i32"), -2000000000);
  EXPECT_EQ(f->get_f32("t.f32"), 1.5f);
  EXPECT_EQ(*f->opt_f32("t.f32"), 1.5f);
  EXPECT_TRUE(f->get_bool("t.bool"));
  EXPECT_EQ(*f->opt_bool("t.bool"), true);
  EXPECT_EQ(f->get_str("t.str"), "h\xc3\xa9llo");
  EXPECT_EQ(*f->opt_str("t.str"), "h\xc3\xa9llo");
  EXPECT_EQ(f->get_u64("t.u64"), (uint64_t{1} << 63) + 5);
  EXPECT_THROW(f->get_i64("t.u64"), Error);  // does not fit
  EXPECT_THROW(f->get_u32("t.u64"), Error);
  EXPECT_EQ(f->get_i64("t.i64"), -(int64_t{1} << 62));
  EXPECT_EQ(f->find("t.f64")->type, ValueType::F64);
  EXPECT_EQ(f->find("t.f64")->f, 0.1);
  EXPECT_EQ(f->get_f32("t.f64"), 0.1f);
  EXPECT_EQ(f->get_int_array("t.arr_i32"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(f->get_f32_array("t.arr_f32"), (std::vector<float>{0.5f, -0.25f}));
  EXPECT_EQ(f->get_bool_array("t.arr_bool"), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(f->get_str_array("t.arr_str"), (std::vector<std::string_view>{"a", "", "xyz"}));
  EXPECT_EQ(f->get_int_array("t.arr_u8"), (std::vector<int64_t>{7, 8, 255}));
  EXPECT_EQ(f->get_int_array("t.arr_i64"),
            (std::vector<int64_t>{-(int64_t{1} << 40), int64_t{1} << 40}));

  const Value* nested = f->find("t.nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->elem_type, ValueType::ARRAY);
  ASSERT_EQ(nested->elems.size(), 3u);
  EXPECT_EQ(nested->elems[2].elem_type, ValueType::I32);
  EXPECT_EQ(nested->elems[2].count, 3u);
  int32_t third[3];
  std::memcpy(third, nested->elems[2].raw, sizeof third);
  EXPECT_EQ(third[0], 4);
  EXPECT_EQ(third[2], 6);
  const Value* nested_str = f->find("t.nested_str");
  ASSERT_NE(nested_str, nullptr);
  ASSERT_EQ(nested_str->elems.size(), 2u);
  EXPECT_EQ(nested_str->elems[0].strs, (std::vector<std::string_view>{"p", "q"}));

  ASSERT_EQ(f->tensors().size(), 5u);
  const TensorInfo* t = f->find_tensor("f32");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->ne[0], 4);
  EXPECT_EQ(t->ne[1], 3);
  EXPECT_EQ(reinterpret_cast<const float*>(t->data)[11], 11.0f);
  float buf[32];
  t = f->find_tensor("f16");
  ASSERT_NE(t, nullptr);
  dequantize_row_ref(t->type, t->data, buf, 8);
  EXPECT_EQ(buf[0], -4.0f);
  EXPECT_EQ(buf[7], 3.0f);
  t = f->find_tensor("bf16");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->type, GgmlType::BF16);
  dequantize_row_ref(t->type, t->data, buf, 4);
  EXPECT_EQ(buf[1], -2.0f);
  t = f->find_tensor("q8_0");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->nbytes, 68u);
  dequantize_row_ref(t->type, t->data + 34, buf, 32);
  EXPECT_EQ(buf[31], 15.5f);
  t = f->find_tensor("q4_k");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->type, GgmlType::Q4_K);
  EXPECT_EQ(t->nbytes, 144u);
  for (const TensorInfo& ti : f->tensors()) EXPECT_EQ(ti.offset % 64, 0u);
}

// Every proper prefix of a valid file is invalid and must be rejected cleanly.
TEST(Reader, TruncationAtEveryOffset) {
  const std::vector<uint8_t> bytes = valid_file();
  for (size_t n = 0; n < bytes.size(); ++n) {
    try {
      parse(bytes, n);
      ADD_FAILURE() << "prefix of " << n << " bytes accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::InvalidInput) << "prefix of " << n << " bytes: " << e.what();
    }
  }
}

TEST(Reader, VersionTwoAccepted) {
  Builder b;
  b.header(0, 1, 2).kv_u32("k", 1);
  EXPECT_EQ(parse(b.bytes()).file->version(), 2u);
}

TEST(Reader, RejectsBadMagic) {
  std::vector<uint8_t> bytes = valid_file();
  bytes[0] = 'X';
  expect_error(bytes, "not a GGUF file (bad magic)");
  expect_error({'G', 'G'}, "not a GGUF file");
  expect_error({}, "empty file");
}

TEST(Reader, RejectsVersions) {
  Builder v1, v4, big;
  v1.header(0, 0, 1);
  v4.header(0, 0, 4);
  big.header(0, 0, 0x03000000);
  expect_error(v1.bytes(), "GGUF version 1 is not supported", ErrorKind::Unsupported);
  expect_error(v4.bytes(), "unsupported GGUF version 4", ErrorKind::Unsupported);
  expect_error(big.bytes(), "big-endian", ErrorKind::Unsupported);
}

TEST(Reader, RejectsHugeCounts) {
  const uint64_t huge = uint64_t{1} << 63;
  Builder kvs, tensors, array, strings, nested;
  kvs.header(0, huge);
  expect_error(kvs.bytes(), "metadata count 9223372036854775808 exceeds");
  tensors.header(huge, 0);
  expect_error(tensors.bytes(), "tensor count 9223372036854775808 exceeds");
  array.header(0, 1).key("a", kArray).u32(kU64).u64(huge);
  expect_error(array.bytes(), "array 'a' length");
  strings.header(0, 1).key("a", kArray).u32(kString).u64(huge);
  expect_error(strings.bytes(), "array 'a' length");
  nested.header(0, 1).key("a", kArray).u32(kArray).u64(huge);
  expect_error(nested.bytes(), "array 'a' length");
}

// Values past INT32_MAX / INT64_MAX in messages are printed as the unsigned numbers in the file,
// never wrapped to negatives.
TEST(Reader, MessagesPrintUnsignedValuesUnsigned) {
  const uint32_t u32_max = ~uint32_t{0};
  const uint64_t u64_max = ~uint64_t{0};
  Builder version, value_type, elem_type, dims, shape, type_id, offset;
  version.header(0, 0, u32_max);
  expect_error(version.bytes(), "unsupported GGUF version 4294967295", ErrorKind::Unsupported);
  value_type.header(0, 1).key("k", u32_max);
  expect_error(value_type.bytes(), "key 'k' has unknown value type 4294967295");
  elem_type.header(0, 1).key("k", kArray).u32(u32_max).u64(0);
  expect_error(elem_type.bytes(), "array 'k' has unknown element type 4294967295");
  dims.header(1, 0).str("t").u32(u32_max).zeros(64);
  expect_error(dims.bytes(), "tensor 't' has 4294967295 dimensions");
  shape.header(1, 0).tensor("t", {u64_max}, 0, 0).zeros(64);
  expect_error(shape.bytes(), "tensor 't' has invalid size 18446744073709551615 in dimension 0");
  type_id.header(1, 0).tensor("t", {4}, u32_max, 0).zeros(64);
  expect_error(type_id.bytes(), "tensor 't' has unknown ggml type id 4294967295",
               ErrorKind::Unsupported);
  offset.header(1, 0).tensor("t", {4}, 0, u64_max - 31).zeros(64);
  expect_error(offset.bytes(), "18446744073709551584");
}

TEST(Reader, RejectsStringPastEnd) {
  Builder key, value, huge;
  key.header(0, 1).u64(100).raw("abc", 3).zeros(16);
  expect_error(key.bytes(), "metadata key at offset 24 has length 100, past the end");
  value.header(0, 1).key("s", kString).u64(5).raw("ab", 2);
  expect_error(value.bytes(), "past the end");
  huge.header(0, 1).key("s", kString).u64(~uint64_t{0});
  expect_error(huge.bytes(), "past the end");
}

TEST(Reader, RejectsBadValues) {
  Builder type, elem, boolean, bool_array, deep;
  type.header(0, 1).key("k", 13).u32(0);
  expect_error(type.bytes(), "key 'k' has unknown value type 13");
  elem.header(0, 1).key("k", kArray).u32(99).u64(0);
  expect_error(elem.bytes(), "array 'k' has unknown element type 99");
  boolean.header(0, 1).key("k", kBool).u8(2);
  expect_error(boolean.bytes(), "key 'k' has bool value 2");
  bool_array.header(0, 1).key("k", kArray).u32(kBool).u64(2).u8(1).u8(7);
  expect_error(bool_array.bytes(), "bool value 7");
  deep.header(0, 1).key("k", kArray);
  for (int i = 0; i < 100; ++i) deep.u32(kArray).u64(1);
  expect_error(deep.bytes(), "nests arrays deeper than");
}

TEST(Reader, RejectsDuplicateKey) {
  Builder b;
  b.header(0, 2).kv_u32("k", 1).kv_str("k", "x");
  expect_error(b.bytes(), "duplicate metadata key 'k'");
}

TEST(Reader, RejectsBadAlignment) {
  for (uint32_t bad : {0u, 3u, 48u}) {
    Builder b;
    b.header(0, 1).kv_u32("general.alignment", bad);
    expect_error(b.bytes(), "general.alignment " + std::to_string(bad) + " is not a nonzero power");
  }
  Builder str;
  str.header(0, 1).kv_str("general.alignment", "32");
  expect_error(str.bytes(), "general.alignment has type string");
}

// A file with one KV-free header and the given tensor infos, padded, plus `data` zero bytes.
std::vector<uint8_t> tensors_file(const std::function<void(Builder&)>& infos, uint64_t count,
                                  size_t data) {
  Builder b;
  b.header(count, 0);
  infos(b);
  b.pad_to(32).zeros(data);
  return b.bytes();
}

TEST(Reader, RejectsBadShapes) {
  expect_error(tensors_file([](Builder& b) { b.tensor("t", {}, kTypeF32, 0); }, 1, 64),
               "tensor 't' has 0 dimensions");
  expect_error(tensors_file(
                   [](Builder& b) {
                     b.tensor("t", {1, 1, 1, 1, 1}, kTypeF32, 0);
                   },
                   1, 64),
               "tensor 't' has 5 dimensions");
  expect_error(tensors_file(
                   [](Builder& b) {
                     b.tensor("t", {4, 0}, kTypeF32, 0);
                   },
                   1, 64),
               "invalid size 0 in dimension 1");
  expect_error(tensors_file([](Builder& b) { b.tensor("t", {~uint64_t{0}}, kTypeF32, 0); }, 1, 64),
               "invalid size");
  expect_error(tensors_file(
                   [](Builder& b) {
                     b.tensor("t", {uint64_t{1} << 32, uint64_t{1} << 32}, kTypeF32, 0);
                   },
                   1, 64),
               "shape overflows");
  // 2^62 F32 elements: the element count fits but the byte size does not.
  expect_error(
      tensors_file([](Builder& b) { b.tensor("t", {uint64_t{1} << 62}, kTypeF32, 0); }, 1, 64),
      "data size overflows");
  expect_error(tensors_file([](Builder& b) { b.tensor("t", {16}, kTypeQ8_0, 0); }, 1, 64),
               "not a multiple of the Q8_0 block size 32");
  expect_error(tensors_file([](Builder& b) { b.tensor("t", {4}, 4, 0); }, 1, 64),
               "tensor 't' has unknown ggml type id 4", ErrorKind::Unsupported);
}

TEST(Reader, RejectsBadPlacement) {
  expect_error(tensors_file(
                   [](Builder& b) {
                     b.tensor("a", {4}, kTypeF32, 0);
                     b.tensor("a", {4}, kTypeF32, 32);
                   },
                   2, 64),
               "duplicate tensor 'a'");
  expect_error(tensors_file([](Builder& b) { b.tensor("t", {4}, kTypeF32, 16); }, 1, 64),
               "offset 16 is not a multiple of the alignment 32");
  expect_error(tensors_file(
                   [](Builder& b) {
                     b.tensor("a", {16}, kTypeF32, 0);  // 64 bytes, reaches into b
                     b.tensor("b", {4}, kTypeF32, 32);
                   },
                   2, 96),
               "tensors 'a' and 'b' overlap");
  expect_error(tensors_file([](Builder& b) { b.tensor("t", {32}, kTypeF32, 0); }, 1, 64),
               "tensor 't' data (offset 0, 128 bytes) extends past the end");
  expect_error(tensors_file([](Builder& b) { b.tensor("t", {4}, kTypeF32, ~uint64_t{31}); }, 1, 64),
               "extends past the end");
  // Data section itself missing: the infos end and nothing follows.
  Builder no_data;
  no_data.header(1, 0).tensor("t", {4}, kTypeF32, 0);
  expect_error(no_data.bytes(), "past the end of the file");
}

TEST(Reader, MessagesEscapeControlBytes) {
  Builder b;
  b.header(0, 2).kv_u32("a\nb", 1).kv_u32("a\nb", 2);
  expect_error(b.bytes(), "duplicate metadata key 'a\\x0ab'");
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("reel-gguf-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& contents) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }
  static std::string open_error(const std::string& path) {
    try {
      File::open(path);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }
  static std::string open_kind(const std::string& path) {
    try {
      File::open(path);
    } catch (const Error& e) {
      return error_kind_name(e.kind());
    }
    return "(no error)";
  }
  // open_error() run in a child process, so that a blocking open (a FIFO without a writer) fails
  // the test after a few seconds instead of hanging it.
  static std::string open_error_or_hang(const std::string& path) {
    int fds[2];
    if (::pipe(fds) != 0) return "(pipe failed)";
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      const std::string e = open_error(path);
      (void)!::write(fds[1], e.data(), e.size());
      ::_exit(0);
    }
    ::close(fds[1]);
    std::string out;
    pollfd p{fds[0], POLLIN, 0};
    char buf[512];
    // 5 s: the open is a few system calls; only a block on the FIFO takes this long.
    bool finished = false;  // the child closed the pipe: it returned and is exiting
    while (!finished && ::poll(&p, 1, 5000) == 1) {
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      finished = n <= 0;
      if (n > 0) out.append(buf, size_t(n));
    }
    if (!finished) {
      ::kill(pid, SIGKILL);
      out = "(hung)";
    }
    ::waitpid(pid, nullptr, 0);
    ::close(fds[0]);
    return out;
  }
  std::filesystem::path dir_;
};

// Paths that are not regular files: each refused at once with its own reason, none mapped.
TEST_F(TempDir, NotRegularFiles) {
  const std::string fifo = (dir_ / "fifo.gguf").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(open_error_or_hang(fifo), fifo + ": is a FIFO/pipe, not a regular file");
  EXPECT_EQ(open_error_or_hang("/dev/zero"), "/dev/zero: is a device, not a regular file");
  const std::string loop = (dir_ / "loop.gguf").string();
  ASSERT_EQ(::symlink(loop.c_str(), loop.c_str()), 0);
  EXPECT_EQ(open_error(loop), loop + ": too many levels of symbolic links (a link loop?)");
  const std::string dangling = (dir_ / "dangling.gguf").string();
  ASSERT_EQ(::symlink((dir_ / "gone.gguf").c_str(), dangling.c_str()), 0);
  EXPECT_EQ(open_error(dangling),
            dangling + ": is a broken symbolic link (its target does not exist)");
  const std::string text = write("text.gguf", "x");
  EXPECT_EQ(open_error(text + "/model.gguf"),
            text + "/model.gguf: a path component is not a directory");
}

TEST_F(TempDir, FileErrors) {
  const std::string missing = (dir_ / "missing.gguf").string();
  EXPECT_EQ(open_error(missing), missing + ": no such file");
  EXPECT_EQ(open_error(dir_.string()), dir_.string() + ": is a directory, not a GGUF file");
  const std::string empty = write("empty.gguf", "");
  EXPECT_EQ(open_error(empty), empty + ": empty file (not a GGUF file)");
  const std::string text = write("text.gguf", "hello, this is not gguf\n");
  EXPECT_EQ(open_error(text), text + ": not a GGUF file (bad magic)");
  const std::vector<uint8_t> valid = valid_file();
  const std::string truncated = write("trunc.gguf", std::string(valid.begin(), valid.begin() + 60));
  EXPECT_EQ(open_error(truncated).rfind(truncated + ": ", 0), 0u);
  EXPECT_NE(open_error(truncated).find("truncated"), std::string::npos) << open_error(truncated);
  const std::string good = write("good.gguf", std::string(valid.begin(), valid.end()));
  EXPECT_EQ(File::open(good)->tensors().size(), 2u);
}

// The kinds through File::open, as a frontend sees them: a missing or truncated file is the
// caller's (invalid input); a tensor of a ggml type newer than Reel is unsupported.
TEST_F(TempDir, ErrorKindsThroughOpen) {
  EXPECT_EQ(open_kind((dir_ / "missing.gguf").string()), "invalid_input");
  const std::vector<uint8_t> valid = valid_file();
  EXPECT_EQ(open_kind(write("trunc.gguf", std::string(valid.begin(), valid.begin() + 60))),
            "invalid_input");
  std::vector<uint8_t> newer = valid;
  // Tensor 'b' (F32, type id 0) gets id 39, a type this reader does not know.
  std::string info(8, '\0');  // the name: u64 length 1, then "b"
  info[0] = 1;
  info += 'b';
  auto at = std::search(newer.begin(), newer.end(), info.begin(), info.end());
  ASSERT_NE(at, newer.end());
  const size_t type_at = size_t(at - newer.begin()) + info.size() + 4 + 8;  // n_dims, ne[0]
  ASSERT_EQ(newer[type_at], 0);
  newer[type_at] = 39;
  const std::string path = write("newer.gguf", std::string(newer.begin(), newer.end()));
  EXPECT_EQ(open_kind(path), "unsupported") << open_error(path);
  EXPECT_EQ(open_error(path), path + ": tensor 'b' has unknown ggml type id 39");
}

}  // namespace
}  // namespace reel::gguf
