// Matmul kernels beyond ops_test.cpp: the int16 activation quantization (its error bound and
// the int32 overflow bound it is sized for) and the packed-panel f32 kernel for many activation
// rows, each on every Highway target this CPU can run.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "hwy/targets.h"
#include "kquant_int8_bound.h"
#include "ops/kernels.h"
#include "ops/ops.h"

namespace reel::ops {
namespace {

// Own generator: the tests in ops_test.cpp draw from theirs in a fixed order.
std::mt19937& gen() {
  static std::mt19937 g(99);
  return g;
}
float uni(float a, float b) {
  return std::uniform_real_distribution<float>(a, b)(gen());
}

void put_f16(uint8_t* p, float v) {
  const uint16_t h = f32_to_fp16(v);
  std::memcpy(p, &h, 2);
}

// Runs `body` once per target compiled in and supported here, then restores the default.
template <class F>
void for_each_target(F body) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    SCOPED_TRACE(hwy::TargetName(target));
    hwy::SetSupportedTargetsForTest(target);
    body();
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Quantize, Int16WithinHalfAStepAndSplitsIntoPlanes) {
  const int64_t cols = 256, n = 3;
  std::vector<float> x(n * cols);
  for (auto& v : x) v = uni(-3, 3);
  std::fill(x.begin() + 32, x.begin() + 64, 0.0f);  // an all-zero block: d = 0, v = 0
  x[70] = 1e6f;                                     // one block dominated by a single value
  x[100] = -1e-30f;                                 // tiny values survive as 0
  for_each_target([&] {
    const int64_t nb = n * cols / detail::kQBlock;
    std::vector<int16_t> v(n * cols);
    std::vector<int8_t> hi(n * cols);
    std::vector<uint8_t> lo(n * cols);
    std::vector<float> d(nb), s(nb);
    detail::quantize_rows(x.data(), n, cols, v.data(), hi.data(), lo.data(), d.data(), s.data());
    for (int64_t b = 0; b < nb; ++b) {
      float amax = 0;
      int64_t vsum = 0;
      for (int64_t j = b * 32; j < b * 32 + 32; ++j) amax = std::max(amax, std::fabs(x[j]));
      ASSERT_NEAR(d[b], amax / detail::kQMax, 1e-6 * d[b]) << "block " << b;
      for (int64_t j = b * 32; j < b * 32 + 32; ++j) {
        ASSERT_LE(std::abs(v[j]), detail::kQMax);
        if constexpr (detail::kArmSdotPlanes) {
          // aarch64: value j sits at byte 4*(j%4) + (j%16)/4 of its 16 (the 4x4 transpose),
          // its low byte signed, hi the rest (kernels.h).
          const int64_t g = j - j % 16, pos = g + 4 * (j % 4) + (j % 16) / 4;
          const int l = static_cast<int8_t>(lo[pos]);
          ASSERT_EQ(v[j], 256 * hi[pos] + l) << j;
          ASSERT_GE(l, -128);
          ASSERT_LE(l, 127);
          ASSERT_EQ(l, static_cast<int8_t>(static_cast<uint8_t>(v[j] & 255))) << j;
        } else {
          ASSERT_EQ(v[j], 256 * hi[j] + lo[j]) << j;
          ASSERT_EQ(hi[j], v[j] >> 8) << j;  // floor: lo = v - 256*hi is the unsigned low byte
        }
        // Half a step, plus the f32 rounding of x * (1/d).
        ASSERT_LE(std::fabs(x[j] - d[b] * v[j]), d[b] * (0.5 + 1e-3)) << j;
        vsum += v[j];
      }
      ASSERT_NEAR(s[b], d[b] * static_cast<float>(vsum), 1e-6 * d[b] * 32 * detail::kQMax);
    }
  });
}

// The largest int32 block sum any kernel forms: Q6_K prefill folds the scale into the int16
// weight, |sc * (q - 32)| = 128 * 32 = 4096, and every activation at +-kQMax makes
// 32 * 4096 * 16383 = 2^31 - 131072. One more step of kQMax would wrap. Decode (n = 1) and
// prefill (n = 5), every target; all 256 lanes equal so the reference is exact.
TEST(Quantize, Q6KLargestBlockSumDoesNotOverflow) {
  const int64_t rows = 3, cols = 512;
  const size_t rb = row_bytes(GgmlType::Q6_K, cols);
  std::vector<uint8_t> w(rb * rows, 0);  // ql = qh = 0: q - 32 = -32
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t sb = 0; sb < cols / 256; ++sb) {
      uint8_t* blk = w.data() + r * rb + sb * 210;
      std::memset(blk + 192, 0x80, 16);  // scales -128
      put_f16(blk + 208, 0.001f * static_cast<float>(r + 1));
    }
  }
  const Matrix m{GgmlType::Q6_K, w.data(), rows, cols, rb};
  for (float sign : {1.0f, -1.0f}) {
    const int64_t n = 5;
    std::vector<float> x(n * cols, 2.5f * sign);
    std::vector<float> ref(n * rows);
    matmul_ref(m, x.data(), n, ref.data());
    for_each_target([&] {
      for (int64_t nx : {int64_t{1}, n}) {
        std::vector<float> y(nx * rows);
        Context ctx(2);
        ctx.reserve(nx, cols);
        matmul(m, x.data(), nx, y.data(), ctx);
        for (int64_t i = 0; i < nx * rows; ++i) {
          ASSERT_NEAR(y[i], ref[i], 1e-5 * std::fabs(ref[i])) << "nx " << nx << " out " << i;
        }
      }
    });
  }
}

