// Tests of the ops layer: every kernel against a plain scalar (often double) implementation.
// reel_ops also builds Highway's AVX3_DL target; ask for it here too, so that
// SupportedAndGeneratedTargets() lists it.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "../emulation.h"
#include "common/error.h"
#include "gguf/types.h"
#include "hwy/targets.h"
#include "kquant_int8_bound.h"
#include "ops/kernels.h"
#include "ops/ops.h"
#include "ops/roofline.h"
#include "ops/thread_pool.h"

namespace reel::ops {
namespace {

// ---------------------------------------------------------------- thread pool

TEST(ThreadPool, RunsEveryTaskExactlyOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 5, 1000, 100003}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> bad_thread{0};
      pool.run(n, [&](int64_t t, int thread) {
        hits[static_cast<size_t>(t)].fetch_add(1);
        if (thread < 0 || thread >= threads) bad_thread.store(1);
      });
      for (int64_t t = 0; t < n; ++t) ASSERT_EQ(hits[static_cast<size_t>(t)].load(), 1) << threads << " " << n;
      EXPECT_EQ(bad_thread.load(), 0);
    }
  }
}

TEST(ThreadPool, ManyRunsAndSleepWake) {
  ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  for (int rep = 0; rep < 2000; ++rep) pool.run(7, [&](int64_t t, int) { sum.fetch_add(t); });
  EXPECT_EQ(sum.load(), 2000 * 21);
  // Let the workers fall asleep on the condition variable, then wake them.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  pool.run(100, [&](int64_t t, int) { sum.fetch_add(t); });
  EXPECT_EQ(sum.load(), 2000 * 21 + 4950);
}

// Two threads sharing one pool: the second caller is refused with an error instead of racing
// on the job the workers are running; the pool works normally afterwards.
TEST(ThreadPool, RefusesASecondConcurrentCaller) {
  ThreadPool pool(2);
  std::atomic<bool> started{false}, release{false};
  std::thread first([&] {
    pool.run(2, [&](int64_t, int) {
      started = true;
      while (!release) std::this_thread::yield();
    });
  });
  while (!started) std::this_thread::yield();
  EXPECT_THROW(pool.run(4, [](int64_t, int) {}), reel::Error);
  release = true;
  first.join();
  std::atomic<int> n{0};
  pool.run(10, [&](int64_t, int) { ++n; });
  EXPECT_EQ(n.load(), 10);
}

TEST(ThreadPool, PropagatesExceptions) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.run(100, [](int64_t t, int) {
    if (t == 57) throw Error("boom");
  }),
               Error);
  std::atomic<int> n{0};
  pool.run(10, [&](int64_t, int) { n.fetch_add(1); });  // still usable
  EXPECT_EQ(n.load(), 10);
}

// ---------------------------------------------------------------- matmul

std::mt19937& rng() {
  static std::mt19937 g(1234);
  return g;
}
float uniform(float a, float b) { return std::uniform_real_distribution<float>(a, b)(rng()); }

void put_f16(uint8_t* p, float v) {
  const uint16_t h = f32_to_fp16(v);
  std::memcpy(p, &h, 2);
}

// Offsets of the fp16 scale fields in one block of each quantized type.
std::vector<int> f16_fields(GgmlType t) {
  switch (t) {
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
    case GgmlType::Q5_0: return {0};
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: return {0, 2};
    case GgmlType::Q6_K: return {208};
    case GgmlType::Q2_K: return {80, 82};
    case GgmlType::Q3_K: return {108};
    default: return {};
  }
}

