// Blocked ("flash") attention for many queries over a long run of keys, compiled per Highway
// target. One call handles one tile: a few queries with all the query heads that share one KV
// head (their rows meet the same keys and values, so each key/value tile is read and widened
// once for all of them). Keys are taken a tile at a time with an online softmax (running max
// and sum per row, the output accumulator rescaled when the max grows), so memory does not
// grow with the number of keys and no full score matrix exists.
//
// Layout: everything is kept with the tile's rows (query x head pairs) along the vector lanes:
//   QT[d][r] (queries, transposed once per tile and pre-scaled), S[j][r] = sum_d K[j][d] QT[d][r],
//   OT[d][r] += sum_j V[j][d] P[j][r].
// Both products are outer-product register tiles (a key's or a value's element broadcast
// against vectors of rows), the same shape as matmul.cpp's panel kernel, and the softmax's
// per-row max, exp and sum are plain vertical vector operations.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/attention.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

// (foreach_target.h first, in its own include block: it re-includes this file per target.)
#include <algorithm>
#include <cmath>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "ops/kernels.h"

HWY_BEFORE_NAMESPACE();
namespace reel::ops::detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;

// Register tile: kFlashMr keys (or value columns) x kFlashVecs vectors of rows. 6 x 4 = 24
// accumulators where there are 32 vector registers, 6 x 2 = 12 of 16 elsewhere (AVX2): with
// the row vectors and one broadcast that fills the register file without spilling.
#if HWY_TARGET <= HWY_AVX3 || HWY_ARCH_ARM
constexpr int kFlashVecs = 4;
#else
constexpr int kFlashVecs = 2;
#endif
constexpr int kFlashMr = 6;