// Q8_0 with |w| = 128 against activations at +-kQMax, prefill and decode: the largest int32
// sums any Q8_0 kernel forms (int16 pairs on AVX3_DL, widened products elsewhere); everything
// must stay exact.
TEST(Quantize, Q8_0ExtremesEveryTarget) {
  const int64_t rows = 5, cols = 32 * 37;  // two groups of 16 blocks and a tail
  const size_t rb = row_bytes(GgmlType::Q8_0, cols);
  std::vector<uint8_t> w(rb * rows);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / 32; ++b) {
      uint8_t* blk = w.data() + r * rb + b * 34;
      put_f16(blk, 0.01f);
      for (int j = 0; j < 32; ++j) blk[2 + j] = (r + j) % 3 == 0 ? 0x80 : 0x7f;
    }
  }
  const Matrix m{GgmlType::Q8_0, w.data(), rows, cols, rb};
  const int64_t n = 6;
  std::vector<float> x(n * cols);
  for (int64_t k = 0; k < n * cols; ++k) x[k] = (k % 5 == 0) ? -1.0f : 1.0f;
  std::vector<float> ref(n * rows);
  matmul_ref(m, x.data(), n, ref.data());
  for_each_target([&] {
    for (int64_t nx : {int64_t{1}, n}) {
      std::vector<float> y(nx * rows);
      Context ctx(1);
      ctx.reserve(nx, cols);
      matmul(m, x.data(), nx, y.data(), ctx);
      for (int64_t i = 0; i < nx * rows; ++i) {
        ASSERT_NEAR(y[i], ref[i], 1e-5 * std::fabs(ref[i]) + 1e-5) << "nx " << nx << " out " << i;
      }
    }
  });
}

// Float weights with >= 16 activation rows go through the packed panels: rows that leave a
// partial panel (and a partial 64-row task), cols that leave a partial k-block and are no
// multiple of any vector width, row counts that leave every remainder of the 6-row tile.
std::vector<uint8_t> float_weights(GgmlType t, int64_t rows, int64_t cols) {
  std::vector<uint8_t> w(row_bytes(t, cols) * rows);
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float v = uni(-1, 1);
    if (t == GgmlType::F32) {
      std::memcpy(&w[4 * i], &v, 4);
    } else if (t == GgmlType::F16) {
      put_f16(&w[2 * i], v);
    } else {
      uint32_t u;
      std::memcpy(&u, &v, 4);
      const uint16_t h = static_cast<uint16_t>(u >> 16);
      std::memcpy(&w[2 * i], &h, 2);
    }
  }
  return w;
}

TEST(MatmulFloat, PanelsMatchReferenceEveryTarget) {
  struct Shape {
    int64_t rows, cols, n;
    int threads;
  };
  const Shape shapes[] = {
      {70, 300, 16, 2}, {64, 128, 23, 1}, {5, 7, 17, 2}, {130, 257, 40, 3}, {17, 1000, 21, 2}};
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16}) {
    for (const Shape& s : shapes) {
      SCOPED_TRACE(std::string(type_info(t).name) + " rows=" + std::to_string(s.rows) +
                   " cols=" + std::to_string(s.cols) + " n=" + std::to_string(s.n));
      const auto w = float_weights(t, s.rows, s.cols);
      const Matrix m{t, w.data(), s.rows, s.cols, row_bytes(t, s.cols)};
      std::vector<float> x(s.n * s.cols);
      for (auto& v : x) v = uni(-2, 2);
      std::vector<float> ref(s.n * s.rows), wrow(s.cols);
      matmul_ref(m, x.data(), s.n, ref.data());
      // Per output the f32 bound of any summation order: (cols + 2) * 2^-24 * sum |w||x|.
      std::vector<double> tol(ref.size());
      for (int64_t r = 0; r < s.rows; ++r) {
        dequantize_row_ref(t, w.data() + r * m.row_stride, wrow.data(), s.cols);
        for (int64_t i = 0; i < s.n; ++i) {
          double a = 0;
          for (int64_t k = 0; k < s.cols; ++k) a += std::fabs(double{wrow[k]} * x[i * s.cols + k]);
          tol[i * s.rows + r] = (s.cols + 2) * std::ldexp(1.0, -24) * a + 1e-30;
        }
      }
      for_each_target([&] {
        std::vector<float> y(ref.size(), 12345.0f);
        Context ctx(s.threads);
        ctx.reserve(s.n, s.cols);
        matmul(m, x.data(), s.n, y.data(), ctx);
        for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], ref[i], tol[i]) << "output " << i;
      });
    }
  }
}

