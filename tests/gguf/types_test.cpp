// Reference dequantization against vectors computed by the gguf Python package
// (tools/reference/make_quant_vectors.py), plus the half/bfloat16 conversions.
#include "gguf/types.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"

namespace reel {
namespace {

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Distance in units in the last place between two finite floats of the same sign convention.
int64_t ulp_distance(float a, float b) {
  auto ordered = [](float x) {
    const int32_t i = std::bit_cast<int32_t>(x);
    return i < 0 ? int64_t{INT32_MIN} - i : int64_t{i};
  };
  return std::llabs(ordered(a) - ordered(b));
}

class DequantizeVectors : public ::testing::TestWithParam<GgmlType> {};

TEST_P(DequantizeVectors, MatchesGgufPython) {
  const TypeInfo info = type_info(GetParam());
  const std::string base = std::string(REEL_FIXTURE_SRC) + "/quant/" + std::string(info.name);
  const std::vector<uint8_t> blocks = read_bytes(base + ".blocks");
  const std::vector<uint8_t> expected_bytes = read_bytes(base + ".f32");
  ASSERT_EQ(blocks.size() % info.block_bytes, 0u);
  const int64_t n = static_cast<int64_t>(blocks.size() / info.block_bytes) * info.block_elems;
  ASSERT_EQ(expected_bytes.size(), static_cast<size_t>(n) * 4);
  std::vector<float> expected(n), got(n);
  std::memcpy(expected.data(), expected_bytes.data(), expected_bytes.size());

  dequantize_row_ref(info.type, blocks.data(), got.data(), n);

  // Both sides evaluate the same float32 formula. The scale products (an fp16 value times a
  // small integer) are exact in float32, so only the last multiply (Q6_K: 25 significant bits)
  // and the "+ m" / "- dmin * m" step round, once each. With the same grouping the results are
  // bit-identical (they are today: 0 ulp for every type); 1 ulp is allowed so that an equally
  // valid regrouping of that one rounding step in either implementation does not fail the test.
  int mismatches = 0;
  for (int64_t i = 0; i < n && mismatches < 10; ++i) {
    if (ulp_distance(got[i], expected[i]) > 1) {
      ADD_FAILURE() << info.name << " element " << i << ": got " << got[i] << ", expected "
                    << expected[i];
      ++mismatches;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllSupported, DequantizeVectors,
                         ::testing::Values(GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0,
                                           GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                                           GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                                           GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K),
                         [](const auto& p) { return std::string(type_info(p.param).name); });

TEST(Types, TableGeometry) {
  EXPECT_EQ(type_info(GgmlType::Q4_K).block_bytes, 144);
  EXPECT_EQ(type_info(GgmlType::Q6_K).block_bytes, 210);
  EXPECT_EQ(type_info(GgmlType::Q5_K).block_bytes, 176);
  EXPECT_EQ(type_info(GgmlType::Q3_K).block_bytes, 110);
  EXPECT_EQ(type_info(GgmlType::Q2_K).block_bytes, 84);
  EXPECT_EQ(type_info(GgmlType::Q8_0).block_bytes, 34);
  EXPECT_EQ(type_info(GgmlType::BF16).name, "BF16");
  EXPECT_FALSE(type_info(GgmlType::Q8_K).supported);
  EXPECT_FALSE(type_info(uint32_t{4}).has_value());  // removed Q4_2
  EXPECT_FALSE(type_info(uint32_t{1000}).has_value());
  EXPECT_EQ(row_bytes(GgmlType::Q4_K, 512), 288u);
  EXPECT_EQ(row_bytes(GgmlType::F16, 3), 6u);
  // Callers check rows against the block size first: a partial block is Reel's bug.
  EXPECT_THROW(row_bytes(GgmlType::Q8_0, 33), InternalError);
}

TEST(Types, UnsupportedTypeDoesNotDequantize) {
  std::vector<uint8_t> block(292);
  std::vector<float> out(256);
  EXPECT_THROW(dequantize_row_ref(GgmlType::Q8_K, block.data(), out.data(), 256), Unsupported);
}

TEST(Types, F32IsCopied) {
  const float in[3] = {1.0f, -0.0f, 3.5f};
  float out[3];
  dequantize_row_ref(GgmlType::F32, in, out, 3);
  EXPECT_EQ(std::memcmp(in, out, sizeof in), 0);
}

// The compiler's own IEEE half type, an independent reference: GCC 12 has _Float16 in C++ on
// x86 but not on aarch64, where ARM's __fp16 (same format, conversions by the FCVT
// instructions of every ARMv8 core) stands in.
#if defined(__aarch64__)
using NativeHalf = __fp16;
#else
using NativeHalf = _Float16;
#endif

TEST(Fp16, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_f32(static_cast<uint16_t>(h));
    const NativeHalf native = std::bit_cast<NativeHalf>(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(static_cast<float>(native)));
      EXPECT_TRUE(std::isnan(fp16_to_f32(f32_to_fp16(f))));
      continue;
    }
    ASSERT_EQ(std::bit_cast<uint32_t>(f), std::bit_cast<uint32_t>(static_cast<float>(native)))
        << std::hex << h;
    ASSERT_EQ(f32_to_fp16(f), h) << std::hex << h;
  }
}

// The compiler's half conversion rounds to nearest even: an independent reference.
TEST(Fp16, RoundingMatchesCompiler) {
  std::mt19937 rng(1);
  for (int i = 0; i < 2000000; ++i) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (std::isnan(f)) continue;
    const uint16_t expected = std::bit_cast<uint16_t>(static_cast<NativeHalf>(f));
    ASSERT_EQ(f32_to_fp16(f), expected) << std::hexfloat << f;
  }
  // Ties and edges.
  EXPECT_EQ(f32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_fp16(65519.99f), 0x7bff);
  EXPECT_EQ(f32_to_fp16(65520.0f), 0x7c00);
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even (0)
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(f32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);         // 1.5 ulp: to even
  EXPECT_EQ(f32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie to even
  EXPECT_EQ(f32_to_fp16(1.0f + std::ldexp(3.0f, -11)), 0x3c02);
}

TEST(Bf16, UpperBits) {
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xc000), -2.0f);
  EXPECT_TRUE(std::isinf(bf16_to_f32(0x7f80)));
}

}  // namespace
}  // namespace reel