// st[j][0..C) = sum_d k[j][d] * qt[d][0..C) for the MR keys j; C = kFlashVecs lanes-vectors.
template <int MR>
HWY_INLINE void ScoreTile(const float* HWY_RESTRICT k, int64_t hd, const float* HWY_RESTRICT qt,
                          int64_t rp, float* HWY_RESTRICT st) {
  const DF df;
  const size_t N = hn::Lanes(df);
  hn::Vec<DF> acc[MR][kFlashVecs];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < kFlashVecs; ++v) acc[m][v] = hn::Zero(df);
  for (int64_t d = 0; d < hd; ++d) {
    hn::Vec<DF> qv[kFlashVecs];
    for (int v = 0; v < kFlashVecs; ++v) qv[v] = hn::Load(df, qt + d * rp + v * N);
    for (int m = 0; m < MR; ++m) {
      const auto kb = hn::Set(df, k[m * hd + d]);
      for (int v = 0; v < kFlashVecs; ++v) acc[m][v] = hn::MulAdd(kb, qv[v], acc[m][v]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < kFlashVecs; ++v) hn::Store(acc[m][v], df, st + m * rp + v * N);
}

// ot[c][0..C) = alpha * ot[c][0..C) + sum_j v[j][c] * pt[j][0..C) for the MR value columns c.
template <int MR>
HWY_INLINE void ValueTile(const float* HWY_RESTRICT v, int64_t hd, const float* HWY_RESTRICT pt,
                          int64_t rp, int64_t nk, const float* HWY_RESTRICT alpha,
                          float* HWY_RESTRICT ot) {
  const DF df;
  const size_t N = hn::Lanes(df);
  hn::Vec<DF> acc[MR][kFlashVecs];
  for (int x = 0; x < kFlashVecs; ++x) {
    const auto a = hn::Load(df, alpha + x * N);
    for (int m = 0; m < MR; ++m) acc[m][x] = hn::Mul(hn::Load(df, ot + m * rp + x * N), a);
  }
  for (int64_t j = 0; j < nk; ++j) {
    hn::Vec<DF> pv[kFlashVecs];
    for (int x = 0; x < kFlashVecs; ++x) pv[x] = hn::Load(df, pt + j * rp + x * N);
    for (int m = 0; m < MR; ++m) {
      const auto vb = hn::Set(df, v[j * hd + m]);
      for (int x = 0; x < kFlashVecs; ++x) acc[m][x] = hn::MulAdd(vb, pv[x], acc[m][x]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int x = 0; x < kFlashVecs; ++x) hn::Store(acc[m][x], df, ot + m * rp + x * N);
}

// S = K QT for keys [0, nk) of the tile and the row chunks from row c_begin on.
void Scores(const float* k, int64_t nk, int64_t hd, const float* qt, int64_t rp, int64_t chunk,
            int64_t c_begin, float* st) {
  for (int64_t c0 = c_begin; c0 < rp; c0 += chunk) {
    int64_t j = 0;
    for (; j + kFlashMr <= nk; j += kFlashMr)
      ScoreTile<kFlashMr>(k + j * hd, hd, qt + c0, rp, st + j * rp + c0);
    const float* kj = k + j * hd;
    float* sj = st + j * rp + c0;
    switch (nk - j) {
      case 5:
        ScoreTile<5>(kj, hd, qt + c0, rp, sj);
        break;
      case 4:
        ScoreTile<4>(kj, hd, qt + c0, rp, sj);
        break;
      case 3:
        ScoreTile<3>(kj, hd, qt + c0, rp, sj);
        break;
      case 2:
        ScoreTile<2>(kj, hd, qt + c0, rp, sj);
        break;
      case 1:
        ScoreTile<1>(kj, hd, qt + c0, rp, sj);
        break;
      default:
        break;
    }
  }
}

// OT = alpha OT + V^T P for value columns [0, hd) and the row chunks from row c_begin on.
void Values(const float* v, int64_t nk, int64_t hd, const float* pt, int64_t rp, int64_t chunk,
            int64_t c_begin, const float* alpha, float* ot) {
  for (int64_t c0 = c_begin; c0 < rp; c0 += chunk) {
    int64_t d = 0;
    for (; d + kFlashMr <= hd; d += kFlashMr)
      ValueTile<kFlashMr>(v + d, hd, pt + c0, rp, nk, alpha + c0, ot + d * rp + c0);
    const float* vd = v + d;
    float* od = ot + d * rp + c0;
    switch (hd - d) {
      case 5:
        ValueTile<5>(vd, hd, pt + c0, rp, nk, alpha + c0, od);
        break;
      case 4:
        ValueTile<4>(vd, hd, pt + c0, rp, nk, alpha + c0, od);
        break;
      case 3:
        ValueTile<3>(vd, hd, pt + c0, rp, nk, alpha + c0, od);
        break;
      case 2:
        ValueTile<2>(vd, hd, pt + c0, rp, nk, alpha + c0, od);
        break;
      case 1:
        ValueTile<1>(vd, hd, pt + c0, rp, nk, alpha + c0, od);
        break;
      default:
        break;
    }
  }
}

// The online softmax step for keys [j0, j0 + nk): masks keys at or past each row's limit
// (only where the tile reaches past the smallest limit), then per row: the new max m, the
// factor alpha = exp(m_old - m) for what was accumulated so far, P = exp(S - m) in place,
// and l = alpha l + sum P. A row that has seen no visible key yet keeps m = -inf; its m_use of
// 0 turns every exp(-inf - m_use) into 0 instead of NaN.
void SoftmaxStep(float* st, int64_t nk, int64_t rp, int64_t c_begin, int64_t j0, bool mask,
                 const int32_t* lim, float* m, float* l, float* alpha) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const size_t N = hn::Lanes(df);
  const auto neg_inf = hn::Set(df, -INFINITY);
  for (int64_t c = c_begin; c < rp; c += static_cast<int64_t>(N)) {
    auto mt = neg_inf;
    if (mask) {
      const auto limit = hn::Load(di, lim + c);
      for (int64_t j = 0; j < nk; ++j) {
        // Key j0 + j is hidden when lim <= j0 + j, i.e. lim < j0 + j + 1.
        const auto hidden =
            hn::RebindMask(df, hn::Lt(limit, hn::Set(di, static_cast<int32_t>(j0 + j + 1))));
        const auto s = hn::IfThenElse(hidden, neg_inf, hn::Load(df, st + j * rp + c));
        hn::Store(s, df, st + j * rp + c);
        mt = hn::Max(mt, s);
      }
    } else {
      for (int64_t j = 0; j < nk; ++j) mt = hn::Max(mt, hn::Load(df, st + j * rp + c));
    }
    const auto m_old = hn::Load(df, m + c);
    const auto m_new = hn::Max(m_old, mt);
    const auto m_use = hn::IfThenZeroElse(hn::Eq(m_new, neg_inf), m_new);
    const auto a = hn::Exp(df, hn::Sub(m_old, m_use));  // Exp(-inf) is 0
    auto sum = hn::Zero(df);
    for (int64_t j = 0; j < nk; ++j) {
      const auto p = hn::Exp(df, hn::Sub(hn::Load(df, st + j * rp + c), m_use));
      hn::Store(p, df, st + j * rp + c);
      sum = hn::Add(sum, p);
    }
    hn::Store(m_new, df, m + c);
    hn::Store(a, df, alpha + c);
    hn::Store(hn::MulAdd(hn::Load(df, l + c), a, sum), df, l + c);
  }
}

// Keys or values [j0, j0 + nk) of the tile as f32 rows: the cache itself when it holds f32,
// else widened once into buf (exactly, as LoadHalves in vec.cpp).
const float* KvTile(const void* base, bool f16, int64_t j0, int64_t nk, int64_t hd, float* buf) {
  if (!f16) return static_cast<const float*>(base) + j0 * hd;
  const DF df;
  const hn::Rebind<uint16_t, DF> du16;
  const size_t N = hn::Lanes(df);
  const uint16_t* src = static_cast<const uint16_t*>(base) + j0 * hd;
  const int64_t n = nk * hd;
  int64_t i = 0;
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2) || \
    (HWY_ARCH_ARM && HWY_TARGET == HWY_NEON && defined(__ARM_FP) && (__ARM_FP & 2))
  const hn::Rebind<hwy::float16_t, DF> dh;
  for (; i + static_cast<int64_t>(N) <= n; i += N)
    hn::Store(hn::PromoteTo(df, hn::BitCast(dh, hn::LoadU(du16, src + i))), df, buf + i);
#else
  (void)du16;
  (void)N;
#endif
  for (; i < n; ++i) buf[i] = half_to_float(src[i]);
  return buf;
}

void FlashAttentionTile(const FlashTile& t) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t chunk = kFlashVecs * N;
  const int64_t hd = t.head_dim, rows = t.n_q * t.group;
  const int64_t rp = (rows + chunk - 1) / chunk * chunk;
  const FlashScratch s = flash_scratch_layout(t.scratch, rows, hd);

  // Rows r = i * group + g: query i of the tile, query head g of the KV head's group. Padding
  // rows repeat the last row's limit and have zero queries: finite, never written out.
  int64_t kv_end = 0, min_lim = t.n_kv;
  for (int64_t r = 0; r < rp; ++r) {
    const int64_t i = std::min(r, rows - 1) / t.group;
    const int64_t lim = t.causal ? std::clamp<int64_t>(t.first_end + i, 0, t.n_kv) : t.n_kv;
    s.lim[r] = static_cast<int32_t>(lim);
    kv_end = std::max(kv_end, lim);
    min_lim = std::min(min_lim, lim);
    s.m[r] = -INFINITY;
    s.l[r] = 0.0f;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = t.q + (r / t.group) * t.q_stride + (r % t.group) * hd;
    for (int64_t d = 0; d < hd; ++d) s.qt[d * rp + r] = src[d] * t.scale;
  }
  for (int64_t d = 0; d < hd; ++d) {
    std::fill(s.qt + d * rp + rows, s.qt + (d + 1) * rp, 0.0f);
    std::fill(s.ot + d * rp, s.ot + (d + 1) * rp, 0.0f);
  }

  // Each key tile is widened once for all the tile's row chunks; a chunk whose rows all end
  // before the key tile (limits grow with the row) is skipped. Skipping changes no result: a
  // fully masked key tile leaves m, l and OT exactly as they were (alpha = exp(0) = 1, P = 0).
  int64_t c_begin = 0;
  for (int64_t j0 = 0; j0 < kv_end; j0 += kFlashKeys) {
    const int64_t nk = std::min<int64_t>(kFlashKeys, kv_end - j0);
    while (c_begin + chunk < rp && s.lim[c_begin + chunk - 1] <= j0) c_begin += chunk;
    const float* k = KvTile(t.k, t.f16, j0, nk, hd, s.kbuf);
    Scores(k, nk, hd, s.qt, rp, chunk, c_begin, s.st);
    SoftmaxStep(s.st, nk, rp, c_begin, j0, j0 + nk > std::max<int64_t>(min_lim, s.lim[c_begin]),
                s.lim, s.m, s.l, s.alpha);
    const float* v = KvTile(t.v, t.f16, j0, nk, hd, s.vbuf);
    Values(v, nk, hd, s.st, rp, chunk, c_begin, s.alpha, s.ot);
  }

  for (int64_t r = 0; r < rows; ++r) {
    const float inv = s.l[r] > 0.0f ? 1.0f / s.l[r] : 0.0f;  // l = 0: no visible key
    float* dst = t.out + (r / t.group) * t.out_stride + (r % t.group) * hd;
    for (int64_t d = 0; d < hd; ++d) dst[d] = s.ot[d * rp + r] * inv;
  }
}