// Quantized weights with >= 16 activation rows are decoded to f32 panels (no activation
// rounding): the f32 summation bound, plus the f32 rounding of decoding w = d*q + m in another
// order than the reference (a few ulps of the row's largest |w| per product).
TEST(MatmulFloat, QuantizedPanelsMatchReferenceEveryTarget) {
  const GgmlType types[] = {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
                            GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                            GgmlType::Q2_K, GgmlType::Q3_K};
  for (GgmlType t : types) {
    const TypeInfo info = type_info(t);
    const int64_t rows = 67, cols = info.block_elems * (info.block_elems == 256 ? 3 : 13), n = 20;
    SCOPED_TRACE(info.name);
    std::vector<uint8_t> w(row_bytes(t, cols) * rows);
    for (auto& b : w) b = static_cast<uint8_t>(gen()());
    for (size_t blk = 0; blk < w.size() / static_cast<size_t>(info.block_bytes); ++blk) {
      uint8_t* p = w.data() + blk * static_cast<size_t>(info.block_bytes);
      switch (t) {
        case GgmlType::Q6_K:
          put_f16(p + 208, uni(-0.05f, 0.05f));
          break;
        case GgmlType::Q2_K:
          put_f16(p + 80, uni(-0.05f, 0.05f));
          put_f16(p + 82, uni(-0.05f, 0.05f));
          break;
        case GgmlType::Q3_K:
          put_f16(p + 108, uni(-0.05f, 0.05f));
          break;
        case GgmlType::Q4_1:
        case GgmlType::Q5_1:
        case GgmlType::Q4_K:
        case GgmlType::Q5_K:
          put_f16(p + 2, uni(-0.05f, 0.05f));
          [[fallthrough]];
        default:
          put_f16(p, uni(-0.05f, 0.05f));
          break;
      }
    }
    const Matrix m{t, w.data(), rows, cols, row_bytes(t, cols)};
    std::vector<float> x(n * cols), ref(n * rows), wrow(cols);
    for (auto& v : x) v = uni(-2, 2);
    matmul_ref(m, x.data(), n, ref.data());
    std::vector<double> tol(ref.size());
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row_ref(t, w.data() + r * m.row_stride, wrow.data(), cols);
      double wmax = 0;
      for (float v : wrow) wmax = std::max(wmax, double{std::fabs(v)});
      for (int64_t i = 0; i < n; ++i) {
        double a = 0, ax = 0;
        for (int64_t k = 0; k < cols; ++k) {
          a += std::fabs(double{wrow[k]} * x[i * cols + k]);
          ax += std::fabs(x[i * cols + k]);
        }
        tol[i * rows + r] = std::ldexp(1.0, -24) * ((cols + 2) * a + 8 * wmax * ax) + 1e-30;
      }
    }
    for_each_target([&] {
      // Q4_K and Q6_K with int8 activations have their own bound (MatmulKQuant.Int8Prefill...
      // below), Q8_0 on int16 panels its own test (Matmul.Q8_0PrefillEqualsTheFewRowKernels...).
      if (detail::kquant_int8_prefill(t)) return;
      if (t == GgmlType::Q8_0 && detail::q8_0_int16_prefill()) return;
      std::vector<float> y(ref.size());
      Context ctx(2);
      ctx.reserve(n, cols);
      matmul(m, x.data(), n, y.data(), ctx);
      for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], ref[i], tol[i]) << "output " << i;
    });
  }
}

std::vector<uint8_t> kquant_weights(GgmlType t, int64_t rows, int64_t cols);  // below