// Random bytes with finite, moderate scales: every bit pattern of the quant fields is valid.
std::vector<uint8_t> random_weights(GgmlType t, int64_t rows, int64_t cols) {
  const size_t rb = row_bytes(t, cols);
  std::vector<uint8_t> w(rb * static_cast<size_t>(rows));
  if (t == GgmlType::F32) {
    for (size_t i = 0; i < w.size(); i += 4) {
      const float v = uniform(-1, 1);
      std::memcpy(&w[i], &v, 4);
    }
    return w;
  }
  if (t == GgmlType::F16 || t == GgmlType::BF16) {
    for (size_t i = 0; i < w.size(); i += 2) {
      const float v = uniform(-1, 1);
      uint32_t u;
      std::memcpy(&u, &v, 4);
      const uint16_t h = t == GgmlType::F16 ? f32_to_fp16(v) : static_cast<uint16_t>(u >> 16);
      std::memcpy(&w[i], &h, 2);
    }
    return w;
  }
  for (auto& b : w) b = static_cast<uint8_t>(rng()());
  const TypeInfo info = type_info(t);
  const auto fields = f16_fields(t);
  for (size_t blk = 0; blk < w.size() / static_cast<size_t>(info.block_bytes); ++blk) {
    uint8_t* p = w.data() + blk * static_cast<size_t>(info.block_bytes);
    for (int f : fields) put_f16(p + f, uniform(-0.05f, 0.05f));
  }
  return w;
}

struct Case {
  GgmlType type;
  int64_t rows, cols;
};

// Reference quantities per output: sum |w||x| and the bound on the error introduced by rounding
// x to int16 per 32 values (kernels.h, kQMax = 16383): |x - d v| <= d/2 with
// d = max|x_block|/16383, so |y - y_ref| <= sum_blocks d_b/2 * sum_{j in b} |w_j|. The integer
// sums are exact (kQMax keeps every block sum inside int32), so this plus f32 rounding of the
// per-block products is the whole error.
// quant8 is the same for int8 activations per 256 values (max|x|/127; Q4_K and Q6_K prefill on
// AVX2 and up, kernels.h kquant_int8_prefill), times 1.0001 for the rounding of 127/max|x|.
struct Bounds {
  std::vector<double> abs_dot, quant, quant8;
};
Bounds bounds(const Matrix& m, const float* x, int64_t n) {
  Bounds b;
  std::vector<float> row(static_cast<size_t>(m.cols));
  b.abs_dot.resize(static_cast<size_t>(n * m.rows));
  b.quant.resize(b.abs_dot.size());
  b.quant8.resize(b.abs_dot.size());
  for (int64_t r = 0; r < m.rows; ++r) {
    dequantize_row_ref(m.type, m.data + r * m.row_stride, row.data(), m.cols);
    for (int64_t i = 0; i < n; ++i) {
      double ad = 0, q = 0;
      for (int64_t b0 = 0; b0 < m.cols; b0 += 32) {
        double amax = 0, wsum = 0;
        for (int64_t k = b0; k < std::min(m.cols, b0 + 32); ++k) {
          amax = std::max(amax, double{std::fabs(x[i * m.cols + k])});
          wsum += std::fabs(row[k]);
          ad += std::fabs(double{row[k]} * x[i * m.cols + k]);
        }
        q += amax / 16383.0 / 2.0 * wsum;
      }
      double q8 = 0;
      for (int64_t b0 = 0; b0 < m.cols; b0 += 256) {
        double amax = 0, wsum = 0;
        for (int64_t k = b0; k < std::min(m.cols, b0 + 256); ++k) {
          amax = std::max(amax, double{std::fabs(x[i * m.cols + k])});
          wsum += std::fabs(row[k]);
        }
        q8 += amax / 127.0 / 2.0 * 1.0001 * wsum;
      }
      b.abs_dot[i * m.rows + r] = ad;
      b.quant[i * m.rows + r] = q;
      b.quant8[i * m.rows + r] = q8;
    }
  }
  return b;
}

bool is_float_type(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16 || t == GgmlType::Q2_K ||
         t == GgmlType::Q3_K;  // Q2_K/Q3_K: dequantized rows, f32 dots
}

