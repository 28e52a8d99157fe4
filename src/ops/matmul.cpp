// Matmul kernels, compiled per Highway target.
//
// Quantized weights: each weight row is decoded once into int16 values plus one f32 multiplier
// per 32 elements (and one for the block minimum, if the type has one), in an L1-resident
// per-thread buffer. That row is then dotted with up to 4 activation rows at a time, the
// activations having been quantized to int8 per 32 values. The int16 x int8->int16 products
// are summed pairwise into int32 (madd), converted to f32 once per 32 elements and scaled by
// w_scale * x_scale. Decoding once per row is what makes prefill reuse the weights instead of
// being n GEMVs; for decode it costs one L1 store/load per element, which is cheap next to
// the DRAM read of the weights.
//
// Float weights (F32/F16/BF16, and the dequantize fallback for other types): 4 weight rows x
// 4 activation rows register tile of f32 FMAs, exact f32 accumulation.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/matmul.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>

#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "ops/kernels.h"

HWY_BEFORE_NAMESPACE();
namespace reel::ops::detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Decoding works on at most 16 int16 lanes: that matches the 16-element halves and groups
// of the ggml block layouts (nibble halves of Q4_0, 16-element scale groups of Q6_K).
using D16 = hn::CappedTag<int16_t, 16>;
using DU16 = hn::RebindToUnsigned<D16>;
using DU8 = hn::Rebind<uint8_t, D16>;
using DI8 = hn::Rebind<int8_t, D16>;

// Dot products use up to one whole 32-element block per vector (AVX-512: one instruction).
using DW = hn::CappedTag<int16_t, kQBlock>;
using DWI8 = hn::Rebind<int8_t, DW>;
using DW32 = hn::Repartition<int32_t, DW>;
using DWF = hn::Repartition<float, DW>;

HWY_INLINE float F16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return half_to_float(h);
}

HWY_INLINE hn::Vec<D16> U8ToI16(const uint8_t* p) {
  return hn::BitCast(D16(), hn::PromoteTo(DU16(), hn::LoadU(DU8(), p)));
}

// Bit j of a 16-bit word as lane j: the high-bit masks of Q5_0/Q5_1.
alignas(64) constexpr uint16_t kBit[16] = {1,     2,     4,     8,     16,    32,   64,   128,
                                           256,   512,   1024,  2048,  4096,  8192, 16384, 32768};

// 16 (the fifth bit) in lanes whose bit in `bits` (lane j <-> bit p+j) is set.
HWY_INLINE hn::Vec<D16> HighBit(uint16_t bits, size_t p) {
  const D16 d;
  const DU16 du;
  const auto set = hn::TestBit(hn::Set(du, bits), hn::Load(du, kBit + p));
  return hn::IfThenElseZero(hn::RebindMask(d, set), hn::Set(d, 16));
}

// ---- Row decoders: one ggml row -> wq (int16 per element), wd/wm (per 32 elements). ----

void DecodeQ8_0(const uint8_t* src, int64_t nb, int16_t* wq, float* wd, float* wm) {
  const D16 d;
  const size_t N = hn::Lanes(d);
  for (int64_t b = 0; b < nb; ++b, src += 34, wq += 32) {
    wd[b] = F16(src);
    wm[b] = 0.0f;
    for (size_t p = 0; p < 32; p += N) {
      hn::Store(hn::PromoteTo(d, hn::LoadU(DI8(), reinterpret_cast<const int8_t*>(src + 2 + p))), d,
                wq + p);
    }
  }
}

// Q4_0 (18 bytes: d, qs[16]) and Q4_1 (20 bytes: d, m, qs[16]): low nibbles are elements
// 0..15, high nibbles 16..31. Q4_0 is centred (q - 8); Q4_1 adds m * sum(x) instead.
template <bool kHasMin>
void DecodeQ4(const uint8_t* src, int64_t nb, int16_t* wq, float* wd, float* wm) {
  const D16 d;
  const size_t N = hn::Lanes(d);
  const int bytes = kHasMin ? 20 : 18;
  const auto offset = hn::Set(d, kHasMin ? 0 : 8);
  const auto lo4 = hn::Set(d, 15);
  for (int64_t b = 0; b < nb; ++b, src += bytes, wq += 32) {
    wd[b] = F16(src);
    wm[b] = kHasMin ? F16(src + 2) : 0.0f;
    const uint8_t* qs = src + (kHasMin ? 4 : 2);
    for (size_t p = 0; p < 16; p += N) {
      const auto v = U8ToI16(qs + p);
      hn::Store(hn::Sub(hn::And(v, lo4), offset), d, wq + p);
      hn::Store(hn::Sub(hn::ShiftRight<4>(v), offset), d, wq + 16 + p);
    }
  }
}

