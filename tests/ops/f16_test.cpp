// The f16 KV cache's kernels: float <-> half conversion against the scalar reference in
// gguf/types.cpp (bit for bit), and attention over f16 keys and values against f32 attention
// on the same values. Each runs on every Highway target this CPU executes, since the targets
// without hardware conversion (SSE4, EMU128) use separate integer code.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "hwy/targets.h"
#include "ops/kernels.h"
#include "ops/ops.h"

namespace reel::ops {
namespace {

// Runs fn() once per Highway target this CPU supports, then restores normal dispatch.
template <class Fn>
void for_each_target(Fn fn) {
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) {
    SCOPED_TRACE(hwy::TargetName(target));
    hwy::SetSupportedTargetsForTest(target);
    fn();
  }
  hwy::SetSupportedTargetsForTest(0);
}

// Inputs that cover every rounding case: all floats near each half boundary, ties, the
// subnormal and overflow thresholds, inf, NaN payloads, f32 subnormals, both signs, plus
// random bit patterns. Odd length, so the scalar tail runs too.
std::vector<float> conversion_inputs() {
  std::vector<uint32_t> bits;
  // Every half h: its exact float and the floats just around it and half-way to the next.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    const uint32_t b = std::bit_cast<uint32_t>(f);
    for (int d = -2; d <= 2; ++d) bits.push_back(b + static_cast<uint32_t>(d));
    if ((h & 0x7c00) != 0x7c00) {
      const uint32_t tie = b + (1u << 12);  // half-way to the next half (normal halves)
      for (int d = -1; d <= 1; ++d) bits.push_back(tie + static_cast<uint32_t>(d));
    }
  }
  // Every float exponent: its powers of two and neighbours, and the subnormal range's ties
  // (below 2^-14 the half step is 2^-24).
  for (uint32_t e = 0; e < 256; ++e)
    for (uint32_t m : {0u, 1u, 0x1000u, 0x1fffu, 0x2000u, 0x400000u, 0x7fffffu})
      bits.push_back(e << 23 | m);
  for (uint32_t k = 0; k < 2048; ++k) {
    const float tie = (static_cast<float>(k) + 0.5f) * 0x1p-24f;
    const uint32_t b = std::bit_cast<uint32_t>(tie);
    for (int d = -1; d <= 1; ++d) bits.push_back(b + static_cast<uint32_t>(d));
  }
  for (uint32_t b : {0x477fefffu, 0x477ff000u, 0x477ff001u, 0x7f800000u, 0x7f800001u, 0x7fc00000u,
                     0x7fffffffu, 0x7fa00000u, 0x33000000u, 0x33000001u, 0x38800000u, 0x387fffffu})
    bits.push_back(b);
  std::mt19937 rng(7);
  for (int i = 0; i < 2000000; ++i) bits.push_back(static_cast<uint32_t>(rng()));
  const size_t n = bits.size();
  for (size_t i = 0; i < n; ++i) bits.push_back(bits[i] ^ 0x80000000u);  // both signs
  if (bits.size() % 2 == 0) bits.push_back(0x3f800000u);
  std::vector<float> x(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) x[i] = std::bit_cast<float>(bits[i]);
  return x;
}

TEST(F16, ConversionMatchesScalarBitForBit) {
  const std::vector<float> x = conversion_inputs();
  std::vector<uint16_t> ref(x.size());
  for (size_t i = 0; i < x.size(); ++i) ref[i] = f32_to_fp16(x[i]);
  for_each_target([&] {
    std::vector<uint16_t> y(x.size(), 0xdead);
    f32_to_f16(x.data(), y.data(), static_cast<int64_t>(x.size()));
    int64_t bad = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      if (y[i] != ref[i] && ++bad <= 5) {
        ADD_FAILURE() << "f32 bits 0x" << std::hex << std::bit_cast<uint32_t>(x[i]) << " -> 0x"
                      << y[i] << ", expected 0x" << ref[i];
      }
    }
    EXPECT_EQ(bad, 0);
    // Unaligned starts and short lengths: every tail length on every offset.
    for (int64_t off = 0; off < 5; ++off)
      for (int64_t n = 0; n < 40; ++n) {
        std::vector<uint16_t> z(n + 1, 0xbeef);
        f32_to_f16(x.data() + 1000 + off, z.data(), n);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(z[i], ref[1000 + off + i]);
        ASSERT_EQ(z[n], 0xbeef) << "wrote past the end";
      }
  });
}

// Every half through the f16 axpy (y = 1 * h + (-0), which is h exactly, signed zeros kept):
// the vector conversion equals fp16_to_f32 on all 65536 inputs.
TEST(F16, WideningIsExactForEveryHalf) {
  std::vector<uint16_t> h(0x10000);
  for (uint32_t i = 0; i < 0x10000; ++i) h[i] = static_cast<uint16_t>(i);
  for_each_target([&] {
    std::vector<float> y(h.size(), -0.0f);
    detail::axpy_f32_f16(1.0f, h.data(), y.data(), static_cast<int64_t>(h.size()));
    for (uint32_t i = 0; i < 0x10000; ++i) {
      const float ref = fp16_to_f32(static_cast<uint16_t>(i));
      if (std::isnan(ref)) {
        ASSERT_TRUE(std::isnan(y[i])) << "half 0x" << std::hex << i;
      } else {
        ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(ref))
            << "half 0x" << std::hex << i;
      }
    }
  });
}