void check_matmul(const Case& c, int64_t n, int threads) {
  SCOPED_TRACE(std::string(type_info(c.type).name) + " rows=" + std::to_string(c.rows) +
               " cols=" + std::to_string(c.cols) + " n=" + std::to_string(n) +
               " threads=" + std::to_string(threads));
  const auto data = random_weights(c.type, c.rows, c.cols);
  const Matrix m{c.type, data.data(), c.rows, c.cols, row_bytes(c.type, c.cols)};
  std::vector<float> x(static_cast<size_t>(n * c.cols));
  for (auto& v : x) v = uniform(-2, 2);
  x[0] = 0.0f;  // an all-but-one-zero start does not matter; an all-zero block is tested below
  if (c.cols >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);
  std::vector<float> y(static_cast<size_t>(n * c.rows)), ref(y.size());
  Context ctx(threads);
  ctx.reserve(n, c.cols);
  matmul(m, x.data(), n, y.data(), ctx);
  matmul_ref(m, x.data(), n, ref.data());
  const Bounds b = bounds(m, x.data(), n);
  const double eps32 = std::ldexp(1.0, -24);
  const bool int8_prefill = n >= detail::kPanelMinRows && detail::kquant_int8_prefill(c.type);
  // Q4_K/Q6_K decode with int8 activations per 32 values (x86 AVX2): their rounding bound
  // instead of int16's, 129x larger (kquant_int8_bound.h derives it).
  const bool int8_gemv = n == 1 && detail::kquant_int8_gemv(c.type);
  std::vector<float> wrow(int8_gemv ? c.cols : 0);
  for (size_t i = 0; i < y.size(); ++i) {
    // f32 accumulation of `cols` products (any order, FMA): |err| <= cols * 2^-24 * sum|w||x|
    // (the standard recursive-summation bound), plus the output's own rounding.
    double tol = (static_cast<double>(c.cols) + 2) * eps32 * b.abs_dot[i];
    // int16 activations: the rounding bound above, plus f32 rounding of the per-block products.
    if (!is_float_type(c.type)) tol = b.quant[i] * 1.001 + 64 * eps32 * b.abs_dot[i];
    // Q4_K/Q6_K prefill with int8 activations: their rounding bound, plus the f32 summation bound
    // (its f32 steps are per super-block, not per 32-block).
    if (int8_prefill) tol = b.quant8[i] + (static_cast<double>(c.cols) + 2) * eps32 * b.abs_dot[i];
    if (int8_gemv) {
      const uint8_t* row = m.data + static_cast<int64_t>(i) * m.row_stride;  // n == 1: i = row
      dequantize_row_ref(m.type, row, wrow.data(), m.cols);
      // Q4_K where q8k_gemv: rounded per 256 values, not 32.
      const int64_t block = m.type == GgmlType::Q4_K && detail::q8k_gemv() ? 256 : 32;
      tol = test::kquant_int8_bound(m.type, row, wrow.data(), x.data(), m.cols, block);
    }
    ASSERT_NEAR(y[i], ref[i], tol + 1e-30) << "output " << i;
  }
}

class MatmulTypes : public ::testing::TestWithParam<GgmlType> {};

TEST_P(MatmulTypes, MatchesReference) {
  const GgmlType t = GetParam();
  const int be = type_info(t).block_elems;
  // Odd row counts (tails of the 16-row tasks and 4-row tiles); cols over several blocks, and
  // for float types a count that is no multiple of any vector width.
  std::vector<Case> cases = {{t, 37, be == 1 ? 75 : std::max(be, 32) * 3},
                             {t, 1, be == 1 ? 8 : be},
                             {t, 19, be == 1 ? 512 : (be == 256 ? 512 : 320)}};
  for (const auto& c : cases) {
    for (int64_t n : {1, 3, 17}) check_matmul(c, n, 2);
  }
  check_matmul(cases[0], 5, 1);
  check_matmul(cases[2], 6, 3);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MatmulTypes,
                         ::testing::Values(GgmlType::F32, GgmlType::F16, GgmlType::BF16,
                                           GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,
                                           GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q4_K,
                                           GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q2_K,
                                           GgmlType::Q3_K),
                         [](const auto& info) { return std::string(type_info(info.param).name); });