// Q5_0 (22 bytes: d, qh[4], qs[16]) and Q5_1 (24 bytes: d, m, qh[4], qs[16]): bit j of qh is
// the fifth bit of element j.
template <bool kHasMin>
void DecodeQ5(const uint8_t* src, int64_t nb, int16_t* wq, float* wd, float* wm) {
  const D16 d;
  const size_t N = hn::Lanes(d);
  const int bytes = kHasMin ? 24 : 22;
  const auto offset = hn::Set(d, kHasMin ? 0 : 16);
  const auto lo4 = hn::Set(d, 15);
  for (int64_t b = 0; b < nb; ++b, src += bytes, wq += 32) {
    wd[b] = F16(src);
    wm[b] = kHasMin ? F16(src + 2) : 0.0f;
    uint32_t qh;
    std::memcpy(&qh, src + (kHasMin ? 4 : 2), 4);
    const uint8_t* qs = src + (kHasMin ? 8 : 6);
    for (size_t p = 0; p < 16; p += N) {
      const auto v = U8ToI16(qs + p);
      const auto lo = hn::Or(hn::And(v, lo4), HighBit(static_cast<uint16_t>(qh), p));
      const auto hi = hn::Or(hn::ShiftRight<4>(v), HighBit(static_cast<uint16_t>(qh >> 16), p));
      hn::Store(hn::Sub(lo, offset), d, wq + p);
      hn::Store(hn::Sub(hi, offset), d, wq + 16 + p);
    }
  }
}

// 6-bit scale and min of sub-block j of a Q4_K/Q5_K super-block (ggml get_scale_min_k4).
HWY_INLINE void ScaleMinK4(int j, const uint8_t* s, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K (144 bytes: d, dmin, scales[12], qs[128]) and Q5_K (176 bytes: d, dmin, scales[12],
// qh[32], qs[128]). Chunk c of 64: low nibbles of qs[32c..] are sub-block 2c, high nibbles
// 2c+1; for Q5_K bit 2c / 2c+1 of qh[l] is the fifth bit. x = d*sc*q - dmin*m.
template <bool kFiveBit>
void DecodeQK(const uint8_t* src, int64_t nsb, int16_t* wq, float* wd, float* wm) {
  const D16 d;
  const size_t N = hn::Lanes(d);
  const int bytes = kFiveBit ? 176 : 144;
  const auto lo4 = hn::Set(d, 15);
  const auto one = hn::Set(d, 1);
  for (int64_t sb = 0; sb < nsb; ++sb, src += bytes, wq += 256, wd += 8, wm += 8) {
    const float dd = F16(src), dmin = F16(src + 2);
    const uint8_t* scales = src + 4;
    const uint8_t* qh = src + 16;
    const uint8_t* qs = src + (kFiveBit ? 48 : 16);
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      ScaleMinK4(j, scales, &sc, &m);
      wd[j] = dd * static_cast<float>(sc);
      wm[j] = -dmin * static_cast<float>(m);
    }
    for (int c = 0; c < 4; ++c) {
      for (size_t p = 0; p < 32; p += N) {
        const auto v = U8ToI16(qs + 32 * c + p);
        auto lo = hn::And(v, lo4);
        auto hi = hn::ShiftRight<4>(v);
        if (kFiveBit) {
          const auto h = U8ToI16(qh + p);
          lo = hn::Or(lo, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(h, 2 * c), one)));
          hi = hn::Or(hi, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(h, 2 * c + 1), one)));
        }
        hn::Store(lo, d, wq + 64 * c + p);
        hn::Store(hi, d, wq + 64 * c + 32 + p);
      }
    }
  }
}

