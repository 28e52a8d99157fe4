// Matmul kernels, compiled per Highway target.
//
// Quantized weights, few activation rows (2..15): each weight row is decoded once into int16
// values plus one f32 multiplier per 32 elements (and one for the block minimum, if the type
// has one), in an L1-resident per-thread buffer, then dotted with up to 4 activation rows at a
// time. Activations are quantized to int16 per 32 values (kernels.h: QuantizedX, kQMax); int8
// activations cost ~0.02 mean abs logit error on the small test models, int16 ~100x less.
// The int16 x int16 products are summed pairwise into int32 (madd), converted to f32 once per
// 32 elements and scaled by w_scale * x_scale. Decode (one activation row) skips the buffer:
// see "Fused GEMV" below; Q4_K and Q6_K decode on x86 AVX2 and up (AVX3_DL included) take int8
// activations per 32 values instead (vpmaddubsw, or vpdpbusd on AVX3_DL; kquant_int8_gemv,
// matmul_x86-inl.h). From kPanelMinRows rows on, quantized weights are decoded to f32
// panels instead (MatmulFloatPanels): faster, and exact in the activations; except Q4_K and
// Q6_K on AVX2 and up, which take int8 activations there (MatmulKQuantInt8, matmul_x86-inl.h),
// and Q8_0 on AVX3_DL, which takes the few-row kernels' int16 activations on int16 panels
// (MatmulQ8_0Int16).
//
// Float weights (F32/F16/BF16, and the dequantize fallback for other types), few activation
// rows: 4 weight rows x 4 activation rows register tile of f32 FMAs. Many activation rows (any
// weight type): weight panels converted to f32 and an outer-product microkernel, see
// MatmulFloatPanels. Both accumulate in f32.
//
// This file holds the dispatch and every portable (Highway) kernel; kernels written for one
// architecture's instructions live in per-architecture headers that this file includes in
// each target pass: matmul_x86-inl.h (AVX-512 VNNI GEMV, AVX2 int8 Q4_K/Q6_K GEMV) and matmul_arm-inl.h (aarch64 SDOT
// GEMV and Q8_0 few-rows kernels, chosen at run time from the CPU's dotprod bit, and an I8MM
// SMMLA kernel for Q8_0 few rows, 2 weight rows x 2 or 4 activation rows, where the CPU also
// has i8mm), and at its end the Q4_K and Q6_K prefill kernels for AVX2 and up (int8 activations
// per 256 values, maddubs/madd; MatmulKQuantInt8). Apart from those, prefill (kPanelMinRows rows on)
// decodes quantized weights to f32 panels, and the other types' few rows dot decoded int16
// weights (Q6_K's, with the scale folded in, exceed int8).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/matmul.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <atomic>
#include <cmath>

#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "ops/cpu_features.h"
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
using DW32 = hn::Repartition<int32_t, DW>;
using DWF = hn::Repartition<float, DW>;

HWY_INLINE float F16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return half_to_float(h);
}

// One fp16 scale: F16C where the target has it (AVX2 and up), else the bit-exact scalar
// conversion (about ten integer ops, which showed up in the per-block cost of the GEMV).
HWY_INLINE float F16Scale(const uint8_t* p) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
#else
  return F16(p);
#endif
}