// ---- Decode: one query row per head of a KV group, AVX-512 ----
// attend_group (ops.cpp) dots and accumulates one key or value row per helper call: a
// horizontal sum per key and head, and the outputs loaded and stored per key. Here, per block
// of 16 keys: each head's 16 dot products stay as 16 vectors and one transpose-and-add tree
// (45 shuffles and adds) gives the block's 16 scores as one vector, so the online softmax is
// one vector step per head; the values then go into outputs held in registers (two heads at a
// time: 2 x 8 vectors of 16 lanes at head_dim 128), each value row widened once for both.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr int64_t kDecodeKeys = 16;
constexpr int kDecodeMaxDim = 128;

// The 16 lane sums of v[0..16) as the 16 lanes of one vector, in order.
HWY_INLINE __m512 SumEach16(const __m512 v[16]) {
  __m512 t[8], u[4];
  for (int i = 0; i < 8; ++i)  // 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] of v[2i], v[2i+1]
    t[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                         _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  for (int i = 0; i < 4; ++i) {  // 128-bit lane L: the lane-L sums of v[4i..4i+3]
    const __m512d a = _mm512_castps_pd(t[2 * i]), b = _mm512_castps_pd(t[2 * i + 1]);
    u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  const __m512 w0 =
      _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x44), _mm512_shuffle_f32x4(u[0], u[1], 0xee));
  const __m512 w1 =
      _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], 0x44), _mm512_shuffle_f32x4(u[2], u[3], 0xee));
  return _mm512_add_ps(_mm512_shuffle_f32x4(w0, w1, 0x88), _mm512_shuffle_f32x4(w0, w1, 0xdd));
}