// Q6_K (210 bytes: ql[128], qh[64], int8 scales[16], d). The 16-element scale is folded into
// the int16 value: |q-32| <= 32 and |sc| <= 128 give |value| <= 4096, so pairwise madd sums
// stay far inside int32.
void DecodeQ6K(const uint8_t* src, int64_t nsb, int16_t* wq, float* wd, float* wm) {
  const D16 d;
  const size_t N = hn::Lanes(d);
  const auto lo4 = hn::Set(d, 15);
  const auto three = hn::Set(d, 3);
  const auto k32 = hn::Set(d, 32);
  for (int64_t sb = 0; sb < nsb; ++sb, src += 210, wq += 256, wd += 8, wm += 8) {
    const float dd = F16(src + 208);
    const int8_t* scales = reinterpret_cast<const int8_t*>(src + 192);
    for (int j = 0; j < 8; ++j) {
      wd[j] = dd;
      wm[j] = 0.0f;
    }
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = src + 64 * half;
      const uint8_t* qh = src + 128 + 32 * half;
      const int8_t* sc = scales + 8 * half;
      int16_t* out = wq + 128 * half;
      for (size_t p = 0; p < 32; p += N) {
        const auto a = U8ToI16(ql + p);
        const auto b = U8ToI16(ql + 32 + p);
        const auto h = U8ToI16(qh + p);
        const int g = static_cast<int>(p / 16);  // N <= 16, so a piece lies in one group
        auto emit = [&](hn::Vec<D16> q, int k) {
          const auto v = hn::Mul(hn::Sub(q, k32), hn::Set(d, sc[g + 2 * k]));
          hn::Store(v, d, out + 32 * k + p);
        };
        emit(hn::Or(hn::And(a, lo4), hn::ShiftLeft<4>(hn::And(h, three))), 0);
        emit(hn::Or(hn::And(b, lo4), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(h), three))), 1);
        emit(hn::Or(hn::ShiftRight<4>(a), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(h), three))),
             2);
        emit(hn::Or(hn::ShiftRight<4>(b), hn::ShiftLeft<4>(hn::ShiftRight<6>(h))), 3);
      }
    }
  }
}

void DecodeRow(GgmlType type, const uint8_t* src, int64_t cols, int16_t* wq, float* wd, float* wm) {
  switch (type) {
    case GgmlType::Q8_0: return DecodeQ8_0(src, cols / 32, wq, wd, wm);
    case GgmlType::Q4_0: return DecodeQ4<false>(src, cols / 32, wq, wd, wm);
    case GgmlType::Q4_1: return DecodeQ4<true>(src, cols / 32, wq, wd, wm);
    case GgmlType::Q5_0: return DecodeQ5<false>(src, cols / 32, wq, wd, wm);
    case GgmlType::Q5_1: return DecodeQ5<true>(src, cols / 32, wq, wd, wm);
    case GgmlType::Q4_K: return DecodeQK<false>(src, cols / 256, wq, wd, wm);
    case GgmlType::Q5_K: return DecodeQK<true>(src, cols / 256, wq, wd, wm);
    case GgmlType::Q6_K: return DecodeQ6K(src, cols / 256, wq, wd, wm);
    default: return;
  }
}

// Dot of one decoded weight row with NX quantized activation rows.
template <int NX>
HWY_INLINE void DotIntTile(const int16_t* HWY_RESTRICT wq, const float* HWY_RESTRICT wd,
                           const float* HWY_RESTRICT wm, bool has_min, int64_t nb,
                           const QuantizedX& x, int64_t x0, float* out) {
  const DW dw;
  const DW32 d32;
  const DWF df;
  const size_t N = hn::Lanes(dw);
  const int8_t* xq[NX];
  const float* xd[NX];
  hn::Vec<DWF> acc[NX];
  for (int i = 0; i < NX; ++i) {
    xq[i] = x.q + (x0 + i) * x.cols;
    xd[i] = x.d + (x0 + i) * (x.cols / kQBlock);
    acc[i] = hn::Zero(df);
  }
  for (int64_t b = 0; b < nb; ++b) {
    hn::Vec<DW32> s0[NX], s1[NX];
    for (int i = 0; i < NX; ++i) s0[i] = s1[i] = hn::Zero(d32);
    for (size_t p = 0; p < kQBlock; p += N) {
      const auto w = hn::Load(dw, wq + b * kQBlock + p);
      for (int i = 0; i < NX; ++i) {
        const auto xv = hn::PromoteTo(dw, hn::LoadU(DWI8(), xq[i] + b * kQBlock + p));
        s0[i] = hn::ReorderWidenMulAccumulate(d32, w, xv, s0[i], s1[i]);
      }
    }
    for (int i = 0; i < NX; ++i) {
      const auto sum = hn::ConvertTo(df, hn::Add(s0[i], s1[i]));
      acc[i] = hn::MulAdd(sum, hn::Set(df, wd[b] * xd[i][b]), acc[i]);
    }
  }
  for (int i = 0; i < NX; ++i) {
    float r = hn::GetLane(hn::SumOfLanes(df, acc[i]));
    if (has_min) {
      const float* xs = x.s + (x0 + i) * (x.cols / kQBlock);
      for (int64_t b = 0; b < nb; ++b) r += wm[b] * xs[b];
    }
    out[i] = r;
  }
}