TEST(Matmul, ManyActivationRowsSpanSeveralChunks) {
  // 2048 cols => 256 int8 rows / 64 f32 rows per chunk; 300 rows cross chunk boundaries.
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::F16, GgmlType::Q4_K}) check_matmul({t, 5, 2048}, 300, 2);
}

// Decode (one activation row) has its own fused kernels per type, with a VNNI variant on
// AVX3_DL and a widening one elsewhere: run them on every target this CPU can execute, so the
// AVX2/SSE4 code is checked on an AVX-512 machine too. Odd row counts leave partial 16-row
// tasks; odd block counts leave the tails of the two-accumulator loops.
// Keeps the shared generator's state across a test, so adding tests here does not change the
// inputs that the tests after it draw (Attention.MatchesNaive is sensitive to them).
class RngRestore {
 public:
  RngRestore() : saved_(rng()) {}
  ~RngRestore() { rng() = saved_; }

 private:
  std::mt19937 saved_;
};

TEST(Matmul, GemvEveryTarget) {
  RngRestore keep_rng;
  const GgmlType types[] = {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
                            GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) {
    SCOPED_TRACE(hwy::TargetName(target));
    hwy::SetSupportedTargetsForTest(target);
    for (GgmlType t : types) {
      const int64_t be = type_info(t).block_elems;  // 32 or 256
      check_matmul({t, 37, be * (be == 32 ? 7 : 3)}, 1, 2);
      check_matmul({t, 3, be}, 1, 1);
      check_matmul({t, 19, be * 2}, 1, 3);
      check_matmul({t, 21, be * 2}, 2, 2);  // and the decode-to-L1 path, for comparison
      // The 32-element types go 16 blocks at a time on AVX3_DL: 37 blocks = 2 groups + tail.
      if (be == 32) check_matmul({t, 9, 32 * 37}, 1, 2);
    }
    // Q8_0 on AVX3_DL goes 16 blocks at a time, with the portable kernel for the rest: whole
    // groups only, groups plus a tail of 6 blocks, and one of 5 blocks (an odd count).
    check_matmul({GgmlType::Q8_0, 5, 512}, 1, 1);
    check_matmul({GgmlType::Q8_0, 23, 1216}, 1, 2);
    check_matmul({GgmlType::Q8_0, 7, 1184}, 1, 2);
  }
  hwy::SetSupportedTargetsForTest(0);
}

// Extreme quants against extreme activations: Q8_0 weights of -128 (the one int8 whose
// magnitude does not fit an int8) and +127, activations that quantize to +-kQMax, in an int32
// sum that must not saturate.
TEST(Matmul, GemvExtremeQ8_0) {
  const int64_t rows = 5, cols = 1216;  // 38 blocks: two groups of 16 and a tail
  const size_t rb = row_bytes(GgmlType::Q8_0, cols);
  std::vector<uint8_t> w(rb * rows);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / 32; ++b) {
      uint8_t* blk = w.data() + r * rb + b * 34;
      put_f16(blk, 0.01f);
      for (int j = 0; j < 32; ++j)
        blk[2 + j] = static_cast<uint8_t>((r + j) % 3 == 0 ? 0x80 : 0x7f);
    }
  }
  std::vector<float> x(cols);
  for (int64_t k = 0; k < cols; ++k) x[k] = (k % 5 == 0) ? -1.0f : 1.0f;
  const Matrix m{GgmlType::Q8_0, w.data(), rows, cols, rb};
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    SCOPED_TRACE(hwy::TargetName(target));
    hwy::SetSupportedTargetsForTest(target);
    std::vector<float> y(rows), ref(rows);
    Context ctx(1);
    ctx.reserve(1, cols);
    matmul(m, x.data(), 1, y.data(), ctx);
    matmul_ref(m, x.data(), 1, ref.data());
    for (int64_t r = 0; r < rows; ++r) EXPECT_NEAR(y[r], ref[r], 1e-3 * std::fabs(ref[r]) + 1e-4);
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Matmul, ThrowsWhenNotReserved) {
  const auto data = random_weights(GgmlType::Q8_0, 4, 64);
  const Matrix m{GgmlType::Q8_0, data.data(), 4, 64, row_bytes(GgmlType::Q8_0, 64)};
  std::vector<float> x(3 * 64, 1.0f), y(3 * 4);
  Context ctx(2);
  EXPECT_THROW(matmul(m, x.data(), 3, y.data(), ctx), Error);
  ctx.reserve(2, 64);
  EXPECT_THROW(matmul(m, x.data(), 3, y.data(), ctx), Error);
  ctx.reserve(3, 64);
  EXPECT_NO_THROW(matmul(m, x.data(), 3, y.data(), ctx));
}