// Q4_K and Q6_K weights with >= 16 activation rows on AVX2 and up: activations rounded to int8
// per 256 values (dx = max|x|/127 over the 256), weights exact in integers. Per output the error
// is bounded by the activation rounding, half a step per value: sum over super-blocks of
// dx/2 * sum |w| there (times 1.0001 for the rounding of 127/max|x| inside round(x*127/max)),
// plus the f32 bound of the panel test above for the float steps (scale products, conversions,
// summation; Q6_K's super-block sum can exceed 2^24 before its one conversion, a relative
// 2^-24 that this term covers). Shapes cover tails of the register tile (odd weight rows per
// task, activation rows not a multiple of 8), more activation rows than one quantized chunk
// (300 > 256), a super-block of zeros, super-blocks of one value repeated (Q6_K's per-16 sums at
// +-16*127) and super-blocks of very different magnitudes (per-256 scales); the weights include
// rows of extremes (kquant_weights: Q6_K scales -128/127 with q = 63).
// Where the int8 path is not compiled (other targets), the f32 panels meet the same bound.
TEST(MatmulKQuant, Int8PrefillWithinActivationRoundingEveryTarget) {
  struct Shape {
    int64_t rows, cols, n;
    int threads;
  };
  const Shape shapes[] = {
      {67, 768, 16, 2}, {64, 256, 23, 1}, {5, 512, 18, 2}, {131, 1024, 300, 2}, {3, 2304, 17, 1}};
  for (const GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K}) {
    SCOPED_TRACE(type_info(t).name);
    bool int8_seen = false;
    for (const Shape& s : shapes) {
      SCOPED_TRACE("rows=" + std::to_string(s.rows) + " cols=" + std::to_string(s.cols) +
                   " n=" + std::to_string(s.n));
      const std::vector<uint8_t> w = kquant_weights(t, s.rows, s.cols);
      const Matrix m{t, w.data(), s.rows, s.cols, row_bytes(t, s.cols)};
      const int64_t nsb = s.cols / 256;
      std::vector<float> x(s.n * s.cols);
      for (int64_t i = 0; i < s.n; ++i) {
        for (int64_t sb = 0; sb < nsb; ++sb) {
          const float mag =
              (i + sb) % 5 == 0 ? 0.0f : std::ldexp(1.0f, static_cast<int>(i % 7) - 3);
          const bool repeated = (i + sb) % 5 == 1;
          const float v = (i & 1) ? -mag : mag;
          for (int64_t k = 0; k < 256; ++k)
            x[i * s.cols + sb * 256 + k] = repeated ? v : mag * uni(-2, 2);
        }
      }
      std::vector<float> ref(s.n * s.rows), wrow(s.cols);
      matmul_ref(m, x.data(), s.n, ref.data());
      std::vector<double> tol(ref.size());
      for (int64_t r = 0; r < s.rows; ++r) {
        dequantize_row_ref(t, w.data() + r * m.row_stride, wrow.data(), s.cols);
        double wmax = 0;
        for (float v : wrow) wmax = std::max(wmax, double{std::fabs(v)});
        for (int64_t i = 0; i < s.n; ++i) {
          const float* xi = x.data() + i * s.cols;
          double a = 0, ax = 0, rounding = 0;
          for (int64_t sb = 0; sb < nsb; ++sb) {
            double amax = 0, wsum = 0;
            for (int64_t k = sb * 256; k < (sb + 1) * 256; ++k) {
              amax = std::max(amax, double{std::fabs(xi[k])});
              wsum += std::fabs(wrow[k]);
              a += std::fabs(double{wrow[k]} * xi[k]);
              ax += std::fabs(xi[k]);
            }
            rounding += amax / 127.0 / 2.0 * 1.0001 * wsum;
          }
          // The f32 terms on |x| + dx/2 per value: a and ax grow by at most the rounding.
          tol[i * s.rows + r] =
              rounding + std::ldexp(1.0, -24) * ((s.cols + 2) * (a + rounding) + 8 * wmax * ax) +
              1e-30;
        }
      }
      for_each_target([&] {
        int8_seen = int8_seen || detail::kquant_int8_prefill(t);
        std::vector<float> y(ref.size(), 12345.0f);
        Context ctx(s.threads);
        ctx.reserve(s.n, s.cols);
        matmul(m, x.data(), s.n, y.data(), ctx);
        double worst = 0;  // the largest error as a fraction of its bound
        for (size_t i = 0; i < y.size(); ++i) {
          ASSERT_NEAR(y[i], ref[i], tol[i]) << "output " << i;
          worst = std::max(worst, std::fabs(y[i] - ref[i]) / tol[i]);
        }
        RecordProperty("worst_error_over_bound", std::to_string(worst));
      });
    }
#if defined(__x86_64__)
    // Every x86-64 CPU this suite runs on has AVX2 (the project's baseline machine); the int8
    // path must then have been checked above, not only the f32 fallback.
    if (hwy::SupportedTargets() & HWY_AVX2) {
      EXPECT_TRUE(int8_seen);
    }
#endif
  }
}

// Q4_K and Q6_K decode (one activation row) on x86 AVX2: activations rounded to int8 per 32
// values (kernels.h kquant_int8_gemv), weights exact in integers, against the double reference
// of the dequantized weights times the float activations, within kquant_int8_bound (its
// derivation is there: the activation rounding, d8/2 per value times sum |w| per 32-block,
// plus the f32 steps). Shapes: weight rows that leave partial 16-row tasks (67, 131, 5) and a
// single row, 1 to 9 super-blocks. Activations: per super-block magnitudes 2^-3..2^3, a
// super-block of zeros, and blocks of +-max (q8 = +-127 everywhere). Weights: random, plus rows
// of extremes: Q4_K scales and mins 63 with nibbles 15 (or 0) and a large dmin, Q6_K scales
// -128/127 with q = 63 (or 0), the largest products the int16 pair sums of vpmaddubsw take.
// The switch off sends the same calls to the int16 kernels (one process, both paths).
std::vector<uint8_t> kquant_weights(GgmlType t, int64_t rows, int64_t cols) {
  const int64_t bb = t == GgmlType::Q4_K ? 144 : 210;
  std::vector<uint8_t> w(row_bytes(t, cols) * rows);
  for (auto& b : w) b = static_cast<uint8_t>(gen()());
  for (int64_t blk = 0; blk < static_cast<int64_t>(w.size()) / bb; ++blk) {
    uint8_t* p = w.data() + blk * bb;
    const int64_t r = blk / (cols / 256);
    const bool extreme = r % 4 == 1, ones = (blk & 1) != 0;
    if (t == GgmlType::Q4_K) {
      put_f16(p, uni(-0.05f, 0.05f));
      put_f16(p + 2, extreme ? 0.5f : uni(-0.05f, 0.05f));
      if (extreme) {
        std::memset(p + 4, 0xff, 12);                  // every scale and minimum 63
        std::memset(p + 16, ones ? 0xff : 0x00, 128);  // nibbles 15 or 0
      }
    } else {
      put_f16(p + 208, uni(-0.05f, 0.05f));
      if (extreme) {
        for (int g = 0; g < 16; ++g) p[192 + g] = (g & 1) ? 0x7f : 0x80;  // 127, -128
        std::memset(p, ones ? 0xff : 0x00, 192);                          // q = 63 or 0
      }
    }
  }
  return w;
}