// On f16-representable values the f16 kernels run the same FMAs in the same order as the f32
// ones (the widening is exact), so the results are equal bit for bit, for every length.
TEST(F16, DotAndAxpyEqualF32OnRoundedValues) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  for_each_target([&] {
    for (int64_t n : {0, 1, 5, 8, 15, 16, 17, 31, 64, 100, 128, 333}) {
      std::vector<float> a(n), yf(n), yh(n);
      std::vector<uint16_t> b(n);
      std::vector<float> bf(n);
      for (int64_t i = 0; i < n; ++i) {
        a[i] = u(rng);
        b[i] = f32_to_fp16(u(rng));
        bf[i] = fp16_to_f32(b[i]);
        yf[i] = yh[i] = u(rng);
      }
      EXPECT_EQ(std::bit_cast<uint32_t>(detail::dot_f32_f16(a.data(), b.data(), n)),
                std::bit_cast<uint32_t>(detail::dot_f32(a.data(), bf.data(), n)))
          << "n=" << n;
      detail::axpy_f32(0.7f, bf.data(), yf.data(), n);
      detail::axpy_f32_f16(0.7f, b.data(), yh.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(yh[i], yf[i]) << "n=" << n << " i=" << i;
    }
  });
}

// Attention over f16 keys and values equals attention over f32 keys and values holding the
// same (f16-rounded) numbers. Tolerance: zero. The f16 path widens exactly and then runs the
// f32 path's kernels in the same order on the same values (DotAndAxpyEqualF32OnRoundedValues),
// and both take the same task split; non-causal calls stay below the blocked-matmul sizes,
// which only f32 uses.
void check_f16_attention(AttentionShape s, int threads) {
  SCOPED_TRACE("n_q=" + std::to_string(s.n_q) + " n_kv=" + std::to_string(s.n_kv) +
               " heads=" + std::to_string(s.n_head) + "/" + std::to_string(s.n_kv_head) +
               " head_dim=" + std::to_string(s.head_dim) + " causal=" + std::to_string(s.causal) +
               " threads=" + std::to_string(threads));
  s.q_stride = s.n_head * s.head_dim + 3;
  s.out_stride = s.n_head * s.head_dim + 5;
  s.kv_head_stride = s.n_kv * s.head_dim + 7;
  std::mt19937 rng(static_cast<uint32_t>(s.n_q * 131 + s.n_kv));
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<float> q(static_cast<size_t>(s.n_q * s.q_stride));
  for (float& e : q) e = u(rng);
  const size_t kv = static_cast<size_t>(s.n_kv_head * s.kv_head_stride);
  std::vector<uint16_t> kh(kv), vh(kv);
  std::vector<float> kf(kv), vf(kv);
  for (size_t i = 0; i < kv; ++i) {
    kh[i] = f32_to_fp16(u(rng));
    vh[i] = f32_to_fp16(u(rng));
    kf[i] = fp16_to_f32(kh[i]);
    vf[i] = fp16_to_f32(vh[i]);
  }
  std::vector<float> out_f(static_cast<size_t>(s.n_q * s.out_stride), 0.0f), out_h = out_f;
  Context ctx(threads);
  s.kv_type = GgmlType::F32;
  attention(s, q.data(), kf.data(), vf.data(), out_f.data(), ctx);
  s.kv_type = GgmlType::F16;
  attention(s, q.data(), kh.data(), vh.data(), out_h.data(), ctx);
  for (int64_t i = 0; i < s.n_q; ++i)
    for (int64_t c = 0; c < s.n_head * s.head_dim; ++c) {
      const size_t at = static_cast<size_t>(i * s.out_stride + c);
      ASSERT_EQ(out_h[at], out_f[at]) << "query " << i << " lane " << c;
      ASSERT_TRUE(std::isfinite(out_h[at]));
    }
}

TEST(F16, AttentionEqualsF32OnRoundedValues) {
  for_each_target([&] {
    for (int64_t hd : {64, 128}) {
      AttentionShape s;
      s.head_dim = hd;
      s.scale = 1.0f / std::sqrt(static_cast<float>(hd));
      // Decode at depth, GQA (group 2), several key blocks and a partial last one.
      s.n_q = 1, s.n_kv = 700, s.n_head = 8, s.n_kv_head = 4, s.q_pos0 = 699, s.causal = true;
      check_f16_attention(s, 2);
      check_f16_attention(s, 3);
      // Causal prefill continuing a cache, several query blocks, GQA group 3.
      s.n_q = 37, s.n_kv = 37 + 150, s.q_pos0 = 150, s.n_head = 6, s.n_kv_head = 2;
      check_f16_attention(s, 2);
      // Causal from position 0, MHA.
      s.n_q = 20, s.n_kv = 20, s.q_pos0 = 0, s.n_head = 2, s.n_kv_head = 2;
      check_f16_attention(s, 1);
      // Non-causal, GQA.
      s.causal = false, s.n_q = 33, s.n_kv = 150, s.n_head = 4, s.n_kv_head = 2;
      check_f16_attention(s, 2);
    }
  });
}

}  // namespace
}  // namespace reel::ops