// Q4_K/Q5_K's 12 scale bytes (p = block + 4) as the 8 sub-block scales and the 8 mins, byte j
// of sc / m (little-endian) for sub-block j; every Q4_K/Q5_K kernel unpacks them here: sub-blocks 0-3 keep the low 6 bits of bytes 0-3 (scales) / 4-7
// (mins); 4-7 take their low 4 bits from bytes 8-11 (scales low nibble, mins high nibble) and
// their top 2 bits from the top of bytes 0-3 / 4-7. Word-wide, four sub-blocks per operation.
struct Q4KScales {
  uint64_t sc, m;
};
HWY_INLINE Q4KScales UnpackQ4KScales(const uint8_t* p) {
  uint32_t a, b, c;
  std::memcpy(&a, p, 4);
  std::memcpy(&b, p + 4, 4);
  std::memcpy(&c, p + 8, 4);
  const uint32_t sc_hi = (c & 0x0f0f0f0fu) | (((a >> 6) & 0x03030303u) << 4);
  const uint32_t m_hi = ((c >> 4) & 0x0f0f0f0fu) | (((b >> 6) & 0x03030303u) << 4);
  return {(a & 0x3f3f3f3fu) | uint64_t{sc_hi} << 32, (b & 0x3f3f3f3fu) | uint64_t{m_hi} << 32};
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
  const int16_t* xq[NX];
  const float* xd[NX];
  hn::Vec<DWF> acc[NX];
  for (int i = 0; i < NX; ++i) {
    xq[i] = x.v + (x0 + i) * x.cols;
    xd[i] = x.d + (x0 + i) * (x.cols / kQBlock);
    acc[i] = hn::Zero(df);
  }
  for (int64_t b = 0; b < nb; ++b) {
    hn::Vec<DW32> s0[NX], s1[NX];
    for (int i = 0; i < NX; ++i) s0[i] = s1[i] = hn::Zero(d32);
    for (size_t p = 0; p < kQBlock; p += N) {
      const auto w = hn::Load(dw, wq + b * kQBlock + p);
      for (int i = 0; i < NX; ++i) {
        // |w| <= 4096 (Q6_K) and |v| <= kQMax: the block sum stays below 2^31 (kernels.h).
        const auto xv = hn::LoadU(dw, xq[i] + b * kQBlock + p);
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

// ---- Fused GEMV: one activation row ----
//
// With one activation row every weight is used once, so the decode-to-L1 round trip above is
// pure overhead: measured, it held Q8_0 GEMV to ~40% of the DRAM bandwidth on 2 threads. Here
// the quant bits go from the loaded bytes straight into int32 dot products with the int16
// activations, one 32-element block (or 16-element scale group) at a time, and each block's
// int32 sum is scaled into an f32 accumulator. Unsigned quants (4/5/6-bit) are dotted as they
// are stored and the offset (-8, -16, the K-quant mins) is applied through the activation block
// sums x.s, like the minimum of Q4_1; Q8_0 and Q6_K-minus-32 are signed.
//
// The kernels below widen to int16 and multiply-add pairs (vpmaddwd / smlal) on every target;
// AVX3_DL (Ice Lake and later) has its own VNNI kernels for most types (matmul_x86-inl.h).

#if HWY_TARGET != HWY_SCALAR
using DB = hn::CappedTag<int8_t, 32>;  // one 32-element block (two vectors on 128-bit targets)
using DG = hn::CappedTag<int8_t, 16>;  // a 16-element half block / Q6_K scale group
template <class D8>
using I32For = hn::Repartition<int32_t, D8>;

// s0 (+ s1) += w * x for unsigned w and int16 activations x (as many as w has lanes): only the
// total over all lanes of s0 + s1 is defined. Each int32 lane sums at most one block's
// products, |w| <= 255 here (<= 31 in practice), far inside int32 for |x| <= kQMax.
template <class D8>
HWY_INLINE void DotU8(D8, hn::Vec<hn::RebindToUnsigned<D8>> w, const int16_t* x,
                      hn::Vec<I32For<D8>>& s0, hn::Vec<I32For<D8>>& s1) {
  const hn::Half<D8> dh;
  const hn::RebindToUnsigned<decltype(dh)> duh;
  const hn::Rebind<int16_t, decltype(dh)> d16;
  const hn::RebindToUnsigned<decltype(d16)> du16;
  const I32For<D8> d32;
  s0 = hn::ReorderWidenMulAccumulate(d32,
                                     hn::BitCast(d16, hn::PromoteTo(du16, hn::LowerHalf(duh, w))),
                                     hn::LoadU(d16, x), s0, s1);
  s0 = hn::ReorderWidenMulAccumulate(d32,
                                     hn::BitCast(d16, hn::PromoteTo(du16, hn::UpperHalf(duh, w))),
                                     hn::LoadU(d16, x + hn::Lanes(dh)), s0, s1);
}

// The same for signed w.
template <class D8>
HWY_INLINE void DotI8(D8, hn::Vec<D8> w, const int16_t* x, hn::Vec<I32For<D8>>& s0,
                      hn::Vec<I32For<D8>>& s1) {
  const hn::Half<D8> dh;
  const hn::Rebind<int16_t, decltype(dh)> d16;
  const I32For<D8> d32;
  s0 = hn::ReorderWidenMulAccumulate(d32, hn::PromoteTo(d16, hn::LowerHalf(dh, w)),
                                     hn::LoadU(d16, x), s0, s1);
  s0 = hn::ReorderWidenMulAccumulate(d32, hn::PromoteTo(d16, hn::UpperHalf(dh, w)),
                                     hn::LoadU(d16, x + hn::Lanes(dh)), s0, s1);
}

// acc += (s0 + s1) as f32 * scale, in the f32 lanes matching the int32 ones.
template <class D32>
HWY_INLINE hn::Vec<hn::Rebind<float, D32>> ScaleAdd(D32, hn::Vec<D32> s0, hn::Vec<D32> s1,
                                                    float scale,
                                                    hn::Vec<hn::Rebind<float, D32>> acc) {
  const hn::Rebind<float, D32> df;
  return hn::MulAdd(hn::ConvertTo(df, hn::Add(s0, s1)), hn::Set(df, scale), acc);
}

// One row of each type against one quantized activation row x (q, d, s as in QuantizedX).
// Returns the f32 dot.

// The x arguments: xq = QuantizedX::v (int16; portable kernels), xh/xl = the int8 planes (VNNI
// kernels), xd, xs per block.
float GemvRowQ8_0(const uint8_t* w, int64_t nb, const int16_t* xq, const int8_t*, const uint8_t*,
                  const float* xd, const float*) {
  const DB d8;
  const I32For<DB> d32;
  const hn::Rebind<float, I32For<DB>> df;
  const size_t N = hn::Lanes(d8);
  auto block = [&](const uint8_t* blk, const int16_t* x, float xscale, hn::Vec<decltype(df)> acc) {
    auto s0 = hn::Zero(d32), s1 = hn::Zero(d32);
    const auto* q = reinterpret_cast<const int8_t*>(blk + 2);
    for (size_t p = 0; p < kQBlock; p += N) {
      DotI8(d8, hn::LoadU(d8, q + p), x + p, s0, s1);
    }
    return ScaleAdd(d32, s0, s1, F16Scale(blk) * xscale, acc);
  };
  // Two blocks per step into two accumulators: one chain of dependent FMAs (4 cycles each)
  // would bound the loop. (An accumulator array indexed by b & 1 lands on the stack.)
  auto acc0 = hn::Zero(df), acc1 = hn::Zero(df);
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 68, xq += 2 * kQBlock) {
    acc0 = block(w, xq, xd[b], acc0);
    acc1 = block(w + 34, xq + kQBlock, xd[b + 1], acc1);
  }
  if (b < nb) acc0 = block(w, xq, xd[b], acc0);
  return hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
}

// One Q8_0 weight row against NX activation rows (x0 .. x0 + NX - 1), for batched decoding:
// each weight block is loaded and widened once for all rows. Per row, the arithmetic is
// GemvRowQ8_0's exactly (the same products in the same int32 lanes, the same two alternating
// f32 accumulators), so a sequence's logits do not change when other sequences' tokens share
// its batch (below the panel kernel's row count).
template <int NX>
HWY_INLINE void GemvRowsQ8_0(const uint8_t* w, int64_t nb, const QuantizedX& x, int64_t x0,
                             float* out) {
  const DB d8;
  const I32For<DB> d32;
  const hn::Rebind<float, I32For<DB>> df;
  const size_t N = hn::Lanes(d8);
  const int16_t* xq[NX];
  const float* xd[NX];
  // Even blocks into acc0, odd ones into acc1, as GemvRowQ8_0 does; named arrays indexed by
  // constants only, so that they stay in registers (an array indexed by b & 1 is spilled).
  hn::Vec<decltype(df)> acc0[NX], acc1[NX];
  for (int i = 0; i < NX; ++i) {
    xq[i] = x.v + (x0 + i) * x.cols;
    xd[i] = x.d + (x0 + i) * (x.cols / kQBlock);
    acc0[i] = acc1[i] = hn::Zero(df);
  }
  auto block = [&](const uint8_t* blk, int64_t b, hn::Vec<decltype(df)>* acc) {
    const auto* q = reinterpret_cast<const int8_t*>(blk + 2);
    const float wscale = F16Scale(blk);
    hn::Vec<decltype(d32)> s0[NX], s1[NX];
    for (int i = 0; i < NX; ++i) s0[i] = s1[i] = hn::Zero(d32);
    for (size_t p = 0; p < kQBlock; p += N) {
      const auto wv = hn::LoadU(d8, q + p);
      for (int i = 0; i < NX; ++i) DotI8(d8, wv, xq[i] + b * kQBlock + p, s0[i], s1[i]);
    }
    for (int i = 0; i < NX; ++i) acc[i] = ScaleAdd(d32, s0[i], s1[i], wscale * xd[i][b], acc[i]);
  };
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 68) {
    block(w, b, acc0);
    block(w + 34, b + 1, acc1);
  }
  if (b < nb) block(w, b, acc0);
  for (int i = 0; i < NX; ++i) out[i] = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0[i], acc1[i])));
}

