// Causal attention's two kernels (AttentionKernel::Tiles, the blocked online-softmax kernel of
// attention.cpp, and AttentionKernel::Rows, one query row at a time) against a plain
// double-precision softmax(Q K^T * scale) V with the causal mask, and against each other, over
// many shapes: queries not multiples of the tile, caches of 0 to 5000 earlier positions, GQA
// groups 1/2/4, head_dim 64/128, f32 and f16 keys and values, 1-3 threads, every Highway
// target this CPU runs.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "hwy/targets.h"
#include "ops/kernels.h"
#include "ops/ops.h"

namespace reel::ops {
namespace {

struct Case {
  int64_t n_q = 1, past = 0, group = 1, n_kv_head = 1, head_dim = 64;
  bool f16 = false;
  float scale = 0;    // 0: 1/sqrt(head_dim)
  int64_t n_kv = -1;  // -1: past + n_q (the KV cache after appending this call's keys)
};

std::string describe(const Case& c) {
  return "n_q=" + std::to_string(c.n_q) + " past=" + std::to_string(c.past) +
         " group=" + std::to_string(c.group) + " kv_heads=" + std::to_string(c.n_kv_head) +
         " head_dim=" + std::to_string(c.head_dim) + (c.f16 ? " f16" : " f32") +
         " scale=" + std::to_string(c.scale) + " n_kv=" + std::to_string(c.n_kv);
}

// Inputs in [-1, 1] at padded strides (catching stride mix-ups), keys and values also kept as
// halves for the f16 runs (then the float copies hold exactly the rounded values).
struct Inputs {
  AttentionShape s;
  std::vector<float> q, k, v;
  std::vector<uint16_t> kh, vh;
  const void* kp() const {
    return s.kv_type == GgmlType::F16 ? static_cast<const void*>(kh.data()) : k.data();
  }
  const void* vp() const {
    return s.kv_type == GgmlType::F16 ? static_cast<const void*>(vh.data()) : v.data();
  }
};

Inputs make_inputs(const Case& c) {
  Inputs in;
  AttentionShape& s = in.s;
  s.n_q = c.n_q;
  s.n_kv = c.n_kv >= 0 ? c.n_kv : c.past + c.n_q;
  s.n_kv_head = c.n_kv_head;
  s.n_head = c.n_kv_head * c.group;
  s.head_dim = c.head_dim;
  s.q_stride = s.n_head * s.head_dim + 3;
  s.out_stride = s.n_head * s.head_dim + 5;
  s.kv_head_stride = s.n_kv * s.head_dim + 7;
  s.q_pos0 = c.past;
  s.causal = true;
  s.scale = c.scale > 0 ? c.scale : 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  s.kv_type = c.f16 ? GgmlType::F16 : GgmlType::F32;
  std::mt19937 rng(static_cast<uint32_t>(c.n_q * 7919 + c.past * 131 + c.group * 17 + c.head_dim));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  in.q.resize(static_cast<size_t>(s.n_q * s.q_stride));
  for (float& x : in.q) x = u(rng);
  const size_t kv = static_cast<size_t>(s.n_kv_head * s.kv_head_stride);
  in.k.resize(kv), in.v.resize(kv), in.kh.resize(kv), in.vh.resize(kv);
  for (size_t i = 0; i < kv; ++i) {
    in.k[i] = u(rng), in.v[i] = u(rng);
    in.kh[i] = f32_to_fp16(in.k[i]), in.vh[i] = f32_to_fp16(in.v[i]);
    if (c.f16) in.k[i] = fp16_to_f32(in.kh[i]), in.v[i] = fp16_to_f32(in.vh[i]);
  }
  return in;
}

// softmax(q k^T * scale) v in double over keys [0, clamp(q_pos0 + i + 1, 0, n_kv)); a row
// without keys is 0. Also returns the largest scale * sum_d |q_d k_d| (the scale of the
// scores' rounding errors) and of |v|.
struct Reference {
  std::vector<double> out;
  double max_abs_dot = 0, max_abs_v = 0;
};

Reference reference(const Inputs& in) {
  const AttentionShape& s = in.s;
  const int64_t group = s.n_head / s.n_kv_head, hd = s.head_dim;
  Reference r;
  r.out.assign(static_cast<size_t>(s.n_q * s.out_stride), 0.0);
  for (float x : in.v) r.max_abs_v = std::max(r.max_abs_v, double{std::abs(x)});
  std::vector<double> sc;
  for (int64_t i = 0; i < s.n_q; ++i)
    for (int64_t h = 0; h < s.n_head; ++h) {
      const float* qh = in.q.data() + i * s.q_stride + h * hd;
      const float* kh = in.k.data() + (h / group) * s.kv_head_stride;
      const float* vh = in.v.data() + (h / group) * s.kv_head_stride;
      const int64_t end = std::clamp<int64_t>(s.q_pos0 + i + 1, 0, s.n_kv);
      sc.assign(static_cast<size_t>(end), 0.0);
      double m = -INFINITY;
      for (int64_t j = 0; j < end; ++j) {
        double d = 0, a = 0;
        for (int64_t c = 0; c < hd; ++c) {
          d += double{qh[c]} * kh[j * hd + c];
          a += std::abs(double{qh[c]} * kh[j * hd + c]);
        }
        sc[j] = d * s.scale;
        m = std::max(m, sc[j]);
        r.max_abs_dot = std::max(r.max_abs_dot, a * s.scale);
      }
      double sum = 0;
      for (double& e : sc) sum += e = std::exp(e - m);
      double* o = r.out.data() + i * s.out_stride + h * hd;
      for (int64_t j = 0; j < end; ++j)
        for (int64_t c = 0; c < hd; ++c) o[c] += sc[j] / sum * vh[j * hd + c];
    }
  return r;
}

// Bound on |f32 result - exact| for an output row, relative to nothing (absolute), u = 2^-24:
// - each score is an f32 chain of head_dim FMAs (plus the scale's rounding), so it is off by at
//   most e = (head_dim + 2) u * scale * sum|q_d k_d|; the softmax weights then move by a factor
//   within exp(+-2e) after normalisation, the output (a convex combination of values) by at
//   most ~2 * 2e * max|v| (2x for the exp's own first-order slack);
// - numerator and denominator are sums of non-negative weights p_j <= 1 (times v_j): a chain
//   of `chain` roundings, each relative u, plus the exp's error (Highway's Exp: a few ulp, 8u
//   here), so each is off by (chain + 8) u relative to sum p_j |v_j| <= l max|v|; 2x for the
//   two of them.
// Tiles accumulate within a tile of kFlashKeys keys and then once per tile, so their chain is
// kFlashKeys + n_kv / kFlashKeys + 2 (rescales); Rows accumulate along all n_kv keys.
double tolerance(const Reference& r, const AttentionShape& s, double chain) {
  const double u = 0x1p-24;
  const double e = (double(s.head_dim) + 2) * u * r.max_abs_dot;
  return r.max_abs_v * (4 * e + 2 * (chain + 8) * u) + 1e-7;
}

double tiles_chain(const AttentionShape& s) {
  return double(detail::kFlashKeys) + double(s.n_kv) / detail::kFlashKeys + 2;
}

std::vector<float> run(const Inputs& in, AttentionKernel kernel, int threads) {
  std::vector<float> out(static_cast<size_t>(in.s.n_q * in.s.out_stride), 12345.0f);
  Context ctx(threads);
  attention(in.s, in.q.data(), in.kp(), in.vp(), out.data(), ctx, kernel);
  return out;
}

void expect_near(const std::vector<float>& got, const std::vector<double>& want,
                 const AttentionShape& s, double tol, const char* what) {
  for (int64_t i = 0; i < s.n_q; ++i)
    for (int64_t c = 0; c < s.n_head * s.head_dim; ++c) {
      const size_t at = static_cast<size_t>(i * s.out_stride + c);
      ASSERT_NEAR(got[at], want[at], tol) << what << ": query " << i << " lane " << c;
    }
}

void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b,
                      const AttentionShape& s, const char* what) {
  for (int64_t i = 0; i < s.n_q; ++i)
    for (int64_t c = 0; c < s.n_head * s.head_dim; ++c) {
      const size_t at = static_cast<size_t>(i * s.out_stride + c);
      ASSERT_EQ(std::memcmp(&a[at], &b[at], sizeof(float)), 0)
          << what << ": query " << i << " lane " << c << ": " << a[at] << " vs " << b[at];
    }
}

// Tiles and Rows against the reference (each within its bound) and against each other (within
// the sum of the bounds); Auto gives the bits of one of them. threads: the tiles' result does
// not depend on it (every output row is one task's, and a row's arithmetic does not depend on
// how many rows its tile holds, which follows the thread count), so a second thread count must
// give the same bits.
void check(const Case& c, int threads, int other_threads) {
  SCOPED_TRACE(describe(c) + " threads=" + std::to_string(threads));
  const Inputs in = make_inputs(c);
  const Reference ref = reference(in);
  const auto tiles = run(in, AttentionKernel::Tiles, threads);
  const auto rows = run(in, AttentionKernel::Rows, threads);
  const double tol_tiles = tolerance(ref, in.s, tiles_chain(in.s));
  const double tol_rows = tolerance(ref, in.s, double(in.s.n_kv));
  expect_near(tiles, ref.out, in.s, tol_tiles, "tiles vs double");
  expect_near(rows, ref.out, in.s, tol_rows, "rows vs double");
  std::vector<double> rows_d(rows.begin(), rows.end());
  expect_near(tiles, rows_d, in.s, tol_tiles + tol_rows, "tiles vs rows");
  expect_same_bits(tiles, run(in, AttentionKernel::Tiles, other_threads), in.s,
                   "tiles, other thread count");
  const auto autok = run(in, AttentionKernel::Auto, threads);
  bool same_as_one = true;
  for (const auto* k : {&tiles, &rows}) {
    same_as_one = true;
    for (int64_t i = 0; i < in.s.n_q && same_as_one; ++i)
      same_as_one = std::memcmp(autok.data() + i * in.s.out_stride, k->data() + i * in.s.out_stride,
                                sizeof(float) * in.s.n_head * in.s.head_dim) == 0;
    if (same_as_one) break;
  }
  EXPECT_TRUE(same_as_one) << "Auto gave neither kernel's result";
  // The padding between output rows is never written.
  for (int64_t i = 0; i < in.s.n_q; ++i)
    for (int64_t c = in.s.n_head * in.s.head_dim; c < in.s.out_stride; ++c)
      ASSERT_EQ(tiles[i * in.s.out_stride + c], 12345.0f);
}

TEST(AttentionTiles, MatchesDoubleAndRowsOverManyShapes) {
  // (n_q, past) pairs: decode-sized and odd query counts around the tile sizes (tiles hold
  // 64 / group queries; key tiles kFlashKeys = 64), caches that end inside, at and after a
  // key tile, and long ones.
  const std::pair<int64_t, int64_t> sizes[] = {
      {1, 0},  {1, 700},  {2, 63},  {3, 64},    {5, 0},   {16, 1},  {17, 63},  {31, 130},
      {33, 0}, {37, 150}, {64, 64}, {65, 1000}, {100, 7}, {129, 0}, {200, 333}};
  int n = 0;
  for (int64_t hd : {64, 128})
    for (int64_t group : {1, 2, 4})
      for (bool f16 : {false, true})
        for (auto [n_q, past] : sizes) {
          Case c;
          c.n_q = n_q, c.past = past, c.group = group, c.head_dim = hd, c.f16 = f16;
          c.n_kv_head = (n++ % 3 == 0) ? 2 : 1;
          const int threads = 1 + n % 3;
          check(c, threads, threads == 1 ? 3 : 1);
          if (HasFatalFailure()) return;
        }
}

TEST(AttentionTiles, LongCachesAndFullPrompts) {
  // A 300-query prompt from scratch, and batches deep into a 5000-position cache (the last
  // batches of a long prefill): accumulation over thousands of keys.
  const Case cases[] = {
      {300, 0, 2, 1, 128, true},   {300, 0, 1, 1, 64, false},   {255, 5000, 2, 1, 128, true},
      {70, 5000, 4, 1, 64, false}, {4, 4900, 2, 2, 128, false}, {1, 5000, 2, 1, 128, true},
  };
  for (const Case& c : cases) {
    check(c, 2, 3);
    if (HasFatalFailure()) return;
  }
  // One thread takes tiles of 128 rows here where three take 64: the bits must not move
  // (a key tile past all of a chunk's rows is skipped, one inside them is masked).
  for (const Case& c : {cases[0], cases[2]}) {
    check(c, 1, 3);
    if (HasFatalFailure()) return;
  }
}

TEST(AttentionTiles, LargeScoresAndMaskEdges) {
  // Scores in the hundreds: the running max must keep exp in range and the rescaling exact
  // enough; one key dominates each row, so a mask off by one changes the output by O(1).
  for (bool f16 : {false, true}) {
    Case c;
    c.n_q = 45, c.past = 70, c.group = 2, c.head_dim = 64, c.f16 = f16, c.scale = 40.0f;
    check(c, 2, 1);
    c.past = 0, c.n_q = 130;
    check(c, 3, 1);
  }
  // Fewer keys than the causal limits reach (n_kv < q_pos0 + n_q): rows past the end see all
  // n_kv keys. A negative first position: the first rows see no key at all and give zeros.
  Case c;
  c.n_q = 40, c.past = 10, c.n_kv = 25, c.group = 2;
  check(c, 2, 1);
  c.past = -5, c.n_kv = 35;
  check(c, 1, 2);
  const Inputs in = make_inputs(c);
  const auto tiles = run(in, AttentionKernel::Tiles, 2);
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t d = 0; d < in.s.n_head * in.s.head_dim; ++d)
      EXPECT_EQ(tiles[i * in.s.out_stride + d], 0.0f) << "query " << i;
}

