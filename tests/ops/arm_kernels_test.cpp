// The aarch64 int8 kernels (src/ops/matmul_arm-inl.h: SDOT, and SMMLA for Q8_0 few rows)
// against the portable ones, bit for bit, on random weights of every shape class the dispatch
// distinguishes: one activation row (the decode GEMV) and 2..15 rows (Q8_0's few-rows kernels:
// SMMLA tiles of 2 weight rows x 4 or 2 activation rows, an odd last row of either on SDOT;
// the other types decode to L1 and stay portable), one or two weight rows, odd and even row
// counts (tails of the thread tasks), odd block counts (the tail of the even/odd accumulator
// pair), one block. Under qemu the suite runs once per CPU model (tests/ops/CMakeLists.txt):
// cortex-a72 has no dotprod and must run the portable path, cortex-a76 runs SDOT, max (i8mm)
// SDOT and SMMLA; REEL_EXPECT_INT8_KERNELS names the path each must report.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "ops/cpu_features.h"
#include "ops/kernels.h"
#include "ops/ops.h"

namespace reel::ops {
namespace {

std::mt19937& gen() {
  static std::mt19937 g(4242);
  return g;
}

// Random quant bytes; the fp16 scales (the only fields where random bytes could be inf/NaN)
// set to sane positive values, mins too.
std::vector<uint8_t> random_weights(GgmlType t, int64_t rows, int64_t cols) {
  const size_t rb = row_bytes(t, cols);
  std::vector<uint8_t> w(rb * rows);
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : w) b = static_cast<uint8_t>(byte(gen()));
  std::uniform_real_distribution<float> scale(1e-3f, 0.1f);
  auto put = [&](uint8_t* p) {
    const uint16_t h = f32_to_fp16(scale(gen()));
    std::memcpy(p, &h, 2);
  };
  const TypeInfo info = type_info(t);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / info.block_elems; ++b) {
      uint8_t* blk = w.data() + r * rb + b * info.block_bytes;
      switch (t) {
        case GgmlType::Q8_0: put(blk); break;
        case GgmlType::Q4_K: put(blk), put(blk + 2); break;
        case GgmlType::Q6_K: put(blk + 208); break;
        default: break;
      }
    }
  }
  return w;
}

std::vector<float> random_activations(int64_t n, int64_t cols) {
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<float> x(n * cols);
  for (auto& v : x) v = u(gen());
  if (cols >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);  // an all-zero block
  x[cols / 2] = 1e4f;  // a block dominated by one value: every other value is small
  return x;
}

std::vector<float> run(const Matrix& m, const std::vector<float>& x, int64_t n, int threads) {
  std::vector<float> y(n * m.rows);
  Context ctx(threads);
  ctx.reserve(n, m.cols);
  matmul(m, x.data(), n, y.data(), ctx);
  return y;
}

// Restores the default kernel choice however a test ends.
struct PortableOnlyWhile {
  PortableOnlyWhile() { detail::set_arm_int8_kernels_enabled(false); }
  ~PortableOnlyWhile() { detail::set_arm_int8_kernels_enabled(true); }
};

TEST(ArmKernels, ReportsThePathThisCpuRuns) {
  const std::string path = detail::arm_int8_kernels();
  std::printf("int8 kernels: %s (cpu: %s)\n", path.c_str(), cpu_summary().c_str());
  const CpuFeatures& f = cpu_features();
  const char* expected = "portable";
  if (f.arch == "aarch64" && f.dotprod) expected = f.i8mm ? "sdot+i8mm" : "sdot";
  EXPECT_EQ(path, expected);
  // `reel --version` says so too.
  EXPECT_EQ(cpu_summary().find("+SDOT") != std::string::npos, path != "portable") << cpu_summary();
  EXPECT_EQ(cpu_summary().find("+SDOT+I8MM") != std::string::npos, path == "sdot+i8mm")
      << cpu_summary();
  if (const char* expect = std::getenv("REEL_EXPECT_INT8_KERNELS")) {
    EXPECT_EQ(path, expect);
  }
  {
    PortableOnlyWhile portable;
    EXPECT_STREQ(detail::arm_int8_kernels(), "portable");
  }
  EXPECT_EQ(detail::arm_int8_kernels(), path);
}

struct Shape {
  GgmlType type;
  int64_t rows, cols;
};

class ArmKernelsBitIdentical : public ::testing::TestWithParam<GgmlType> {};