// Q4_0/Q4_1 (kFive = false) and Q5_0/Q5_1: two 16-element halves per block.
template <bool kFive, bool kHasMin>
float GemvRowQ4Q5(const uint8_t* w, int64_t nb, const int16_t* xq, const int8_t*, const uint8_t*,
                  const float* xd, const float* xs) {
  const DG d8;
  const hn::RebindToUnsigned<DG> du8;
  const I32For<DG> d32;
  const hn::Rebind<float, I32For<DG>> df;
  const int bytes = 18 + (kFive ? 4 : 0) + (kHasMin ? 2 : 0);
  const float offset = kFive ? 16.0f : 8.0f;
  const auto lo4 = hn::Set(du8, 15);
  const auto bit4 = hn::Set(du8, 16);
  float min_sum = 0.0f;
  auto block = [&](const uint8_t* blk, const int16_t* x, int64_t b, hn::Vec<decltype(df)> acc) {
    const float d = F16Scale(blk);
    const uint8_t* qh = blk + (kHasMin ? 4 : 2);
    const uint8_t* qs = qh + (kFive ? 4 : 0);
    const auto v = hn::LoadU(du8, qs);
    auto lo = hn::And(v, lo4);
    auto hi = hn::ShiftRight<4>(v);
    if constexpr (kFive) {
      lo = hn::Or(lo, hn::IfThenElseZero(hn::LoadMaskBits(du8, qh), bit4));
      hi = hn::Or(hi, hn::IfThenElseZero(hn::LoadMaskBits(du8, qh + 2), bit4));
    }
    auto s0 = hn::Zero(d32), s1 = hn::Zero(d32);
    DotU8(d8, lo, x, s0, s1);
    DotU8(d8, hi, x + 16, s0, s1);
    min_sum += (kHasMin ? F16Scale(blk + 2) : -offset * d) * xs[b];
    return ScaleAdd(d32, s0, s1, d * xd[b], acc);
  };
  // Two blocks per step into two accumulators, as in GemvRowQ8_0.
  auto acc0 = hn::Zero(df), acc1 = hn::Zero(df);
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * bytes, xq += 2 * kQBlock) {
    acc0 = block(w, xq, b, acc0);
    acc1 = block(w + bytes, xq + kQBlock, b + 1, acc1);
  }
  if (b < nb) acc0 = block(w, xq, b, acc0);
  return hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1))) + min_sum;
}

// Q4_K (kFive = false) and Q5_K. x = d*sc*q - dmin*m per 32-element sub-block.
template <bool kFive>
float GemvRowQK(const uint8_t* w, int64_t nsb, const int16_t* xq, const int8_t*, const uint8_t*,
                const float* xd, const float* xs) {
  const DB d8;
  const hn::RebindToUnsigned<DB> du8;
  const I32For<DB> d32;
  const hn::Rebind<float, I32For<DB>> df;
  const size_t N = hn::Lanes(d8);
  const int bytes = kFive ? 176 : 144;
  const auto lo4 = hn::Set(du8, 15);
  const auto bit4 = hn::Set(du8, 16);
  hn::Vec<decltype(df)> acc[2] = {hn::Zero(df), hn::Zero(df)};
  float min_sum = 0.0f;
  for (int64_t sb = 0; sb < nsb; ++sb, w += bytes, xq += 256, xd += 8, xs += 8) {
    const float dd = F16Scale(w), dmin = F16Scale(w + 2);
    const Q4KScales u = UnpackQ4KScales(w + 4);
    uint8_t sc[8], m[8];
    std::memcpy(sc, &u.sc, 8);
    std::memcpy(m, &u.m, 8);
    float msum = 0.0f;
    for (int j = 0; j < 8; ++j) msum += static_cast<float>(m[j]) * xs[j];
    min_sum -= dmin * msum;
    const uint8_t* qh = w + 16;
    const uint8_t* qs = w + (kFive ? 48 : 16);
    for (int ch = 0; ch < 4; ++ch) {
      auto l0 = hn::Zero(d32), l1 = hn::Zero(d32), h0 = hn::Zero(d32), h1 = hn::Zero(d32);
      for (size_t p = 0; p < 32; p += N) {
        const auto v = hn::LoadU(du8, qs + 32 * ch + p);
        auto lo = hn::And(v, lo4);
        auto hi = hn::ShiftRight<4>(v);
        if constexpr (kFive) {
          const auto h = hn::LoadU(du8, qh + p);
          lo = hn::Or(lo, hn::IfThenElseZero(hn::TestBit(h, hn::Set(du8, 1 << (2 * ch))), bit4));
          hi = hn::Or(hi, hn::IfThenElseZero(hn::TestBit(h, hn::Set(du8, 2 << (2 * ch))), bit4));
        }
        DotU8(d8, lo, xq + 64 * ch + p, l0, l1);
        DotU8(d8, hi, xq + 64 * ch + 32 + p, h0, h1);
      }
      acc[0] = ScaleAdd(d32, l0, l1, dd * static_cast<float>(sc[2 * ch]) * xd[2 * ch], acc[0]);
      acc[1] =
          ScaleAdd(d32, h0, h1, dd * static_cast<float>(sc[2 * ch + 1]) * xd[2 * ch + 1], acc[1]);
    }
  }
  return hn::GetLane(hn::SumOfLanes(df, hn::Add(acc[0], acc[1]))) + min_sum;
}

// Q6_K: per half super-block, 16-byte piece p of ql[0..32) / ql[32..64) / qh[0..32) gives one
// 16-element scale group in each of the four 32-element quarters. q - 32 is signed.
float GemvRowQ6K(const uint8_t* w, int64_t nsb, const int16_t* xq, const int8_t*, const uint8_t*,
                 const float* xd, const float*) {
  const DG d8;
  const hn::RebindToUnsigned<DG> du8;
  const I32For<DG> d32;
  const hn::Rebind<float, I32For<DG>> df;
  const auto lo4 = hn::Set(du8, 15);
  const auto three = hn::Set(du8, 3);
  const auto k32 = hn::Set(d8, 32);
  hn::Vec<decltype(df)> acc[4] = {hn::Zero(df), hn::Zero(df), hn::Zero(df), hn::Zero(df)};
  for (int64_t sb = 0; sb < nsb; ++sb, w += 210, xq += 256, xd += 8) {
    const float dd = F16Scale(w + 208);
    const int8_t* scales = reinterpret_cast<const int8_t*>(w + 192);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = w + 64 * half;
      const uint8_t* qh = w + 128 + 32 * half;
      const int8_t* sc = scales + 8 * half;
      const int16_t* x = xq + 128 * half;
      const float* xdh = xd + 4 * half;
      for (int p = 0; p < 32; p += 16) {
        const auto a = hn::LoadU(du8, ql + p);
        const auto b = hn::LoadU(du8, ql + 32 + p);
        const auto h = hn::LoadU(du8, qh + p);
        const hn::Vec<decltype(du8)> q[4] = {
            hn::Or(hn::And(a, lo4), hn::ShiftLeft<4>(hn::And(h, three))),
            hn::Or(hn::And(b, lo4), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(h), three))),
            hn::Or(hn::ShiftRight<4>(a), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(h), three))),
            hn::Or(hn::ShiftRight<4>(b), hn::ShiftLeft<4>(hn::ShiftRight<6>(h)))};
        const int g = p / 16;
        for (int k = 0; k < 4; ++k) {
          auto s0 = hn::Zero(d32), s1 = hn::Zero(d32);
          DotI8(d8, hn::Sub(hn::BitCast(d8, q[k]), k32), x + 32 * k + p, s0, s1);
          acc[k] = ScaleAdd(d32, s0, s1, dd * static_cast<float>(sc[g + 2 * k]) * xdh[k], acc[k]);
        }
      }
    }
  }
  return hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(acc[0], acc[1]), hn::Add(acc[2], acc[3]))));
}

using GemvRowFn = float (*)(const uint8_t*, int64_t, const int16_t*, const int8_t*, const uint8_t*,
                            const float*, const float*);