std::vector<float> kquant_activations(int64_t cols, int seed) {
  std::vector<float> x(cols);
  for (int64_t sb = 0; sb < cols / 256; ++sb) {
    const int e = static_cast<int>((sb + seed) % 7) - 3;  // 2^-3 .. 2^3
    const float mag = (sb + seed) % 5 == 4 ? 0.0f : std::ldexp(1.0f, e);
    for (int64_t k = 0; k < 256; ++k) {
      const bool extreme = (sb + seed) % 3 == 2 && k < 64;  // two blocks of +-mag
      x[sb * 256 + k] = extreme ? ((k % 3 == 0) ? -mag : mag) : mag * uni(-1, 1);
    }
  }
  return x;
}

TEST(MatmulKQuant, Int8GemvWithinActivationRoundingEveryTarget) {
  struct Shape {
    int64_t rows, cols;
    int threads;
  };
  const Shape shapes[] = {{67, 768, 2}, {5, 256, 1}, {131, 2304, 2}, {1, 1024, 1}, {16, 512, 3}};
  bool int8_seen = false, q8k_seen = false;
  double worst = 0;  // the largest int8 error as a fraction of its bound, for the log
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K}) {
    for (const Shape& s : shapes) {
      SCOPED_TRACE(std::string(type_info(t).name) + " rows=" + std::to_string(s.rows) +
                   " cols=" + std::to_string(s.cols));
      const auto w = kquant_weights(t, s.rows, s.cols);
      const Matrix m{t, w.data(), s.rows, s.cols, row_bytes(t, s.cols)};
      for (int seed = 0; seed < 3; ++seed) {
        const auto x = kquant_activations(s.cols, seed);
        std::vector<float> ref(s.rows), wrow(s.cols);
        // Bounds for activations rounded per 32 values, and per 256 (Q4_K where q8k_gemv).
        std::vector<double> tol32(s.rows), tol256(s.rows);
        matmul_ref(m, x.data(), 1, ref.data());
        for (int64_t r = 0; r < s.rows; ++r) {
          dequantize_row_ref(t, w.data() + r * m.row_stride, wrow.data(), s.cols);
          tol32[r] = test::kquant_int8_bound(t, w.data() + r * m.row_stride, wrow.data(), x.data(),
                                             s.cols);
          tol256[r] = test::kquant_int8_bound(t, w.data() + r * m.row_stride, wrow.data(), x.data(),
                                              s.cols, 256);
        }
        for_each_target([&] {
          q8k_seen = q8k_seen || (t == GgmlType::Q4_K && detail::q8k_gemv());
          const auto& tol = t == GgmlType::Q4_K && detail::q8k_gemv() ? tol256 : tol32;
          Context ctx(s.threads);
          ctx.reserve(1, s.cols);
          std::vector<float> on(s.rows), off(s.rows);
          detail::set_kquant_int8_gemv_enabled(false);
          matmul(m, x.data(), 1, off.data(), ctx);
          detail::set_kquant_int8_gemv_enabled(true);
          const bool int8 = detail::kquant_int8_gemv(t);
          int8_seen = int8_seen || int8;
          matmul(m, x.data(), 1, on.data(), ctx);
          for (int64_t r = 0; r < s.rows; ++r) {
            ASSERT_NEAR(on[r], ref[r], tol[r]) << "output " << r << " seed " << seed;
            // The int16 path is ~129x tighter; the same bound holds a fortiori.
            ASSERT_NEAR(off[r], ref[r], tol[r]) << "output " << r << " seed " << seed;
            if (int8) worst = std::max(worst, std::fabs(on[r] - ref[r]) / tol[r]);
          }
        });
      }
    }
  }
  RecordProperty("worst_int8_error_over_bound", std::to_string(worst));
#if defined(__x86_64__)
  // AVX2 is this project's x86 baseline: there the int8 path must have been checked.
  if (hwy::SupportedTargets() & HWY_AVX2) {
    EXPECT_TRUE(int8_seen);
  }
  // And the Q4_K kernel on activations rounded per 256 (GemvRowQ4KQ8K), AVX2 and up.
  if (hwy::SupportedTargets() & HWY_AVX2) {
    EXPECT_TRUE(q8k_seen);
  }
#endif
}