// Decoding a row and dotting it alternate; without software prefetch the DRAM stream idles
// during the dot phase (measured: ~45% of the read bandwidth for Q8_0 GEMV on one core).
constexpr int64_t kPrefetchRows = 2;
HWY_INLINE void PrefetchRow(const uint8_t* p, size_t bytes, bool valid) {
  if (!valid) return;
  for (size_t off = 0; off < bytes; off += 64) hwy::Prefetch(p + off);
}

void MatmulIntRows(GgmlType type, const uint8_t* w, size_t row_stride, int64_t rows_total,
                   int64_t cols, int64_t r0, int64_t r1, const QuantizedX& x, int64_t nx, float* y, int64_t ldy,
                   const RowScratch& s) {
  const int64_t nb = cols / kQBlock;
  const bool has_min = type == GgmlType::Q4_1 || type == GgmlType::Q5_1 ||
                       type == GgmlType::Q4_K || type == GgmlType::Q5_K;
  float out[4];
  for (int64_t r = r0; r < r1; ++r) {
    PrefetchRow(w + (r + kPrefetchRows) * row_stride, row_stride, r + kPrefetchRows < rows_total);
    DecodeRow(type, w + r * row_stride, cols, s.wq, s.wd, s.wm);
    int64_t i = 0;
    for (; i + 4 <= nx; i += 4) {
      DotIntTile<4>(s.wq, s.wd, s.wm, has_min, nb, x, i, out);
      for (int k = 0; k < 4; ++k) y[(i + k) * ldy + r] = out[k];
    }
    for (; i < nx; ++i) {
      DotIntTile<1>(s.wq, s.wd, s.wm, has_min, nb, x, i, out);
      y[i * ldy + r] = out[0];
    }
  }
}

// ---- Activation quantization: d = max|x|/127, q = round(x/d). ----

void QuantizeRowsQ8(const float* x, int64_t n, int64_t cols, int8_t* q, float* dq, float* sq) {
  const hn::CappedTag<float, kQBlock> df;
  const hn::Rebind<int32_t, decltype(df)> di;
  const hn::Rebind<int16_t, decltype(df)> d16;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const size_t N = hn::Lanes(df);
  const int64_t nb = n * cols / kQBlock;
  for (int64_t b = 0; b < nb; ++b, x += kQBlock, q += kQBlock) {
    auto vmax = hn::Zero(df);
    for (size_t p = 0; p < kQBlock; p += N) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, x + p)));
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    const float d = amax / 127.0f;
    const auto id = hn::Set(df, d > 0.0f ? 1.0f / d : 0.0f);
    auto isum = hn::Zero(di);
    for (size_t p = 0; p < kQBlock; p += N) {
      // |x*id| <= 127 up to rounding of id, so the clamp only guards against 127.00001.
      auto qi = hn::NearestInt(hn::Mul(hn::LoadU(df, x + p), id));
      qi = hn::Min(hn::Max(qi, hn::Set(di, -127)), hn::Set(di, 127));
      isum = hn::Add(isum, qi);
      hn::StoreU(hn::DemoteTo(d8, qi), d8, q + p);
    }
    dq[b] = d;
    sq[b] = d * static_cast<float>(hn::GetLane(hn::SumOfLanes(di, isum)));
  }
  (void)d16;
}

// ---- Float weights ----

using DF = hn::ScalableTag<float>;

// Row r of a float-type weight as f32: F32 in place, F16/BF16 converted into `buf`, other types
// through the reference dequantization (the Q2_K/Q3_K fallback).
const float* FloatRow(GgmlType type, const uint8_t* src, int64_t cols, float* buf) {
  const DF df;
  const size_t N = hn::Lanes(df);
  int64_t k = 0;
  switch (type) {
    case GgmlType::F32: return reinterpret_cast<const float*>(src);
    case GgmlType::F16: {
      const hn::Rebind<hwy::float16_t, DF> dh;
      const auto* h = reinterpret_cast<const hwy::float16_t*>(src);
      for (; k + static_cast<int64_t>(N) <= cols; k += N) {
        hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, h + k)), df, buf + k);
      }
      for (; k < cols; ++k) buf[k] = F16(src + 2 * k);
      return buf;
    }
    case GgmlType::BF16: {
      const hn::Rebind<uint16_t, DF> d16;
      const hn::RebindToUnsigned<DF> du32;
      const auto* h = reinterpret_cast<const uint16_t*>(src);
      for (; k + static_cast<int64_t>(N) <= cols; k += N) {
        const auto u = hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(d16, h + k)));
        hn::StoreU(hn::BitCast(df, u), df, buf + k);
      }
      for (; k < cols; ++k) {
        const uint32_t u = uint32_t{h[k]} << 16;
        std::memcpy(buf + k, &u, 4);
      }
      return buf;
    }
    default:
      dequantize_row_ref(type, src, buf, cols);
      return buf;
  }
}