GemvRowFn GemvRowFor(GgmlType type) {
  static_assert(hn::MaxLanes(DG()) == 16, "Q4/Q5/Q6_K kernels take a 16-element piece per vector");
  switch (type) {
    case GgmlType::Q8_0:
      return GemvRowQ8_0;
    case GgmlType::Q4_0:
      return GemvRowQ4Q5<false, false>;
    case GgmlType::Q4_1:
      return GemvRowQ4Q5<false, true>;
    case GgmlType::Q5_0:
      return GemvRowQ4Q5<true, false>;
    case GgmlType::Q5_1:
      return GemvRowQ4Q5<true, true>;
    case GgmlType::Q4_K:
      return GemvRowQK<false>;
    case GgmlType::Q5_K:
      return GemvRowQK<true>;
    case GgmlType::Q6_K:
      return GemvRowQ6K;
    default:
      return nullptr;
  }
}
#else
using GemvRowFn = float (*)(const uint8_t*, int64_t, const int16_t*, const int8_t*, const uint8_t*,
                            const float*, const float*);
GemvRowFn GemvRowFor(GgmlType) {
  return nullptr;
}
#endif  // HWY_TARGET != HWY_SCALAR

// The weight bytes of the panel's next k-block (or of the next panel's first), fetched a few
// cache lines per tile while this k-block's tiles run. A panel reads its rows' k-blocks a row
// stride apart, which the hardware prefetcher does not follow: without this the loads that
// build each panel waited on DRAM (perf, 2B-shaped vision encoder: 13% of the time on
// vcvtph2ps's load in FloatRow).
class NextBlockPrefetch {
 public:
  NextBlockPrefetch(const uint8_t* first_row, size_t row_stride, int64_t rows, size_t bytes,
                    int64_t n_tiles)
      : row_(first_row), row_stride_(row_stride), lines_per_row_((bytes + 63) / 64) {
    total_ = rows * static_cast<int64_t>(lines_per_row_);
    per_tile_ = n_tiles > 0 ? (total_ + n_tiles - 1) / n_tiles : total_;
  }
  // A tile's share of the lines; the last call also takes whatever is left. The place walks
  // row by row with counters: a division per line (row = index / lines per row) was a third of
  // this loop's cost in perf, 2B-shaped vision encoder.
  void step(bool last = false) {
    const int64_t end = last ? total_ : std::min(total_, next_ + per_tile_);
    for (; next_ < end; ++next_) {
      hwy::Prefetch(row_ + line_ * 64);
      if (++line_ == lines_per_row_) {
        line_ = 0;
        row_ += row_stride_;
      }
    }
  }

 private:
  const uint8_t* row_;  // the row of the next line to fetch
  size_t row_stride_;
  size_t lines_per_row_;
  size_t line_ = 0;  // the next line's index within its row
  int64_t total_ = 0, per_tile_ = 0, next_ = 0;
};

// ---- Per-architecture GEMV kernels ----
//
// A header below that has kernels for the current target defines GemvIntRowsArch (which
// returns whether it handled the type) and sets REEL_ARCH_GEMV; other targets get the stub.
// Likewise Q8_0RowsArch and REEL_ARCH_Q8_ROWS for Q8_0 with a few activation rows.
#undef REEL_ARCH_GEMV
#define REEL_ARCH_GEMV 0
#undef REEL_ARCH_Q8_ROWS
#define REEL_ARCH_Q8_ROWS 0
// Likewise QuantizeRowQ8K and REEL_Q8K_GEMV for the Q4_K GEMV on activations rounded per 256.
#undef REEL_Q8K_GEMV
#define REEL_Q8K_GEMV 0
// Likewise QuantizeRowInt8 and REEL_KQ_INT8_GEMV for the int8-activation Q4_K/Q6_K GEMV.
#undef REEL_KQ_INT8_GEMV
#define REEL_KQ_INT8_GEMV 0
// Likewise MatmulQ8_0Int16 and REEL_Q8_INT16_PREFILL for Q8_0's int16 panels.
#undef REEL_Q8_INT16_PREFILL
#define REEL_Q8_INT16_PREFILL 0
#include "ops/matmul_x86-inl.h"  // IWYU pragma: keep
#include "ops/matmul_arm-inl.h"  // IWYU pragma: keep
#if !REEL_KQ_INT8_GEMV
// No int8 GEMV here (kquant_int8_gemv is false), so only direct callers of quantize_row_int8
// get here: the same rounding as the x86 kernel's, scalar.
void QuantizeRowInt8(const float* x, int64_t cols, int8_t* q8, float* d8, float* s8, int16_t* g8) {
  for (int64_t b = 0; b < cols / kQBlock; ++b, x += kQBlock, q8 += kQBlock) {
    float amax = 0.0f;
    for (int k = 0; k < kQBlock; ++k) amax = std::max(amax, std::fabs(x[k]));
    const float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
    int32_t g[2] = {0, 0};
    for (int k = 0; k < kQBlock; ++k) {
      const float v = std::clamp(std::nearbyint(x[k] * id), -127.0f, 127.0f);
      q8[k] = static_cast<int8_t>(v);
      g[k / 16] += q8[k];
    }
    g8[2 * b] = static_cast<int16_t>(g[0]);
    g8[2 * b + 1] = static_cast<int16_t>(g[1]);
    d8[b] = d;
    s8[b] = d * static_cast<float>(g[0] + g[1]);
  }
}
#endif
#if !REEL_Q8K_GEMV
// No Q4_K kernel reads QuantizedX::k8 here.
bool QuantizeRowQ8K(const float*, int64_t, int8_t*, float*, float*) {
  return false;
}
#endif
constexpr bool kQ8KGemv = REEL_Q8K_GEMV;
constexpr bool kKQuantInt8Gemv = REEL_KQ_INT8_GEMV;
#if !REEL_Q8_INT16_PREFILL
// Not called: ops.cpp takes this path only where Q8_0Int16Prefill() holds.
void MatmulQ8_0Int16(const uint8_t*, size_t, int64_t, int64_t, int64_t, const int16_t*,
                     const float*, int64_t, float*, int64_t, const RowScratch&) {}
// Not called: ops.cpp takes this path only where F16Int16Prefill() holds (the same targets).
void MatmulF16Int16(const uint8_t*, size_t, int64_t, int64_t, int64_t, const int16_t*, const float*,
                    int64_t, float*, int64_t, const RowScratch&) {}
#endif
constexpr bool kQ8_0Int16Prefill = REEL_Q8_INT16_PREFILL;
#if !REEL_ARCH_GEMV
bool GemvIntRowsArch(GgmlType, const uint8_t*, size_t, int64_t, int64_t, int64_t, int64_t,
                     const QuantizedX&, float*, const RowScratch&) {
  return false;
}
#endif
#if !REEL_ARCH_Q8_ROWS
bool Q8_0RowsArch(const uint8_t*, size_t, int64_t, int64_t, int64_t, int64_t, const QuantizedX&,
                  int64_t, float*, int64_t) {
  return false;
}
#endif

void GemvIntRows(GgmlType type, const uint8_t* w, size_t row_stride, int64_t rows_total,
                 int64_t cols, int64_t r0, int64_t r1, const QuantizedX& x, float* y,
                 const RowScratch& scratch) {
  if (GemvIntRowsArch(type, w, row_stride, rows_total, cols, r0, r1, x, y, scratch)) return;
  const int64_t blocks = cols / type_info(type).block_elems;
  const GemvRowFn fn = GemvRowFor(type);
  for (int64_t r = r0; r < r1; ++r) {
    PrefetchRow(w + (r + kPrefetchRows) * row_stride, row_stride, r + kPrefetchRows < rows_total);
    y[r] = fn(w + r * row_stride, blocks, x.v, x.hi, x.lo, x.d, x.s);
  }
}