HWY_INLINE __m512 LoadRow16(const float* p) {
  return _mm512_loadu_ps(p);
}
HWY_INLINE __m512 LoadRow16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// Scores of one head's query (nv vectors, pre-scaled) against keys k[0, nk) (nk <= 16; rows
// head_dim apart): lane j is key j, lanes past nk are -inf.
template <class T, int NV>
HWY_INLINE __m512 BlockScores(const __m512* q, const T* k, int64_t hd, int64_t nk) {
  __m512 dots[kDecodeKeys];
  for (int64_t j = 0; j < kDecodeKeys; ++j) {
    if (j >= nk) {
      dots[j] = _mm512_setzero_ps();
      continue;
    }
    const T* kj = k + j * hd;
    __m512 a = _mm512_mul_ps(q[0], LoadRow16(kj));
    for (int x = 1; x < NV; ++x) a = _mm512_fmadd_ps(q[x], LoadRow16(kj + 16 * x), a);
    dots[j] = a;
  }
  const __m512 s = SumEach16(dots);
  const __mmask16 valid = static_cast<__mmask16>((1u << nk) - 1);
  return _mm512_mask_blend_ps(valid, _mm512_set1_ps(-INFINITY), s);
}

// exp(x) for x <= 0 (scores minus their running max), a whole vector through hn::Exp; below
// -87 (and -inf: padding lanes, the first block's empty max) 0.
HWY_INLINE __m512 ExpNonPositive(__m512 x) {
  const DF df;
  const __m512 lo = _mm512_set1_ps(-87.0f);
  const __mmask16 tiny = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  const __m512 e = hn::Exp(df, hn::Vec<DF>{_mm512_max_ps(x, lo)}).raw;
  return _mm512_mask_blend_ps(tiny, e, _mm512_setzero_ps());
}