// matmul_multi (the fused Q/K/V and gate/up decode) makes the int8 row once for all its
// matrices: each output is bit-identical to its own matmul's.
TEST(MatmulKQuant, Int8GemvMultiMatchesSingle) {
  const int64_t cols = 512;
  const auto w4 = kquant_weights(GgmlType::Q4_K, 37, cols);
  const auto w6 = kquant_weights(GgmlType::Q6_K, 21, cols);
  std::vector<uint8_t> q8(row_bytes(GgmlType::Q8_0, cols) * 9);
  for (auto& b : q8) b = static_cast<uint8_t>(gen()());
  for (size_t blk = 0; blk < q8.size() / 34; ++blk) put_f16(q8.data() + blk * 34, 0.01f);
  const Matrix ms[] = {{GgmlType::Q4_K, w4.data(), 37, cols, row_bytes(GgmlType::Q4_K, cols)},
                       {GgmlType::Q6_K, w6.data(), 21, cols, row_bytes(GgmlType::Q6_K, cols)},
                       {GgmlType::Q8_0, q8.data(), 9, cols, row_bytes(GgmlType::Q8_0, cols)}};
  const auto x = kquant_activations(cols, 1);
  for_each_target([&] {
    Context ctx(2);
    ctx.reserve(1, cols);
    std::vector<float> y[3], one[3];
    float* ptrs[3];
    for (int k = 0; k < 3; ++k) {
      y[k].resize(ms[k].rows);
      one[k].resize(ms[k].rows);
      ptrs[k] = y[k].data();
      matmul(ms[k], x.data(), 1, one[k].data(), ctx);
    }
    matmul_multi(ms, x.data(), 1, ptrs, ctx);
    for (int k = 0; k < 3; ++k) {
      for (int64_t r = 0; r < ms[k].rows; ++r) ASSERT_EQ(y[k][r], one[k][r]) << k << " " << r;
    }
  });
}