void MatmulIntRows(GgmlType type, const uint8_t* w, size_t row_stride, int64_t rows_total,
                   int64_t cols, int64_t r0, int64_t r1, const QuantizedX& x, int64_t nx, float* y,
                   int64_t ldy, const RowScratch& s) {
  if (nx == 1 && GemvRowFor(type)) {
    return GemvIntRows(type, w, row_stride, rows_total, cols, r0, r1, x, y, s);
  }
  const int64_t nb = cols / kQBlock;
  float out[8];
#if HWY_TARGET != HWY_SCALAR
  if (type == GgmlType::Q8_0) {  // straight from the stored blocks: no decode round trip
    if (Q8_0RowsArch(w, row_stride, rows_total, cols, r0, r1, x, nx, y, ldy)) return;
    for (int64_t r = r0; r < r1; ++r) {
      PrefetchRow(w + (r + kPrefetchRows) * row_stride, row_stride, r + kPrefetchRows < rows_total);
      const uint8_t* row = w + r * row_stride;
      int64_t i = 0;
      for (; i + 4 <= nx; i += 4) {
        GemvRowsQ8_0<4>(row, nb, x, i, out);
        for (int k = 0; k < 4; ++k) y[(i + k) * ldy + r] = out[k];
      }
      for (; i + 2 <= nx; i += 2) {
        GemvRowsQ8_0<2>(row, nb, x, i, out);
        for (int k = 0; k < 2; ++k) y[(i + k) * ldy + r] = out[k];
      }
      for (; i < nx; ++i) {
        GemvRowsQ8_0<1>(row, nb, x, i, out);
        y[i * ldy + r] = out[0];
      }
    }
    return;
  }
#endif
  const bool has_min = type == GgmlType::Q4_1 || type == GgmlType::Q5_1 ||
                       type == GgmlType::Q4_K || type == GgmlType::Q5_K;
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

// ---- Activation quantization: d = max|x|/kQMax, v = round(x/d), v = 256*hi + lo. ----

// aarch64's planes (kernels.h, kArmSdotPlanes) for one block of 32 values: signed low byte,
// the rest in hi, 16 values at a time transposed as 4x4 bytes. Scalar: it runs once per
// activation value, against once per weight row for the dot products.
HWY_INLINE void ArmPlanes(const int16_t* v, int8_t* hi, uint8_t* lo) {
  for (int g = 0; g < kQBlock; g += 16) {
    for (int j = 0; j < 4; ++j) {
      for (int k = 0; k < 4; ++k) {
        const int val = v[g + j + 4 * k];
        const int l = static_cast<int8_t>(static_cast<uint8_t>(val & 255));
        hi[g + 4 * j + k] = static_cast<int8_t>((val - l) / 256);
        lo[g + 4 * j + k] = static_cast<uint8_t>(l & 255);
      }
    }
  }
}

void QuantizeRows(const float* x, int64_t n, int64_t cols, int16_t* v, int8_t* hi, uint8_t* lo,
                  float* dq, float* sq, int qmax_int) {
  const hn::CappedTag<float, kQBlock> df;
  const hn::Rebind<int32_t, decltype(df)> di;
  const hn::Rebind<int16_t, decltype(df)> d16;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const hn::Rebind<uint8_t, decltype(df)> du8;
  const size_t N = hn::Lanes(df);
  const int64_t nb = n * cols / kQBlock;
  const auto qmax = hn::Set(di, qmax_int), qmin = hn::Set(di, -qmax_int);
  const auto k255 = hn::Set(di, 255);
  // Without hi and sq (the int16 panels of MatmulQ8_0Int16 read only v and d), no byte planes
  // and no block sums.
  const bool planes = hi != nullptr;
  for (int64_t b = 0; b < nb; ++b, x += kQBlock, v += kQBlock) {
    auto vmax = hn::Zero(df);
    for (size_t p = 0; p < kQBlock; p += N) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, x + p)));
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    const float d = amax / static_cast<float>(qmax_int);
    const auto id = hn::Set(df, d > 0.0f ? 1.0f / d : 0.0f);
    auto isum = hn::Zero(di);
    for (size_t p = 0; p < kQBlock; p += N) {
      // |x*id| <= kQMax up to rounding of id, so the clamp only guards against kQMax + 0.5.
      auto qi = hn::NearestInt(hn::Mul(hn::LoadU(df, x + p), id));
      qi = hn::Min(hn::Max(qi, qmin), qmax);
      isum = hn::Add(isum, qi);
      // hi = floor(v / 256) (arithmetic shift), lo = v mod 256 in [0, 255].
      hn::StoreU(hn::DemoteTo(d16, qi), d16, v + p);
      if (!planes) continue;
      hn::StoreU(hn::DemoteTo(d8, hn::ShiftRight<8>(qi)), d8, hi + p);
      hn::StoreU(hn::DemoteTo(du8, hn::And(qi, k255)), du8, lo + p);
    }
    if (planes) {
      if constexpr (kArmSdotPlanes) ArmPlanes(v, hi, lo);
      hi += kQBlock;
      lo += kQBlock;
    }
    dq[b] = d;
    if (sq != nullptr) sq[b] = d * static_cast<float>(hn::GetLane(hn::SumOfLanes(di, isum)));
  }
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

// ---- Float weights, many activation rows: packed panels and an outer-product microkernel ----
//
// The dot-product tiles above reduce over k inside vectors, so every tile re-reads its x rows
// from L2 and ends in horizontal sums; measured, they held F16 prefill to ~30-45% of the FMA
// peak. Here a panel of F weight rows (features) x kFloatKc columns is converted to f32 and
// stored feature-major (panel[k][f]), once per task and k-block, and reused by every
// activation row: each step broadcasts one x value per row and FMAs it with NV vectors of
// features, so MR x NV accumulators stay in registers for the whole k-block and the loads per
// FMA are (MR + NV) / (MR * NV). Partial sums over k-blocks accumulate in y (f32).

// Accumulator vectors per row: 4 where there are 32 vector registers (6x4 = 24 accumulators),
// else 2 (6x2 = 12 of 16).
#if HWY_TARGET <= HWY_AVX3 || HWY_ARCH_ARM
constexpr int kPanelVecs = 4;
#else
constexpr int kPanelVecs = 2;
#endif
constexpr int kPanelRows = kFloatTileRows;