TEST(GetRows, MatchesDequantize) {
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_K}) {
    const int64_t cols = 256;
    const auto data = random_weights(t, 10, cols);
    const Matrix m{t, data.data(), 10, cols, row_bytes(t, cols)};
    const int32_t ids[3] = {7, 0, 7};
    std::vector<float> out(3 * cols), ref(cols);
    get_rows(m, ids, 3, out.data());
    for (int i = 0; i < 3; ++i) {
      dequantize_row_ref(t, data.data() + ids[i] * m.row_stride, ref.data(), cols);
      for (int64_t k = 0; k < cols; ++k) ASSERT_EQ(out[i * cols + k], ref[k]);
    }
  }
}

// ---------------------------------------------------------------- element-wise ops

std::vector<float> randv(int64_t n, float a = -3, float b = 3) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = uniform(a, b);
  return v;
}

// Relative tolerance for single-op f32 results computed in a different order (or with a
// polynomial exp/tanh, accurate to a few ulp): 1e-5 relative, plus an absolute floor.
void expect_close(const std::vector<float>& a, const std::vector<double>& b, double rel = 1e-5,
                  double abs = 1e-6) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], rel * std::fabs(b[i]) + abs) << i;
}

TEST(Ops, RmsNorm) {
  for (int64_t dim : {1, 7, 128, 2051}) {
    const int64_t rows = 3;
    auto x = randv(rows * dim), w = randv(dim);
    std::vector<double> ref(x.size()), ref_nw(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t k = 0; k < dim; ++k) ss += double{x[r * dim + k]} * x[r * dim + k];
      const double inv = 1.0 / std::sqrt(ss / dim + 1e-6);
      for (int64_t k = 0; k < dim; ++k) {
        ref[r * dim + k] = x[r * dim + k] * inv * w[k];
        ref_nw[r * dim + k] = x[r * dim + k] * inv;
      }
    }
    std::vector<float> y(x.size());
    rms_norm(x.data(), w.data(), y.data(), rows, dim, 1e-6f);
    expect_close(y, ref);
    rms_norm(x.data(), nullptr, x.data(), rows, dim, 1e-6f);  // in place
    expect_close(x, ref_nw);
  }
}

TEST(Ops, LayerNorm) {
  const int64_t rows = 4, dim = 1027;
  auto x = randv(rows * dim, 5, 7), w = randv(dim), bias = randv(dim);  // mean far from 0
  std::vector<double> ref(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0, v = 0;
    for (int64_t k = 0; k < dim; ++k) m += x[r * dim + k];
    m /= dim;
    for (int64_t k = 0; k < dim; ++k) v += (x[r * dim + k] - m) * (x[r * dim + k] - m);
    const double inv = 1.0 / std::sqrt(v / dim + 1e-5);
    for (int64_t k = 0; k < dim; ++k) ref[r * dim + k] = (x[r * dim + k] - m) * inv * w[k] + bias[k];
  }
  std::vector<float> y(x.size());
  layer_norm(x.data(), w.data(), bias.data(), y.data(), rows, dim, 1e-5f);
  expect_close(y, ref, 1e-4, 1e-4);  // f32 sums over 1027 values of ~6: ~1e-5 relative drift
}