// Batched decoding: a Q8_0 matmul over n < 16 activation rows gives each row exactly what the
// one-row GEMV gives it (the multi-row kernel does each row's arithmetic in the GEMV's order),
// so a sequence's logits do not depend on how many others share its decode step. AVX3_DL has its
// own one-row kernel and takes it for each of the few rows too (Q8_0RowsArch); checked there as
// well (it was skipped before, and test_server_openai's concurrent answers differed there).
TEST(Matmul, Q8_0RowsIndependentOfTheBatchBelowPanels) {
  const int64_t rows = 37, cols = 32 * 24;
  std::vector<uint8_t> w(row_bytes(GgmlType::Q8_0, cols) * rows);
  for (auto& b : w) b = static_cast<uint8_t>(gen()());
  for (size_t blk = 0; blk < w.size() / 34; ++blk) put_f16(w.data() + blk * 34, uni(-0.05f, 0.05f));
  const Matrix m{GgmlType::Q8_0, w.data(), rows, cols, row_bytes(GgmlType::Q8_0, cols)};
  std::vector<float> x(15 * cols);
  for (auto& v : x) v = uni(-2, 2);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    SCOPED_TRACE(hwy::TargetName(target));
    hwy::SetSupportedTargetsForTest(target);
    Context ctx(2);
    ctx.reserve(15, cols);
    std::vector<float> one(rows);
    for (int64_t n = 2; n <= 15; ++n) {
      std::vector<float> y(n * rows);
      matmul(m, x.data(), n, y.data(), ctx);
      for (int64_t i = 0; i < n; ++i) {
        matmul(m, x.data() + i * cols, 1, one.data(), ctx);
        for (int64_t r = 0; r < rows; ++r)
          ASSERT_EQ(y[i * rows + r], one[r]) << "n " << n << " row " << i << " output " << r;
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// Q8_0 prefill on the int16 panels (AVX3_DL, detail::q8_0_int16_prefill): the activations are
// quantized as for the one-row kernel, so each output's integer dot per block is the same and
// the n-row result may differ from that row alone only in the order of the f32 sum over blocks
// (and the one FMA per block): each of the two is within nb * 2^-24 * sum |term| of the exact
// sum of the same terms, hence the bound 2 (nb + 1) 2^-24 sum_k |w_k| (|x_k| + step_k), where
// step_k = max|x| over k's block / kQMax bounds the quantized |x|. Activations that meet the f32
// panels instead differ by their rounding (up to half a step per value), which this bound
// does not allow: the test fails with the int16 path switched off (checked). Shapes: a partial
// k-block (416 columns = 13 blocks of the 16 a panel takes), weight rows that leave a panel pair
// half or wholly empty (5, 67), activation rows that leave tiles partial (16, 23), more rows
// than one quantized chunk (1030 > 1024), and a block dominated by one large value.
TEST(Matmul, Q8_0PrefillEqualsTheFewRowKernelsUpToTheSumOrder) {
  struct Shape {
    int64_t rows, cols, n;
  };
  const Shape shapes[] = {{67, 416, 16}, {5, 96, 23}, {131, 2080, 40}, {40, 256, 1030}};
  bool checked = false;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    SCOPED_TRACE(hwy::TargetName(target));
    hwy::SetSupportedTargetsForTest(target);
    if (!detail::q8_0_int16_prefill()) continue;  // the f32 panels: QuantizedPanelsMatch... above
    checked = true;
    for (const Shape& sh : shapes) {
      SCOPED_TRACE("rows=" + std::to_string(sh.rows) + " cols=" + std::to_string(sh.cols) +
                   " n=" + std::to_string(sh.n));
      std::vector<uint8_t> w(row_bytes(GgmlType::Q8_0, sh.cols) * sh.rows);
      for (auto& b : w) b = static_cast<uint8_t>(gen()());
      for (size_t blk = 0; blk < w.size() / 34; ++blk)
        put_f16(w.data() + blk * 34, uni(-0.05f, 0.05f));
      const Matrix m{GgmlType::Q8_0, w.data(), sh.rows, sh.cols,
                     row_bytes(GgmlType::Q8_0, sh.cols)};
      std::vector<float> x(sh.n * sh.cols), y(sh.n * sh.rows), one(sh.rows), wrow(sh.cols);
      for (auto& v : x) v = uni(-2, 2);
      x[40] = 900.0f;  // row 0, block 1: a step of 900 / kQMax
      Context ctx(2);
      ctx.reserve(sh.n, sh.cols);
      matmul(m, x.data(), sh.n, y.data(), ctx);
      const int64_t nb = sh.cols / 32;
      for (int64_t i = 0; i < sh.n; ++i) {
        const float* xi = x.data() + i * sh.cols;
        matmul(m, xi, 1, one.data(), ctx);
        for (int64_t r = 0; r < sh.rows; ++r) {
          dequantize_row_ref(GgmlType::Q8_0, w.data() + r * m.row_stride, wrow.data(), sh.cols);
          double terms = 0;
          for (int64_t b = 0; b < nb; ++b) {
            double amax = 0;
            for (int64_t k = 32 * b; k < 32 * b + 32; ++k)
              amax = std::max(amax, double{std::fabs(xi[k])});
            for (int64_t k = 32 * b; k < 32 * b + 32; ++k)
              terms += std::fabs(wrow[k]) * (std::fabs(xi[k]) + amax / detail::kQMax);
          }
          const double bound = 2.0 * (nb + 1) * std::ldexp(terms, -24);
          ASSERT_NEAR(y[i * sh.rows + r], one[r], bound) << "row " << i << " output " << r;
        }
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
#if defined(__x86_64__)
  // Where the CPU has AVX-512 VNNI (as the project's current machine does) the path must have
  // been checked, not skipped.
  if (hwy::SupportedTargets() & HWY_AVX3_DL) {
    EXPECT_TRUE(checked);
  }
#endif
}

// F16 weights with FloatMatmul::Int16 (AVX3_DL, detail::f16_int16_prefill): each block of 32
// weights and of 32 activations is rounded to int16 with its own scale, at most half a step
// (e_w = max|w| / (2 WMax), e_x = max|x| / (2 XMax) over the block) from the value, and the
// integer products are exact. So against the exact sum of w_k x_k the result is off by at most
// sum_k (|w_k| e_x + |x_k| e_w + e_w e_x), plus the f32 sums over blocks (as in the Q8_0 test
// above: 2 (nb + 1) 2^-24 of the terms' magnitudes). That worst case adds every rounding in
// the same direction, so it does not notice a coarser rounding (12-bit weights passed it);
// F16Int16WeightRoundingIsFourteenBits pins the weights' step down. Elsewhere Int16 is Exact,
// bit for bit. Shapes as in the Q8_0 test, and a block dominated by one large activation.
TEST(Matmul, F16Int16WithinItsRoundingBound) {
  struct Shape {
    int64_t rows, cols, n;
  };
  const Shape shapes[] = {{67, 416, 16}, {5, 96, 23}, {131, 2080, 40}, {40, 256, 1030}};
  bool checked = false;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    SCOPED_TRACE(hwy::TargetName(target));
    hwy::SetSupportedTargetsForTest(target);
    const bool int16 = detail::f16_int16_prefill();
    for (const Shape& sh : shapes) {
      SCOPED_TRACE("rows=" + std::to_string(sh.rows) + " cols=" + std::to_string(sh.cols) +
                   " n=" + std::to_string(sh.n));
      std::vector<uint8_t> w(row_bytes(GgmlType::F16, sh.cols) * sh.rows);
      std::vector<float> wf(sh.rows * sh.cols);
      for (int64_t k = 0; k < sh.rows * sh.cols; ++k) {
        put_f16(w.data() + 2 * k, uni(-0.05f, 0.05f));
        wf[k] = fp16_to_f32(static_cast<uint16_t>(w[2 * k] | w[2 * k + 1] << 8));
      }
      const Matrix m{GgmlType::F16, w.data(), sh.rows, sh.cols, row_bytes(GgmlType::F16, sh.cols)};
      std::vector<float> x(sh.n * sh.cols), y(sh.n * sh.rows), exact(sh.n * sh.rows);
      for (auto& v : x) v = uni(-2, 2);
      x[40] = 900.0f;  // row 0, block 1: a step of 900 / kF16Int16XMax
      Context ctx(2);
      ctx.reserve(sh.n, sh.cols);
      matmul(m, x.data(), sh.n, y.data(), ctx, FloatMatmul::Int16);
      matmul(m, x.data(), sh.n, exact.data(), ctx, FloatMatmul::Exact);
      if (!int16) {
        ASSERT_EQ(0, std::memcmp(y.data(), exact.data(), y.size() * sizeof(float)));
        continue;
      }
      checked = true;
      const int64_t nb = sh.cols / 32;
      double worst = 0;  // the largest error as a fraction of its bound
      for (int64_t i = 0; i < sh.n; ++i) {
        const float* xi = x.data() + i * sh.cols;
        for (int64_t r = 0; r < sh.rows; ++r) {
          const float* wr = wf.data() + r * sh.cols;
          double sum = 0, rounding = 0, terms = 0;
          for (int64_t b = 0; b < nb; ++b) {
            double xmax = 0, wmax = 0;
            for (int64_t k = 32 * b; k < 32 * b + 32; ++k) {
              xmax = std::max(xmax, double{std::fabs(xi[k])});
              wmax = std::max(wmax, double{std::fabs(wr[k])});
            }
            const double ex = xmax / (2 * detail::kF16Int16XMax);
            const double ew = wmax / (2 * detail::kF16Int16WMax);
            for (int64_t k = 32 * b; k < 32 * b + 32; ++k) {
              sum += double{wr[k]} * xi[k];
              rounding += std::fabs(wr[k]) * ex + std::fabs(xi[k]) * ew + ew * ex;
              terms += (std::fabs(wr[k]) + ew) * (std::fabs(xi[k]) + ex);
            }
          }
          const double bound = rounding + 2.0 * (nb + 1) * std::ldexp(terms, -24);
          const double err = std::fabs(y[i * sh.rows + r] - sum);
          ASSERT_LE(err, bound) << "row " << i << " output " << r;
          worst = std::max(worst, err / bound);
        }
      }
      // The path rounds: somewhere it must differ from the exact f32 panels.
      EXPECT_NE(0, std::memcmp(y.data(), exact.data(), y.size() * sizeof(float)));
      std::printf("%s rows=%lld cols=%lld n=%lld: largest error %.2f of its bound\n",
                  hwy::TargetName(target), static_cast<long long>(sh.rows),
                  static_cast<long long>(sh.cols), static_cast<long long>(sh.n), worst);
    }
  }
  hwy::SetSupportedTargetsForTest(0);
#if defined(__x86_64__)
  if (hwy::SupportedTargets() & HWY_AVX3_DL) {
    EXPECT_TRUE(checked);
  }
#endif
}

// The weights' rounding alone: activations s * n with integers |n| <= kF16Int16XMax and one
// n = kF16Int16XMax per block (s a power of two) round to themselves, so every error comes from
// the weights, each off by at most e_w = max|w| / (2 WMax) over its block and close to uniform
// on [-e_w, e_w] (variance e_w^2 / 3), independent between weights. Over the 5240 outputs the
// rms error must then be sqrt(sum_k x_k^2 e_w^2 / 3) within 0.75x-1.33x (observed ~1.0x; the
// estimate varies by a few percent). 12-bit weights give ~4x, 15-bit ~0.5x, the exact panels 0.
TEST(Matmul, F16Int16WeightRoundingIsFourteenBits) {
  hwy::SetSupportedTargetsForTest(0);
  if (!detail::f16_int16_prefill()) GTEST_SKIP() << "no int16 panels on this CPU";
  const int64_t rows = 131, cols = 2080, n = 40;
  std::vector<uint8_t> w(row_bytes(GgmlType::F16, cols) * rows);
  std::vector<float> wf(rows * cols);
  for (int64_t k = 0; k < rows * cols; ++k) {
    put_f16(w.data() + 2 * k, uni(-0.05f, 0.05f));
    wf[k] = fp16_to_f32(static_cast<uint16_t>(w[2 * k] | w[2 * k + 1] << 8));
  }
  const Matrix m{GgmlType::F16, w.data(), rows, cols, row_bytes(GgmlType::F16, cols)};
  const float s = 1.0f / 4096;
  std::vector<float> x(n * cols), y(n * rows);
  std::uniform_int_distribution<int> pick(-detail::kF16Int16XMax, detail::kF16Int16XMax);
  for (int64_t k = 0; k < n * cols; ++k)
    x[k] = s * static_cast<float>(k % 32 == 7 ? detail::kF16Int16XMax : pick(gen()));
  Context ctx(2);
  ctx.reserve(n, cols);
  matmul(m, x.data(), n, y.data(), ctx, FloatMatmul::Int16);
  double err2 = 0, var = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* wr = wf.data() + r * cols;
      const float* xi = x.data() + i * cols;
      double sum = 0;
      for (int64_t b = 0; b < cols / 32; ++b) {
        double wmax = 0;
        for (int64_t k = 32 * b; k < 32 * b + 32; ++k)
          wmax = std::max(wmax, double{std::fabs(wr[k])});
        const double ew = wmax / (2 * detail::kF16Int16WMax);
        for (int64_t k = 32 * b; k < 32 * b + 32; ++k) {
          sum += double{wr[k]} * xi[k];
          var += double{xi[k]} * xi[k] * ew * ew / 3;
        }
      }
      const double e = y[i * rows + r] - sum;
      err2 += e * e;
    }
  }
  const double ratio = std::sqrt(err2 / var);
  std::printf("rms error %.3g of the predicted\n", ratio);
  EXPECT_GT(ratio, 0.75);
  EXPECT_LT(ratio, 1.33);
}

}  // namespace
}  // namespace reel::ops