// y[i][0..nf) (+)= sum_k x[i][k] * panel[k][0..nf) for MR rows; F = kPanelVecs * lanes.
// Panel rows are ldp floats apart: F for a packed panel, more for one read in place
// (MatmulF32KMajor).
template <int MR>
HWY_NOINLINE void PanelTile(const float* HWY_RESTRICT panel, int64_t ldp,
                            const float* HWY_RESTRICT x, int64_t ldx, int64_t kc,
                            float* HWY_RESTRICT y, int64_t ldy, bool accumulate, int64_t nf) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t F = kPanelVecs * N;
  hn::Vec<DF> acc[MR][kPanelVecs];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < kPanelVecs; ++v) acc[i][v] = hn::Zero(df);
  for (int64_t k = 0; k < kc; ++k, panel += ldp) {
    hn::Vec<DF> wv[kPanelVecs];
    for (int v = 0; v < kPanelVecs; ++v) wv[v] = hn::LoadU(df, panel + v * N);
    for (int i = 0; i < MR; ++i) {
      const auto xb = hn::Set(df, x[i * ldx + k]);
      for (int v = 0; v < kPanelVecs; ++v) acc[i][v] = hn::MulAdd(wv[v], xb, acc[i][v]);
    }
  }
  HWY_ALIGN float tmp[kPanelVecs * hn::MaxLanes(DF())];
  for (int i = 0; i < MR; ++i) {
    float* yi = y + i * ldy;
    if (static_cast<size_t>(nf) == F) {
      for (int v = 0; v < kPanelVecs; ++v) {
        auto r = acc[i][v];
        if (accumulate) r = hn::Add(r, hn::LoadU(df, yi + v * N));
        hn::StoreU(r, df, yi + v * N);
      }
    } else {
      for (int v = 0; v < kPanelVecs; ++v) hn::Store(acc[i][v], df, tmp + v * N);
      for (int64_t f = 0; f < nf; ++f) yi[f] = accumulate ? yi[f] + tmp[f] : tmp[f];
    }
  }
}

// The last rows < kPanelRows of x: PanelTile<rows>, dispatched at compile time.
template <int MR>
HWY_INLINE void PanelRemainder(int64_t rows, const float* HWY_RESTRICT panel, int64_t ldp,
                               const float* HWY_RESTRICT x, int64_t ldx, int64_t kc,
                               float* HWY_RESTRICT y, int64_t ldy, bool accumulate, int64_t nf) {
  if constexpr (MR > 0) {
    if (rows == MR) return PanelTile<MR>(panel, ldp, x, ldx, kc, y, ldy, accumulate, nf);
    PanelRemainder<MR - 1>(rows, panel, ldp, x, ldx, kc, y, ldy, accumulate, nf);
  }
}

#if HWY_TARGET == HWY_AVX2
// dst[j * dst_stride + i] = src[i * kFloatKc + j] for an 8x8 block: the panel's transposition in
// shuffles. vgatherdps, which the other targets use, cost about 4% of the 2B-shaped vision
// encoder's time on Zen 3 (perf), for reads of data already in L1.
HWY_INLINE void Transpose8x8(const float* src, float* dst, int64_t dst_stride) {
  __m256 r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * kFloatKc);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int j = 0; j < 4; ++j) {
    _mm256_store_ps(dst + j * dst_stride, _mm256_permute2f128_ps(u[j], u[j + 4], 0x20));
    _mm256_store_ps(dst + (j + 4) * dst_stride, _mm256_permute2f128_ps(u[j], u[j + 4], 0x31));
  }
}
#endif

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
// The same for a 16x16 block in 512-bit shuffles (64 of them). vgatherdps, one per 16 values,
// was about half of MatmulFloatPanels' own time in perf (2B-shaped vision encoder, AVX3_DL).
HWY_INLINE void Transpose16x16(const __m512 r[16], float* dst, int64_t dst_stride) {
  __m512 t[16], u[16];
  // t[2i], t[2i+1]: rows 2i and 2i+1 interleaved, columns 4L, 4L+1 and 4L+2, 4L+3 of lane L.
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // u[4j + c]: lane L holds column 4L + c of rows 4j..4j+3.
  for (int j = 0; j < 16; j += 4) {
    u[j] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[j]), _mm512_castps_pd(t[j + 2])));
    u[j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[j]), _mm512_castps_pd(t[j + 2])));
    u[j + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[j + 1]), _mm512_castps_pd(t[j + 3])));
    u[j + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[j + 1]), _mm512_castps_pd(t[j + 3])));
  }
  for (int c = 0; c < 4; ++c) {
    // Lanes (column c, c + 8 of rows 0-3, then of rows 4-7) and (c + 4, c + 12 likewise); the
    // same for rows 8-15.
    const __m512 a = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
    const __m512 b = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
    const __m512 a2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    const __m512 b2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
    _mm512_storeu_ps(dst + c * dst_stride, _mm512_shuffle_f32x4(a, a2, 0x88));
    _mm512_storeu_ps(dst + (c + 8) * dst_stride, _mm512_shuffle_f32x4(a, a2, 0xdd));
    _mm512_storeu_ps(dst + (c + 4) * dst_stride, _mm512_shuffle_f32x4(b, b2, 0x88));
    _mm512_storeu_ps(dst + (c + 12) * dst_stride, _mm512_shuffle_f32x4(b, b2, 0xdd));
  }
}

HWY_INLINE void Transpose16x16(const float* src, float* dst, int64_t dst_stride) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * kFloatKc);
  Transpose16x16(r, dst, dst_stride);
}

// F16 weight rows [0, nf) (row_stride apart; rows nf..F-1 zeros) and columns [0, kc) (kc % 16
// == 0) straight into a panel of F features: each 16x16 block converted in registers and
// transposed, without the f32 row buffer. Through the row buffer (FloatRow, then the
// transpose) the packing was 4% of the 2B-shaped vision encoder's samples (one thread, AVX3_DL).
void PackPanelF16(const uint8_t* w, size_t row_stride, int64_t nf, int64_t kc, float* panel,
                  int64_t F) {
  for (int64_t f = 0; f < F; f += 16) {
    for (int64_t k = 0; k < kc; k += 16) {
      __m512 r[16];
      for (int64_t i = 0; i < 16; ++i) {
        r[i] = f + i < nf ? _mm512_cvtph_ps(_mm256_loadu_si256(
                                reinterpret_cast<const __m256i*>(w + (f + i) * row_stride + 2 * k)))
                          : _mm512_setzero_ps();
      }
      Transpose16x16(r, panel + k * F + f, F);
    }
  }
}
#endif