// MR weight rows x NX activation rows of f32 dots: MR+NX loads feed MR*NX FMAs.
template <int MR, int NX>
void DotFloatTile(const float* const* w, const float* x, int64_t ldx, int64_t cols, float* y,
                  int64_t ldy) {
  const DF df;
  const size_t N = hn::Lanes(df);
  hn::Vec<DF> acc[MR][NX];
  for (int r = 0; r < MR; ++r)
    for (int i = 0; i < NX; ++i) acc[r][i] = hn::Zero(df);
  int64_t k = 0;
  for (; k + static_cast<int64_t>(N) <= cols; k += N) {
    hn::Vec<DF> xv[NX];
    for (int i = 0; i < NX; ++i) xv[i] = hn::LoadU(df, x + i * ldx + k);
    for (int r = 0; r < MR; ++r) {
      const auto wv = hn::LoadU(df, w[r] + k);
      for (int i = 0; i < NX; ++i) acc[r][i] = hn::MulAdd(wv, xv[i], acc[r][i]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int i = 0; i < NX; ++i) {
      float s = hn::GetLane(hn::SumOfLanes(df, acc[r][i]));
      for (int64_t j = k; j < cols; ++j) s = std::fma(w[r][j], x[i * ldx + j], s);
      y[i * ldy + r] = s;
    }
  }
}

template <int MR>
void DotFloatRows(const float* const* w, const float* x, int64_t nx, int64_t cols, float* y,
                  int64_t ldy) {
  int64_t i = 0;
  for (; i + 4 <= nx; i += 4) DotFloatTile<MR, 4>(w, x + i * cols, cols, cols, y + i * ldy, ldy);
  for (; i < nx; ++i) DotFloatTile<MR, 1>(w, x + i * cols, cols, cols, y + i * ldy, ldy);
}

void MatmulFloatRows(GgmlType type, const uint8_t* w, size_t row_stride, int64_t rows_total,
                     int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t nx, float* y,
                     int64_t ldy, const RowScratch& s) {
  for (int64_t r = r0; r < r1; r += kFloatRowTile) {
    const int mr = static_cast<int>(std::min<int64_t>(kFloatRowTile, r1 - r));
    for (int64_t k = r + kFloatRowTile; k < r + 2 * kFloatRowTile; ++k) {
      PrefetchRow(w + k * row_stride, row_stride, k < rows_total);
    }
    const float* rows[kFloatRowTile];
    for (int k = 0; k < mr; ++k) {
      rows[k] = FloatRow(type, w + (r + k) * row_stride, cols, s.wf + k * cols);
    }
    float* yr = y + r;
    switch (mr) {
      case 4: DotFloatRows<4>(rows, x, nx, cols, yr, ldy); break;
      case 3: DotFloatRows<3>(rows, x, nx, cols, yr, ldy); break;
      case 2: DotFloatRows<2>(rows, x, nx, cols, yr, ldy); break;
      default: DotFloatRows<1>(rows, x, nx, cols, yr, ldy); break;
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace reel::ops::detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace reel::ops::detail {
HWY_EXPORT(MatmulIntRows);
HWY_EXPORT(MatmulFloatRows);
HWY_EXPORT(QuantizeRowsQ8);

bool has_int_path(GgmlType type) {
  switch (type) {
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K: return true;
    default: return false;
  }
}

bool has_float_path(GgmlType type) {
  return type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16;
}

void quantize_rows_q8(const float* x, int64_t n, int64_t cols, int8_t* q, float* d, float* s) {
  HWY_DYNAMIC_DISPATCH(QuantizeRowsQ8)(x, n, cols, q, d, s);
}

void matmul_int_rows(GgmlType type, const uint8_t* w, size_t row_stride, int64_t rows_total,
                     int64_t cols, int64_t r0, int64_t r1, const QuantizedX& x, int64_t nx,
                     float* y, int64_t ldy, const RowScratch& scratch) {
  HWY_DYNAMIC_DISPATCH(MatmulIntRows)
  (type, w, row_stride, rows_total, cols, r0, r1, x, nx, y, ldy, scratch);
}

void matmul_float_rows(GgmlType type, const uint8_t* w, size_t row_stride, int64_t rows_total,
                       int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t nx, float* y,
                       int64_t ldy, const RowScratch& scratch) {
  HWY_DYNAMIC_DISPATCH(MatmulFloatRows)
  (type, w, row_stride, rows_total, cols, r0, r1, x, nx, y, ldy, scratch);
}
}  // namespace reel::ops::detail
#endif