TEST_P(ArmKernelsBitIdentical, ToThePortableKernels) {
  if (std::string(detail::arm_int8_kernels()) == "portable") {
    GTEST_SKIP() << "no SDOT kernels on this CPU (" << cpu_summary() << "): nothing to compare";
  }
  const GgmlType t = GetParam();
  const int64_t be = type_info(t).block_elems;
  // One block, an odd block count, and (Q8_0) more blocks than the 16-block groups of x86.
  std::vector<Shape> shapes = {{t, 1, be}, {t, 3, be * 3}, {t, 37, be * (be == 32 ? 7 : 2)}};
  if (be == 32) {
    shapes.push_back({t, 9, 32 * 37});
    // Even weight row counts: every row in an SMMLA pair (one task, or one per thread).
    shapes.push_back({t, 2, 32});
    shapes.push_back({t, 12, 32 * 5});
  }
  for (const Shape& s : shapes) {
    const auto w = random_weights(t, s.rows, s.cols);
    const Matrix m{t, w.data(), s.rows, s.cols, row_bytes(t, s.cols)};
    for (int64_t n : {1, 2, 3, 4, 5, 6, 7, 15}) {
      for (int threads : {1, 2}) {
        SCOPED_TRACE(std::string(type_info(t).name) + " rows=" + std::to_string(s.rows) +
                     " cols=" + std::to_string(s.cols) + " n=" + std::to_string(n) +
                     " threads=" + std::to_string(threads));
        const auto x = random_activations(n, s.cols);
        const auto fast = run(m, x, n, threads);
        std::vector<float> portable;
        {
          PortableOnlyWhile only;
          portable = run(m, x, n, threads);
        }
        // Bit for bit: the same int32 lane sums, converted, scaled and summed in the same
        // order (matmul_arm-inl.h), so no tolerance.
        for (size_t i = 0; i < fast.size(); ++i) {
          uint32_t a, b;
          std::memcpy(&a, &fast[i], 4);
          std::memcpy(&b, &portable[i], 4);
          ASSERT_EQ(a, b) << "output " << i << ": " << fast[i] << " vs portable " << portable[i];
        }
      }
    }
  }
}

// Q8_0 (decode and few rows), Q4_K and Q6_K have SDOT kernels; the other types must come out
// the same too (they take the portable kernels on every path).
INSTANTIATE_TEST_SUITE_P(IntTypes, ArmKernelsBitIdentical,
                         ::testing::Values(GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K,
                                           GgmlType::Q4_0, GgmlType::Q5_K),
                         [](const auto& info) { return std::string(type_info(info.param).name); });

// The extremes of the int32 sums: Q8_0 weights of -128 and +127 and Q6_K q - 32 = -32 with
// activations at +-kQMax, whose hi plane reaches +64 (the one value outside int8's
// [-64, 63] of x86's unsigned split). Q8_0 with 4 rows: two SMMLA pairs where the CPU has i8mm.
TEST(ArmKernels, ExtremeQuantsBitIdentical) {
  if (std::string(detail::arm_int8_kernels()) == "portable") {
    GTEST_SKIP() << "no SDOT kernels on this CPU (" << cpu_summary() << ")";
  }
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q6_K}) {
    const int64_t rows = 5, cols = 512;
    const size_t rb = row_bytes(t, cols);
    std::vector<uint8_t> w(rb * rows, 0);
    const uint16_t d = f32_to_fp16(0.01f);
    for (int64_t r = 0; r < rows; ++r) {
      uint8_t* row = w.data() + r * rb;
      if (t == GgmlType::Q8_0) {
        for (int64_t b = 0; b < cols / 32; ++b) {
          std::memcpy(row + b * 34, &d, 2);
          for (int j = 0; j < 32; ++j) row[b * 34 + 2 + j] = (r + j) % 3 ? 0x80 : 0x7f;
        }
      } else {
        for (int64_t sb = 0; sb < cols / 256; ++sb) {
          std::memset(row + sb * 210 + 192, r % 2 ? 0x80 : 0x7f, 16);  // scales -128 / 127
          std::memcpy(row + sb * 210 + 208, &d, 2);
        }
      }
    }
    const Matrix m{t, w.data(), rows, cols, rb};
    for (int64_t n : {1, 3, 4}) {
      std::vector<float> x(n * cols);
      for (int64_t k = 0; k < n * cols; ++k) x[k] = (k % 5 == 0) ? -1.0f : 1.0f;
      const auto fast = run(m, x, n, 1);
      std::vector<float> portable;
      {
        PortableOnlyWhile only;
        portable = run(m, x, n, 1);
      }
      ASSERT_EQ(std::memcmp(fast.data(), portable.data(), fast.size() * 4), 0)
          << type_info(t).name << " n=" << n << ": " << fast[0] << " vs " << portable[0];
    }
  }
}

}  // namespace
}  // namespace reel::ops