template <class T, int NV>
void AttendDecode(const float* const* q, float* const* out, int64_t group, const T* k, const T* v,
                  int64_t end, int64_t hd, float scale) {
  __m512 m[kMaxDecodeGroup], l[kMaxDecodeGroup];
  alignas(64) float p[kMaxDecodeGroup][kDecodeKeys];
  alignas(64) float alpha[kMaxDecodeGroup];
  alignas(64) float qs[kMaxDecodeGroup][kDecodeMaxDim];  // the queries times the scale, once
  for (int64_t h = 0; h < group; ++h) {
    m[h] = _mm512_set1_ps(-INFINITY);
    l[h] = _mm512_setzero_ps();
    std::fill(out[h], out[h] + hd, 0.0f);
    for (int x = 0; x < NV; ++x)
      _mm512_store_ps(qs[h] + 16 * x,
                      _mm512_mul_ps(_mm512_loadu_ps(q[h] + 16 * x), _mm512_set1_ps(scale)));
  }
  for (int64_t j0 = 0; j0 < end; j0 += kDecodeKeys) {
    const int64_t nk = std::min(kDecodeKeys, end - j0);
    for (int64_t h = 0; h < group; ++h) {
      __m512 qv[NV];
      for (int x = 0; x < NV; ++x) qv[x] = _mm512_load_ps(qs[h] + 16 * x);
      const __m512 s = BlockScores<T, NV>(qv, k + j0 * hd, hd, nk);
      // Online softmax, all lanes holding the running max and sum.
      const __m512 m_new = _mm512_max_ps(m[h], _mm512_set1_ps(_mm512_reduce_max_ps(s)));
      const __m512 a = ExpNonPositive(_mm512_sub_ps(m[h], m_new));  // 0 on the first block
      const __m512 e = ExpNonPositive(_mm512_sub_ps(s, m_new));
      l[h] = _mm512_add_ps(_mm512_mul_ps(l[h], a), _mm512_set1_ps(_mm512_reduce_add_ps(e)));
      m[h] = m_new;
      _mm512_store_ps(p[h], e);
      alpha[h] = _mm_cvtss_f32(_mm512_castps512_ps128(a));
    }
    // Values: two heads at a time, their outputs in registers over the block's keys.
    for (int64_t h0 = 0; h0 < group; h0 += 2) {
      const bool two = h0 + 1 < group;
      __m512 o0[NV], o1[NV];
      for (int x = 0; x < NV; ++x) {
        o0[x] = _mm512_mul_ps(_mm512_loadu_ps(out[h0] + 16 * x), _mm512_set1_ps(alpha[h0]));
        o1[x] = two ? _mm512_mul_ps(_mm512_loadu_ps(out[h0 + 1] + 16 * x),
                                    _mm512_set1_ps(alpha[h0 + 1]))
                    : _mm512_setzero_ps();
      }
      for (int64_t j = 0; j < nk; ++j) {
        const T* vj = v + (j0 + j) * hd;
        const __m512 p0 = _mm512_set1_ps(p[h0][j]);
        const __m512 p1 = _mm512_set1_ps(two ? p[h0 + 1][j] : 0.0f);
        for (int x = 0; x < NV; ++x) {
          const __m512 vx = LoadRow16(vj + 16 * x);
          o0[x] = _mm512_fmadd_ps(p0, vx, o0[x]);
          o1[x] = _mm512_fmadd_ps(p1, vx, o1[x]);
        }
      }
      for (int x = 0; x < NV; ++x) {
        _mm512_storeu_ps(out[h0] + 16 * x, o0[x]);
        if (two) _mm512_storeu_ps(out[h0 + 1] + 16 * x, o1[x]);
      }
    }
  }
  for (int64_t h = 0; h < group; ++h) {
    const float sum = _mm_cvtss_f32(_mm512_castps512_ps128(l[h]));
    if (sum > 0.0f) {
      const __m512 inv = _mm512_set1_ps(1.0f / sum);
      for (int64_t x = 0; x < hd / 16; ++x)
        _mm512_storeu_ps(out[h] + 16 * x, _mm512_mul_ps(_mm512_loadu_ps(out[h] + 16 * x), inv));
    }
  }
}