TEST(Ops, Rope) {
  const int64_t tokens = 3, heads = 2, hd = 8, stride = 20, half = hd / 2;
  auto x = randv(tokens * stride), c = randv(tokens * half, -1, 1), s = randv(tokens * half, -1, 1);
  std::vector<double> ref(x.begin(), x.end());
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t d = 0; d < half; ++d) {
        const size_t i = t * stride + h * hd + d;
        ref[i] = double{x[i]} * c[t * half + d] - double{x[i + half]} * s[t * half + d];
        ref[i + half] = double{x[i + half]} * c[t * half + d] + double{x[i]} * s[t * half + d];
      }
  rope(x.data(), tokens, heads, hd, stride, c.data(), s.data());
  expect_close(x, ref);  // untouched padding lanes compare equal too
}

TEST(Ops, Activations) {
  const int64_t n = 1003;
  auto g = randv(n, -10, 10), u = randv(n);
  std::vector<double> silu(n), gt(n), ge(n);
  for (int64_t i = 0; i < n; ++i) {
    const double v = g[i];
    silu[i] = v / (1 + std::exp(-v)) * u[i];
    gt[i] = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    ge[i] = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
  }
  auto a = g;
  silu_mul(a.data(), u.data(), n);
  expect_close(a, silu, 1e-5, 1e-6);
  a = g;
  gelu_tanh(a.data(), n);
  expect_close(a, gt, 1e-5, 1e-6);
  a = g;
  gelu_erf(a.data(), n);
  expect_close(a, ge, 1e-5, 1e-6);
}

TEST(Ops, AddAndBias) {
  const int64_t rows = 3, dim = 37;
  auto y = randv(rows * dim), x = randv(rows * dim), b = randv(dim);
  std::vector<double> ref(y.size());
  for (size_t i = 0; i < y.size(); ++i) ref[i] = double{y[i]} + x[i] + b[i % dim];
  add(y.data(), x.data(), rows * dim);
  add_bias(y.data(), b.data(), rows, dim);
  expect_close(y, ref);
}

// The Context overloads split rows / tokens / elements across threads; each chunk must be the
// one-thread function on its own slice, so the results are equal bit for bit. Sizes: above the
// 16384-element split threshold, not multiples of the chunk step (a ragged last chunk), and a
// small call that runs inline.
TEST(Ops, ThreadedElementwiseEqualsOneThread) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  auto random = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = u(rng);
    return v;
  };
  Context ctx(3);
  for (const int64_t rows : {int64_t{5}, int64_t{301}}) {
    const int64_t dim = 200, n = rows * dim;
    const auto x = random(n), w = random(dim), b = random(dim), up = random(n);
    std::vector<float> one(static_cast<size_t>(n)), many(static_cast<size_t>(n));
    rms_norm(x.data(), w.data(), one.data(), rows, dim, 1e-6f);
    rms_norm(x.data(), w.data(), many.data(), rows, dim, 1e-6f, ctx);
    EXPECT_EQ(one, many) << "rms_norm rows " << rows;
    layer_norm(x.data(), w.data(), b.data(), one.data(), rows, dim, 1e-6f);
    layer_norm(x.data(), w.data(), b.data(), many.data(), rows, dim, 1e-6f, ctx);
    EXPECT_EQ(one, many) << "layer_norm rows " << rows;
    // rope: 4 heads of 50 per token, a token stride wider than the heads, per-token angles.
    const auto cos = random(rows * 25), sin = random(rows * 25);
    one = x;
    many = x;
    rope(one.data(), rows, 4, 50, dim, cos.data(), sin.data());
    rope(many.data(), rows, 4, 50, dim, cos.data(), sin.data(), ctx);
    EXPECT_EQ(one, many) << "rope rows " << rows;
    using Fn1 = void (*)(float*, int64_t);
    using FnCtx = void (*)(float*, int64_t, Context&);
    for (const auto& [f1, fc] : {std::pair<Fn1, FnCtx>{gelu_tanh, gelu_tanh}, {gelu_erf, gelu_erf}}) {
      one = x;
      many = x;
      f1(one.data(), n);
      fc(many.data(), n, ctx);
      EXPECT_EQ(one, many) << "gelu rows " << rows;
    }
    one = x;
    many = x;
    silu_mul(one.data(), up.data(), n);
    silu_mul(many.data(), up.data(), n, ctx);
    EXPECT_EQ(one, many) << "silu_mul rows " << rows;
    one = x;
    many = x;
    add(one.data(), up.data(), n);
    add(many.data(), up.data(), n, ctx);
    EXPECT_EQ(one, many) << "add rows " << rows;
    one = x;
    many = x;
    add_bias(one.data(), b.data(), rows, dim);
    add_bias(many.data(), b.data(), rows, dim, ctx);
    EXPECT_EQ(one, many) << "add_bias rows " << rows;
  }
}