TEST(AttentionRows, GroupsWiderThanOnePassAreSplit) {
  // The row kernel takes a KV group's heads together, at most 16 per pass: wider groups are
  // split into parts (17 = 9 + 8, 20 = 10 + 10, 32 = 16 + 16), each part reading the group's
  // keys; every head must still get its own answer.
  for (int64_t group : {16, 17, 20, 32})
    for (auto [n_q, past] : {std::pair<int64_t, int64_t>{1, 300}, {3, 130}}) {
      Case c;
      c.n_q = n_q, c.past = past, c.group = group, c.n_kv_head = 2, c.f16 = group % 2 == 0;
      check(c, 2, 1);
      if (HasFatalFailure()) return;
    }
}

TEST(AttentionTiles, EveryTarget) {
  // The row chunk is 2 to 4 vectors of the target's lanes (2 lanes on the scalar target): each
  // target's own padding and masking.
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) {
    SCOPED_TRACE(hwy::TargetName(target));
    hwy::SetSupportedTargetsForTest(target);
    for (bool f16 : {false, true}) {
      Case c;
      c.n_q = 23, c.past = 77, c.group = 2, c.head_dim = 64, c.f16 = f16;
      check(c, 2, 1);
      c.n_q = 9, c.past = 0, c.group = 4, c.head_dim = 128;
      check(c, 1, 3);
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace
}  // namespace reel::ops