void MatmulFloatPanels(GgmlType type, const uint8_t* w, size_t row_stride, int64_t cols,
                       int64_t r0, int64_t r1, const float* x, int64_t nx, float* y, int64_t ldy,
                       const RowScratch& s) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const size_t N = hn::Lanes(df);
  const int64_t F = static_cast<int64_t>(kPanelVecs * N);
  float* rowbuf = s.wf;                         // [F][kFloatKc] f32 weights, row-major
  float* panel = s.wf + kFloatPanel * kFloatKc;  // [kFloatKc][F] feature-major
  // k-block: kFloatKc = 1024 columns (whole super-blocks for the K types). The panel's vector
  // loads come from L2 well enough; what a longer block buys is longer runs of each x row, which
  // every panel re-reads from L3 (x is 3-13 MB in the vision encoder). Measured (Intel, AVX3_DL,
  // one thread): 448x448 vision encode 64 / 128 / 256 / 512 / 1024 columns 5.99 / 5.26 / 4.89 /
  // 4.72 / 4.61 s; bench_ops Prefill2048x2048/*/256 about 7% faster at 1024 than 256 on AVX3_DL
  // and 4% on AVX2.
  const TypeInfo info = type_info(type);
  const int64_t kblock = kFloatKc;
  const hn::Rebind<int16_t, DF> d16;
  const hn::Rebind<int32_t, DF> d32;
  // Lane j gathers row j of rowbuf.
  HWY_ALIGN int32_t lane_off[hn::MaxLanes(hn::RebindToSigned<DF>())];
  for (size_t j = 0; j < N; ++j) lane_off[j] = static_cast<int32_t>(j * kFloatKc);
  const auto offs = hn::Load(di, lane_off);
  for (int64_t rp = r0; rp < r1; rp += F) {
    const int64_t nf = std::min(F, r1 - rp);
    for (int64_t k0 = 0; k0 < cols; k0 += kblock) {
      const int64_t kc = std::min<int64_t>(kblock, cols - k0);
      bool packed = false;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
      if (type == GgmlType::F16 && kc % 16 == 0 && F % 16 == 0) {
        PackPanelF16(w + rp * row_stride + 2 * k0, row_stride, nf, kc, panel, F);
        packed = true;
      }
#endif
      for (int64_t f = 0; f < F && !packed; ++f) {
        float* dst = rowbuf + f * kFloatKc;
        if (f >= nf) {
          std::fill(dst, dst + kFloatKc, 0.0f);
          continue;
        }
        const uint8_t* src = w + (rp + f) * row_stride;
        switch (type) {
          case GgmlType::F32:
            std::memcpy(dst, reinterpret_cast<const float*>(src) + k0, kc * sizeof(float));
            break;
          case GgmlType::F16: FloatRow(type, src + 2 * k0, kc, dst); break;
          case GgmlType::BF16: FloatRow(type, src + 2 * k0, kc, dst); break;
          default: {
            if (!has_int_path(type)) {  // Q2_K/Q3_K: the reference dequantization
              dequantize_row_ref(type, src + k0 / info.block_elems * info.block_bytes, dst, kc);
              break;
            }
            // Quantized: the prefill decoder, then w = wd * q + wm per 32 elements (wm: the
            // additive min, as the integer kernels apply it through the activation sums).
            DecodeRow(type, src + k0 / info.block_elems * info.block_bytes, kc, s.wq, s.wd,
                      s.wm);
            for (int64_t b = 0; b < kc / kQBlock; ++b) {
              const auto scale = hn::Set(df, s.wd[b]), min = hn::Set(df, s.wm[b]);
              for (size_t p = 0; p < kQBlock; p += N) {
                const auto q = hn::PromoteTo(d32, hn::LoadU(d16, s.wq + b * kQBlock + p));
                hn::StoreU(hn::MulAdd(hn::ConvertTo(df, q), scale, min), df,
                           dst + b * kQBlock + p);
              }
            }
            break;
          }
        }
      }
      // Transpose rowbuf into the panel: 8x8 blocks in registers on AVX2, 16x16 on AVX-512, else
      // one gather per kc step and N features.
      int64_t k = packed ? kc : 0;
#if HWY_TARGET == HWY_AVX2
      for (; k + 8 <= kc; k += 8) {
        for (int64_t f = 0; f < F; f += 8) Transpose8x8(rowbuf + f * kFloatKc + k, panel + k * F + f, F);
      }
#elif HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
      for (; k + 16 <= kc; k += 16) {
        for (int64_t f = 0; f < F; f += 16) Transpose16x16(rowbuf + f * kFloatKc + k, panel + k * F + f, F);
      }
#endif
      for (; k < kc; ++k) {
        for (int64_t f = 0; f < F; f += N) {
          hn::Store(hn::GatherIndex(df, rowbuf + f * kFloatKc + k, offs), df, panel + k * F + f);
        }
      }
      const bool acc = k0 > 0;
      // The next k-block: this panel's, else the next panel's first (none after the last).
      const bool more_k = k0 + kblock < cols;
      const int64_t rp_next = more_k ? rp : rp + F, k_next = more_k ? k0 + kblock : 0;
      const int64_t rows_next = rp_next < r1 ? std::min(F, r1 - rp_next) : 0;
      NextBlockPrefetch prefetch(
          rows_next > 0 ? w + rp_next * row_stride + k_next / info.block_elems * info.block_bytes
                        : w,
          row_stride,
          rows_next, std::min(kblock, cols - k_next) / info.block_elems * info.block_bytes,
          nx / kPanelRows);
      int64_t i = 0;
      float* yp = y + rp;
      for (; i + kPanelRows <= nx; i += kPanelRows) {
        PanelTile<kPanelRows>(panel, F, x + i * cols + k0, cols, kc, yp + i * ldy, ldy, acc, nf);
        prefetch.step();
      }
      prefetch.step(/*last=*/true);
      PanelRemainder<kPanelRows - 1>(nx - i, panel, F, x + i * cols + k0, cols, kc, yp + i * ldy,
                                     ldy, acc, nf);
    }
  }
}

// y[i][f] = sum_k x[i][k] * b[k][f] (f < nf, k < kc; y overwritten) with b row-major, k by
// f: already the panels' feature-major layout, so its F-column blocks are read in place,
// nothing packed. A last partial block is copied, zero-padded, into `pad` (kc * F floats).
void MatmulF32KMajor(const float* b, int64_t ldb, int64_t nf, int64_t kc, const float* x,
                     int64_t ldx, int64_t nx, float* y, int64_t ldy, float* pad) {
  const int64_t F = static_cast<int64_t>(kPanelVecs * hn::Lanes(DF()));
  if (F > kFloatPanel) {  // vectors wider than `pad` holds (no enabled target): plain loops
    for (int64_t i = 0; i < nx; ++i)
      for (int64_t f = 0; f < nf; ++f) {
        float acc = 0.0f;
        for (int64_t k = 0; k < kc; ++k) acc += x[i * ldx + k] * b[k * ldb + f];
        y[i * ldy + f] = acc;
      }
    return;
  }
  for (int64_t f0 = 0; f0 < nf; f0 += F) {
    const int64_t nfb = std::min(F, nf - f0);
    const float* panel = b + f0;
    int64_t ldp = ldb;
    if (nfb < F) {
      for (int64_t k = 0; k < kc; ++k) {
        std::memcpy(pad + k * F, b + k * ldb + f0, nfb * sizeof(float));
        std::fill(pad + k * F + nfb, pad + (k + 1) * F, 0.0f);
      }
      panel = pad;
      ldp = F;
    }
    int64_t i = 0;
    for (; i + kPanelRows <= nx; i += kPanelRows) {
      PanelTile<kPanelRows>(panel, ldp, x + i * ldx, ldx, kc, y + i * ldy + f0, ldy, false, nfb);
    }
    PanelRemainder<kPanelRows - 1>(nx - i, panel, ldp, x + i * ldx, ldx, kc, y + i * ldy + f0, ldy,
                                   false, nfb);
  }
}