TEST(Ops, Softmax) {
  for (int64_t n : {1, 5, 100, 1001}) {
    auto x = randv(n, -50, 50);
    x[0] = 1000.0f;  // would overflow exp without the max shift
    std::vector<double> ref(x.size());
    double m = -INFINITY, s = 0;
    for (float v : x) m = std::max(m, double{v});
    for (int64_t i = 0; i < n; ++i) s += ref[i] = std::exp(x[i] - m);
    for (auto& r : ref) r /= s;
    softmax(x.data(), n);
    expect_close(x, ref, 1e-5, 1e-7);
  }
}

// ---------------------------------------------------------------- attention

void naive_attention(const AttentionShape& s, const float* q, const float* k, const float* v,
                     std::vector<double>& out, double& max_abs_score) {
  max_abs_score = 0;
  const int64_t group = s.n_head / s.n_kv_head;
  out.assign(static_cast<size_t>(s.n_q * s.out_stride), 0.0);
  for (int64_t i = 0; i < s.n_q; ++i)
    for (int64_t h = 0; h < s.n_head; ++h) {
      const float* qh = q + i * s.q_stride + h * s.head_dim;
      const float* kh = k + (h / group) * s.kv_head_stride;
      const float* vh = v + (h / group) * s.kv_head_stride;
      const int64_t end = s.causal ? std::min(s.n_kv, s.q_pos0 + i + 1) : s.n_kv;
      std::vector<double> sc(static_cast<size_t>(end));
      double m = -INFINITY, sum = 0;
      for (int64_t j = 0; j < end; ++j) {
        double d = 0;
        for (int64_t c = 0; c < s.head_dim; ++c) d += double{qh[c]} * kh[j * s.head_dim + c];
        sc[j] = d * s.scale;
        m = std::max(m, sc[j]);
        max_abs_score = std::max(max_abs_score, std::abs(sc[j]));
      }
      for (auto& e : sc) sum += e = std::exp(e - m);
      for (int64_t j = 0; j < end; ++j)
        for (int64_t c = 0; c < s.head_dim; ++c)
          out[i * s.out_stride + h * s.head_dim + c] += sc[j] / sum * vh[j * s.head_dim + c];
    }
}