// The kernel for one head size, on the cache's element type.
template <int NV>
void AttendDecodeElems(const float* const* q, float* const* out, int64_t group, const void* k,
                       const void* v, bool f16, int64_t end, float scale) {
  constexpr int64_t hd = 16 * NV;
  if (f16)
    AttendDecode<uint16_t, NV>(q, out, group, static_cast<const uint16_t*>(k),
                               static_cast<const uint16_t*>(v), end, hd, scale);
  else
    AttendDecode<float, NV>(q, out, group, static_cast<const float*>(k),
                            static_cast<const float*>(v), end, hd, scale);
}

bool AttendDecodeGroup(const float* const* q, float* const* out, int64_t group, const void* k,
                       const void* v, bool f16, int64_t end, int64_t hd, float scale) {
  if (group > kMaxDecodeGroup || end <= 0) return false;
  if (hd == 128)
    AttendDecodeElems<8>(q, out, group, k, v, f16, end, scale);
  else if (hd == 64)
    AttendDecodeElems<4>(q, out, group, k, v, f16, end, scale);
  else
    return false;
  return true;
}
#else
bool AttendDecodeGroup(const float* const*, float* const*, int64_t, const void*, const void*, bool,
                       int64_t, int64_t, float) {
  return false;
}
#endif

}  // namespace HWY_NAMESPACE
}  // namespace reel::ops::detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace reel::ops::detail {
HWY_EXPORT(FlashAttentionTile);
HWY_EXPORT(AttendDecodeGroup);

namespace {
constexpr int64_t pad16(int64_t n) {
  return (n + 15) / 16 * 16;
}  // 64-byte regions
// Rows padded for the widest target's row chunk (4 vectors of 16 lanes).
constexpr int64_t padded_rows(int64_t rows) {
  return (rows + 63) / 64 * 64;
}
}  // namespace

size_t flash_scratch_floats(int64_t rows, int64_t head_dim) {
  const int64_t rp = padded_rows(rows);
  return static_cast<size_t>(2 * pad16(head_dim * rp) + pad16(kFlashKeys * rp) +
                             2 * pad16(kFlashKeys * head_dim) + 4 * pad16(rp));
}

FlashScratch flash_scratch_layout(float* base, int64_t rows, int64_t head_dim) {
  const int64_t rp = padded_rows(rows);
  FlashScratch s;
  float* p = base;
  auto take = [&p](int64_t n) {
    float* r = p;
    p += pad16(n);
    return r;
  };
  s.qt = take(head_dim * rp);
  s.ot = take(head_dim * rp);
  s.st = take(kFlashKeys * rp);
  s.kbuf = take(kFlashKeys * head_dim);
  s.vbuf = take(kFlashKeys * head_dim);
  s.m = take(rp);
  s.l = take(rp);
  s.alpha = take(rp);
  s.lim = reinterpret_cast<int32_t*>(take(rp));
  return s;
}

void flash_attention_tile(const FlashTile& tile) {
  HWY_DYNAMIC_DISPATCH(FlashAttentionTile)(tile);
}

bool attend_decode_group(const float* const* q, float* const* out, int64_t group, const void* k,
                         const void* v, bool f16, int64_t end, int64_t head_dim, float scale) {
  return HWY_DYNAMIC_DISPATCH(AttendDecodeGroup)(q, out, group, k, v, f16, end, head_dim, scale);
}

}  // namespace reel::ops::detail
#endif