void MatmulFloatRows(GgmlType type, const uint8_t* w, size_t row_stride, int64_t rows_total,
                     int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t nx, float* y,
                     int64_t ldy, const RowScratch& s) {
  // Non-float types get here only with many rows (ops.cpp) or as Q2_K/Q3_K; the panels
  // decode them per k-block either way, also for a short last x chunk. (Q4_K on AVX2 and up
  // takes the int8 kernel instead, from ops.cpp: matmul_kquant_int8_rows.)
  if ((nx >= kPanelMinRows || !has_float_path(type)) &&
      kPanelVecs * hn::Lanes(DF()) <= static_cast<size_t>(kFloatPanel)) {
    return MatmulFloatPanels(type, w, row_stride, cols, r0, r1, x, nx, y, ldy, s);
  }
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

bool KQuantInt8Prefill(GgmlType type) {
  return KQuantInt8PrefillType(type) && kquant_int8_prefill_enabled();
}
bool Q8_0Int16Prefill() {
  return kQ8_0Int16Prefill && q8_0_int16_prefill_enabled();
}
bool F16Int16Prefill() {
  return kQ8_0Int16Prefill;
}
bool Q8KGemv() {
  return kQ8KGemv && kquant_int8_gemv_enabled();
}
bool KQuantInt8Gemv(GgmlType type) {
  return kKQuantInt8Gemv && kquant_int8_gemv_enabled() &&
         (type == GgmlType::Q4_K || type == GgmlType::Q6_K);
}

}  // namespace HWY_NAMESPACE
}  // namespace reel::ops::detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace reel::ops::detail {
namespace {
std::atomic<bool> g_arm_int8_enabled{true};
std::atomic<bool> g_kquant_int8_prefill_enabled{true};
std::atomic<bool> g_kquant_int8_gemv_enabled{true};
std::atomic<bool> g_q8_0_int16_prefill_enabled{true};
}  // namespace

void set_q8_0_int16_prefill_enabled(bool enabled) {
  g_q8_0_int16_prefill_enabled.store(enabled, std::memory_order_relaxed);
}
bool q8_0_int16_prefill_enabled() {
  return g_q8_0_int16_prefill_enabled.load(std::memory_order_relaxed);
}

void set_kquant_int8_gemv_enabled(bool enabled) {
  g_kquant_int8_gemv_enabled.store(enabled, std::memory_order_relaxed);
}
bool kquant_int8_gemv_enabled() {
  return g_kquant_int8_gemv_enabled.load(std::memory_order_relaxed);
}

void set_kquant_int8_prefill_enabled(bool enabled) {
  g_kquant_int8_prefill_enabled.store(enabled, std::memory_order_relaxed);
}
bool kquant_int8_prefill_enabled() { return g_kquant_int8_prefill_enabled.load(std::memory_order_relaxed); }

void set_arm_int8_kernels_enabled(bool enabled) {
  g_arm_int8_enabled.store(enabled, std::memory_order_relaxed);
}
bool arm_int8_kernels_enabled() {
  return g_arm_int8_enabled.load(std::memory_order_relaxed);
}
const char* arm_int8_kernels() {
#if HWY_ARCH_ARM_A64
  // The conditions of UseSdot and UseI8mm (matmul_arm-inl.h).
  if (cpu_features().dotprod && arm_int8_kernels_enabled()) {
    return cpu_features().i8mm ? "sdot+i8mm" : "sdot";
  }
#endif
  return "portable";
}

HWY_EXPORT(MatmulIntRows);
HWY_EXPORT(MatmulFloatRows);
HWY_EXPORT(MatmulF32KMajor);
HWY_EXPORT(QuantizeRows);
HWY_EXPORT(KQuantInt8Prefill);
HWY_EXPORT(QuantizeRowsKQuantInt8);
HWY_EXPORT(MatmulKQuantInt8);
HWY_EXPORT(KQuantInt8Gemv);
HWY_EXPORT(QuantizeRowInt8);
HWY_EXPORT(QuantizeRowQ8K);
HWY_EXPORT(Q8KGemv);
HWY_EXPORT(Q8_0Int16Prefill);
HWY_EXPORT(MatmulQ8_0Int16);
HWY_EXPORT(F16Int16Prefill);
HWY_EXPORT(MatmulF16Int16);

bool q8_0_int16_prefill() {
  return HWY_DYNAMIC_DISPATCH(Q8_0Int16Prefill)();
}
void matmul_q8_0_int16_rows(const uint8_t* w, size_t row_stride, int64_t cols, int64_t r0,
                            int64_t r1, const int16_t* xv, const float* xd, int64_t nx, float* y,
                            int64_t ldy, const RowScratch& scratch) {
  HWY_DYNAMIC_DISPATCH(MatmulQ8_0Int16)(w, row_stride, cols, r0, r1, xv, xd, nx, y, ldy, scratch);
}

bool f16_int16_prefill() {
  return HWY_DYNAMIC_DISPATCH(F16Int16Prefill)();
}
void matmul_f16_int16_rows(const uint8_t* w, size_t row_stride, int64_t cols, int64_t r0,
                           int64_t r1, const int16_t* xv, const float* xd, int64_t nx, float* y,
                           int64_t ldy, const RowScratch& scratch) {
  HWY_DYNAMIC_DISPATCH(MatmulF16Int16)(w, row_stride, cols, r0, r1, xv, xd, nx, y, ldy, scratch);
}

bool kquant_int8_prefill(GgmlType type) { return HWY_DYNAMIC_DISPATCH(KQuantInt8Prefill)(type); }
void quantize_rows_kquant_int8(const float* x, int64_t n, int64_t cols, int8_t* q, float* dx,
                               float* xbs, int16_t* g16) {
  HWY_DYNAMIC_DISPATCH(QuantizeRowsKQuantInt8)(x, n, cols, q, dx, xbs, g16);
}
void matmul_kquant_int8_rows(GgmlType type, const uint8_t* w, size_t row_stride, int64_t cols,
                             int64_t r0, int64_t r1, const KQuantInt8X& x, int64_t nx, float* y,
                             int64_t ldy, const RowScratch& scratch) {
  HWY_DYNAMIC_DISPATCH(MatmulKQuantInt8)(type, w, row_stride, cols, r0, r1, x, nx, y, ldy, scratch);
}
bool kquant_int8_gemv(GgmlType type) {
  return HWY_DYNAMIC_DISPATCH(KQuantInt8Gemv)(type);
}
void quantize_row_int8(const float* x, int64_t cols, int8_t* q8, float* d8, float* s8,
                       int16_t* g8) {
  HWY_DYNAMIC_DISPATCH(QuantizeRowInt8)(x, cols, q8, d8, s8, g8);
}

bool q8k_gemv() {
  return HWY_DYNAMIC_DISPATCH(Q8KGemv)();
}
bool quantize_row_q8k(const float* x, int64_t cols, int8_t* k8, float* kd, float* ks) {
  return HWY_DYNAMIC_DISPATCH(QuantizeRowQ8K)(x, cols, k8, kd, ks);
}

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

void quantize_rows(const float* x, int64_t n, int64_t cols, int16_t* v, int8_t* hi, uint8_t* lo,
                   float* d, float* s, int qmax) {
  HWY_DYNAMIC_DISPATCH(QuantizeRows)(x, n, cols, v, hi, lo, d, s, qmax);
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

void matmul_f32_kmajor(const float* b, int64_t ldb, int64_t nf, int64_t kc, const float* x,
                       int64_t ldx, int64_t nx, float* y, int64_t ldy, float* pad) {
  HWY_DYNAMIC_DISPATCH(MatmulF32KMajor)(b, ldb, nf, kc, x, ldx, nx, y, ldy, pad);
}
}  // namespace reel::ops::detail
#endif