void check_attention(AttentionShape s, int threads) {
  SCOPED_TRACE("n_q=" + std::to_string(s.n_q) + " n_kv=" + std::to_string(s.n_kv) +
               " heads=" + std::to_string(s.n_head) + "/" + std::to_string(s.n_kv_head) +
               " causal=" + std::to_string(s.causal) + " pos0=" + std::to_string(s.q_pos0));
  s.q_stride = s.n_head * s.head_dim + 3;  // padded strides catch stride mix-ups
  s.out_stride = s.n_head * s.head_dim + 5;
  s.kv_head_stride = s.n_kv * s.head_dim + 7;
  auto q = randv(s.n_q * s.q_stride), k = randv(s.n_kv_head * s.kv_head_stride),
       v = randv(s.n_kv_head * s.kv_head_stride);
  std::vector<float> out(static_cast<size_t>(s.n_q * s.out_stride), 0.0f);
  Context ctx(threads);
  attention(s, q.data(), k.data(), v.data(), out.data(), ctx);
  std::vector<double> ref;
  double max_score = 0;
  naive_attention(s, q.data(), k.data(), v.data(), ref, max_score);
  // Outputs are convex combinations of v in [-3, 3]. Each f32 score carries a rounding error
  // of about head_dim ulps of its magnitude, and the softmax weights move by that much
  // relatively: ~1e-5 for ordinary scores, but ~1e-3 when scores reach thousands (scale 40).
  const double tol = 3 * (2e-5 + 8 * max_score * 0x1p-23 * std::sqrt(double(s.head_dim)));
  for (int64_t i = 0; i < s.n_q; ++i)
    for (int64_t c = 0; c < s.n_head * s.head_dim; ++c) {
      const size_t at = i * s.out_stride + c;
      ASSERT_NEAR(out[at], ref[at], tol) << "query " << i << " lane " << c;
    }
}

TEST(Attention, MatchesNaive) {
  AttentionShape s;
  s.head_dim = 64;
  s.scale = 0.125f;
  // Decode with GQA, long enough for several key blocks of the online softmax.
  s.n_q = 1, s.n_kv = 300, s.n_head = 4, s.n_kv_head = 2, s.q_pos0 = 299, s.causal = true;
  check_attention(s, 2);
  // Causal prefill continuing a cache (q_pos0 > 0), several query blocks, odd sizes.
  s.n_q = 37, s.n_kv = 37 + 150, s.q_pos0 = 150, s.n_head = 6, s.n_kv_head = 2;
  check_attention(s, 3);
  // Causal from position 0, MHA.
  s.n_q = 20, s.n_kv = 20, s.q_pos0 = 0, s.n_head = 2, s.n_kv_head = 2, s.head_dim = 5;
  check_attention(s, 1);
  // Non-causal (vision): every query sees all keys.
  s.causal = false, s.n_q = 33, s.n_kv = 33, s.n_head = 3, s.n_kv_head = 3, s.head_dim = 16;
  check_attention(s, 2);
  // Large scores: the running max must keep exp in range.
  s.scale = 40.0f;
  check_attention(s, 2);
  // Non-causal with many queries and keys: the blocked matmul path (uneven query blocks, keys
  // not a multiple of the kernel's k-block), MHA and GQA, ordinary and large scores.
  s.n_q = 300, s.n_kv = 300, s.n_head = 4, s.n_kv_head = 4, s.head_dim = 64, s.scale = 0.125f;
  check_attention(s, 3);
  s.n_kv_head = 2;
  check_attention(s, 2);
  s.n_q = 70, s.n_kv = 529, s.head_dim = 80, s.scale = 40.0f;
  check_attention(s, 1);
}

TEST(Roofline, ProbesReturnPositiveNumbers) {
  ThreadPool pool(2);
  // Any real machine does far more than 0.1 GB/s and 0.1 GFLOP/s; an emulator runs the FMA probe
  // test::slowdown() times slower (qemu's cortex-a72 model: 0.056 GFLOP/s on this machine).
  const double least = 0.1 / test::slowdown();
  EXPECT_GT(measure_read_bandwidth_gbs(pool, size_t{16} << 20), least);
  EXPECT_GT(measure_fma_gflops(pool), least);
}

}  // namespace
}  // namespace reel::ops
