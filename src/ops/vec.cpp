// Element-wise and reduction kernels on f32 arrays, compiled per Highway target. Reductions
// keep several independent accumulators so the FMA latency does not bound them.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/vec.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <cmath>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "ops/kernels.h"

HWY_BEFORE_NAMESPACE();
namespace reel::ops::detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;

float DotF32(const float* a, const float* b, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, a + i + N), hn::LoadU(d, b + i + N), s1);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
  for (; i < n; ++i) s = std::fma(a[i], b[i], s);
  return s;
}

void AxpyF32(float a, const float* x, float* y, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const auto va = hn::Set(d, a);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::MulAdd(va, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  }
  for (; i < n; ++i) y[i] = std::fma(a, x[i], y[i]);
}

void ScaleF32(float* x, float a, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), hn::Set(d, a)), d, x + i);
  for (; i < n; ++i) x[i] *= a;
}

float SumSqF32(const float* x, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto a = hn::LoadU(d, x + i), b = hn::LoadU(d, x + i + N);
    s0 = hn::MulAdd(a, a, s0);
    s1 = hn::MulAdd(b, b, s1);
  }
  for (; i + N <= n; i += N) {
    const auto a = hn::LoadU(d, x + i);
    s0 = hn::MulAdd(a, a, s0);
  }
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
  for (; i < n; ++i) s = std::fma(x[i], x[i], s);
  return s;
}

// Sum of x[0, n) in two vector accumulators (then the lanes, then the tail).
float SumF32(const float* x, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    s0 = hn::Add(s0, hn::LoadU(d, x + i));
    s1 = hn::Add(s1, hn::LoadU(d, x + i + N));
  }
  for (; i + N <= n; i += N) s0 = hn::Add(s0, hn::LoadU(d, x + i));
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
  for (; i < n; ++i) s += x[i];
  return s;
}

// One row: y = (x - mean) / sqrt(var + eps) * w + b (w, b optional). Two passes over x (mean,
// then centred squares): no cancellation for rows with a large mean. Vectorised, it left the
// 2B-shaped vision encoder's profile (the scalar loops were 1.3% of it, one thread).
void LayerNormRowF32(const float* x, const float* w, const float* b, float* y, int64_t n,
                     float eps) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const float mean = SumF32(x, n) / static_cast<float>(n);
  const auto vm = hn::Set(d, mean);
  auto v0 = hn::Zero(d), v1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto a = hn::Sub(hn::LoadU(d, x + i), vm), c = hn::Sub(hn::LoadU(d, x + i + N), vm);
    v0 = hn::MulAdd(a, a, v0);
    v1 = hn::MulAdd(c, c, v1);
  }
  for (; i + N <= n; i += N) {
    const auto a = hn::Sub(hn::LoadU(d, x + i), vm);
    v0 = hn::MulAdd(a, a, v0);
  }
  float var = hn::GetLane(hn::SumOfLanes(d, hn::Add(v0, v1)));
  for (; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const float inv = 1.0f / std::sqrt(var / static_cast<float>(n) + eps);
  const auto vi = hn::Set(d, inv);
  for (i = 0; i + N <= n; i += N) {
    auto t = hn::Mul(hn::Sub(hn::LoadU(d, x + i), vm), vi);
    if (w) t = hn::Mul(t, hn::LoadU(d, w + i));
    if (b) t = hn::Add(t, hn::LoadU(d, b + i));
    hn::StoreU(t, d, y + i);
  }
  for (; i < n; ++i) {
    float v = (x[i] - mean) * inv;
    if (w) v *= w[i];
    if (b) v += b[i];
    y[i] = v;
  }
}

void MulScaleF32(const float* x, const float* w, float s, float* y, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const auto vs = hn::Set(d, s);
  int64_t i = 0;
  if (w) {
    for (; i + N <= n; i += N) {
      hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, x + i), vs), hn::LoadU(d, w + i)), d, y + i);
    }
    for (; i < n; ++i) y[i] = x[i] * s * w[i];
  } else {
    for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), vs), d, y + i);
    for (; i < n; ++i) y[i] = x[i] * s;
  }
}

// silu(g) * u = g * u / (1 + exp(-g)).
void SiluMulF32(float* gate, const float* up, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const auto one = hn::Set(d, 1.0f);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto g = hn::LoadU(d, gate + i);
    const auto e = hn::Exp(d, hn::Neg(g));
    hn::StoreU(hn::Div(hn::Mul(g, hn::LoadU(d, up + i)), hn::Add(one, e)), d, gate + i);
  }
  for (; i < n; ++i) gate[i] = gate[i] * up[i] / (1.0f + std::exp(-gate[i]));
}

// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
void GeluTanhF32(float* x, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const float k0 = 0.7978845608028654f, k1 = 0.044715f;
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(d, x + i);
    const auto inner =
        hn::Mul(hn::Set(d, k0), hn::MulAdd(hn::Mul(hn::Set(d, k1), v), hn::Mul(v, v), v));
    const auto t = hn::Tanh(d, inner);
    hn::StoreU(hn::Mul(hn::Mul(hn::Set(d, 0.5f), v), hn::Add(hn::Set(d, 1.0f), t)), d, x + i);
  }
  for (; i < n; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(k0 * (v + k1 * v * v * v)));
  }
}

void AddF32(float* y, const float* x, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Add(hn::LoadU(d, y + i), hn::LoadU(d, x + i)), d, y + i);
  for (; i < n; ++i) y[i] += x[i];
}

float MaxF32(const float* x, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  float m = -INFINITY;
  int64_t i = 0;
  if (n >= N) {
    auto vm = hn::LoadU(d, x);
    for (i = N; i + N <= n; i += N) vm = hn::Max(vm, hn::LoadU(d, x + i));
    m = hn::GetLane(hn::MaxOfLanes(d, vm));
  }
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

float ExpSubSumF32(float* x, float m, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const auto vm = hn::Set(d, m);
  auto s = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vm));
    hn::StoreU(e, d, x + i);
    s = hn::Add(s, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(d, s));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  return sum;
}

// ---- Half precision (the f16 KV cache) ----
//
// AVX2 and up (F16C) and NEON with the half-precision extension convert in hardware, exactly
// and rounding to nearest even. Elsewhere (SSE4, SSSE3, EMU128, SCALAR) Highway 1.0.3's
// emulation truncates and maps inf/NaN to finite values, so those targets use the integer
// formulations below, which give the same bits as fp16_to_f32/f32_to_fp16 (gguf/types.cpp).
#undef REEL_HW_F16
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2) || \
    (HWY_ARCH_ARM && HWY_TARGET == HWY_NEON && defined(__ARM_FP) && (__ARM_FP & 2))
#define REEL_HW_F16 1
#else
#define REEL_HW_F16 0
#endif

// Lanes(df) halves at p as floats.
template <class D>
HWY_INLINE hn::Vec<D> LoadHalves(D df, const uint16_t* HWY_RESTRICT p) {
  const hn::Rebind<uint16_t, D> du16;
#if REEL_HW_F16
  const hn::Rebind<hwy::float16_t, D> dh;
  return hn::PromoteTo(df, hn::BitCast(dh, hn::LoadU(du16, p)));
#else
  // The branch-free scalar half_to_float (kernels.h), lane-wise. two_w: exponent and mantissa
  // at the top of the word, sign shifted out.
  const hn::RebindToUnsigned<D> du;
  const hn::RebindToSigned<D> di;
  const auto h = hn::PromoteTo(du, hn::LoadU(du16, p));
  const auto two_w = hn::ShiftLeft<17>(h);
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u)));
  // Normal, inf and NaN: rebias by 224 in the exponent field, then scale by 2^-112 (exact).
  const auto normalized =
      hn::Mul(hn::BitCast(df, hn::Add(hn::ShiftRight<4>(two_w), hn::Set(du, 0xE0u << 23))),
              hn::Set(df, 0x1.0p-112f));
  // Zero and subnormal: m * 2^-24 = (0.5 + m * 2^-24) - 0.5, the first term built from bits.
  const auto denormalized =
      hn::Sub(hn::BitCast(df, hn::Or(hn::ShiftRight<17>(two_w), hn::Set(du, 126u << 23))),
              hn::Set(df, 0.5f));
  const auto magnitude = hn::BitCast(di, hn::And(h, hn::Set(du, 0x7fffu)));
  const auto tiny = hn::RebindMask(df, hn::Lt(magnitude, hn::Set(di, 0x400)));
  const auto r = hn::IfThenElse(tiny, denormalized, normalized);
  return hn::BitCast(df, hn::Or(sign, hn::BitCast(du, r)));
#endif
}

// Stores the Lanes(df) floats of v as halves at p, rounding to nearest even.
template <class D>
HWY_INLINE void StoreHalves(D df, hn::Vec<D> v, uint16_t* HWY_RESTRICT p) {
  const hn::Rebind<uint16_t, D> du16;
#if REEL_HW_F16
  (void)df;
  const hn::Rebind<hwy::float16_t, D> dh;
  hn::StoreU(hn::BitCast(du16, hn::DemoteTo(dh, v)), du16, p);
#else
  // f32_to_fp16's cases, each computed for every lane, then selected (abs < 2^31: signed
  // compares are exact).
  const hn::RebindToSigned<D> di;
  const auto bits = hn::BitCast(di, v);
  const auto abs = hn::And(bits, hn::Set(di, 0x7fffffff));
  const auto sign = hn::And(hn::ShiftRight<16>(bits), hn::Set(di, 0x8000));
  // Normal: rebias the exponent, then round the 13 dropped bits to nearest even by adding
  // 0xfff plus the kept lowest bit; a carry out of the mantissa bumps the exponent.
  const auto lsb = hn::And(hn::ShiftRight<13>(abs), hn::Set(di, 1));
  const auto normal = hn::ShiftRight<13>(
      hn::Add(hn::Sub(abs, hn::Set(di, (127 - 15) << 23)), hn::Add(hn::Set(di, 0xfff), lsb)));
  // Subnormal or zero (|x| < 2^-14): in 0.5 + |x| the unit in the last place is 2^-24, one
  // half subnormal step, so the FPU's round-to-nearest-even addition does the rounding.
  const auto sub = hn::Sub(hn::BitCast(di, hn::Add(hn::BitCast(df, abs), hn::Set(df, 0.5f))),
                           hn::Set(di, 0x3f000000));
  const auto nan =
      hn::Or(hn::Set(di, 0x7e00), hn::And(hn::ShiftRight<13>(abs), hn::Set(di, 0x3ff)));
  auto r = hn::IfThenElse(hn::Lt(abs, hn::Set(di, 0x38800000)), sub, normal);
  r = hn::IfThenElse(hn::Lt(abs, hn::Set(di, 0x477ff000)), r, hn::Set(di, 0x7c00));  // inf
  r = hn::IfThenElse(hn::Gt(abs, hn::Set(di, 0x7f800000)), nan, r);
  hn::StoreU(hn::DemoteTo(du16, hn::Or(r, sign)), du16, p);
#endif
}

// DotF32 with b in halves: the same accumulators in the same order, so on the same values it
// returns the same bits.
float DotF32F16(const float* a, const uint16_t* b, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    s0 = hn::MulAdd(hn::LoadU(d, a + i), LoadHalves(d, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, a + i + N), LoadHalves(d, b + i + N), s1);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(d, a + i), LoadHalves(d, b + i), s0);
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
  for (; i < n; ++i) s = std::fma(a[i], half_to_float(b[i]), s);
  return s;
}

// AxpyF32 with x in halves (same bits on the same values).
void AxpyF32F16(float a, const uint16_t* x, float* y, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const auto va = hn::Set(d, a);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::MulAdd(va, LoadHalves(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  }
  for (; i < n; ++i) y[i] = std::fma(a, half_to_float(x[i]), y[i]);
}

void F32ToF16(const float* x, uint16_t* y, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) StoreHalves(d, hn::LoadU(d, x + i), y + i);
  for (; i < n; ++i) y[i] = f32_to_fp16(x[i]);
}

// Reads every float once with 4 independent adds in flight: a pure load stream.
double StreamReadF32(const float* x, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    s0 = hn::Add(s0, hn::Load(d, x + i));
    s1 = hn::Add(s1, hn::Load(d, x + i + N));
    s2 = hn::Add(s2, hn::Load(d, x + i + 2 * N));
    s3 = hn::Add(s3, hn::Load(d, x + i + 3 * N));
  }
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
}

// 16 independent FMA chains (enough to cover latency x ports on current cores). Returns the
// vector width in floats; the result goes to *sink so the loop is not optimised away.
size_t FmaLoop(int64_t iters, double* sink) {
  const DF d;
  const auto a = hn::Set(d, 0.999999f), b = hn::Set(d, 1e-7f);
  hn::Vec<DF> v[16];
  for (int k = 0; k < 16; ++k) v[k] = hn::Set(d, static_cast<float>(k));
  for (int64_t i = 0; i < iters; ++i) {
    for (int k = 0; k < 16; ++k) v[k] = hn::MulAdd(v[k], a, b);
  }
  auto s = hn::Zero(d);
  for (int k = 0; k < 16; ++k) s = hn::Add(s, v[k]);
  *sink += hn::GetLane(hn::SumOfLanes(d, s));
  return hn::Lanes(d);
}

}  // namespace HWY_NAMESPACE
}  // namespace reel::ops::detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace reel::ops::detail {
HWY_EXPORT(DotF32);
HWY_EXPORT(AxpyF32);
HWY_EXPORT(ScaleF32);
HWY_EXPORT(SumSqF32);
HWY_EXPORT(LayerNormRowF32);
HWY_EXPORT(MulScaleF32);
HWY_EXPORT(SiluMulF32);
HWY_EXPORT(GeluTanhF32);
HWY_EXPORT(AddF32);
HWY_EXPORT(MaxF32);
HWY_EXPORT(ExpSubSumF32);
HWY_EXPORT(StreamReadF32);
HWY_EXPORT(FmaLoop);
HWY_EXPORT(DotF32F16);
HWY_EXPORT(AxpyF32F16);
HWY_EXPORT(F32ToF16);

float dot_f32(const float* a, const float* b, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(DotF32)(a, b, n);
}
void axpy_f32(float a, const float* x, float* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(AxpyF32)(a, x, y, n);
}
void scale_f32(float* x, float a, int64_t n) { HWY_DYNAMIC_DISPATCH(ScaleF32)(x, a, n); }
float sum_sq_f32(const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(SumSqF32)(x, n); }
void layer_norm_row_f32(const float* x, const float* w, const float* b, float* y, int64_t n,
                        float eps) {
  HWY_DYNAMIC_DISPATCH(LayerNormRowF32)(x, w, b, y, n, eps);
}
void mul_scale_f32(const float* x, const float* w, float s, float* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(MulScaleF32)(x, w, s, y, n);
}
void silu_mul_f32(float* gate, const float* up, int64_t n) {
  HWY_DYNAMIC_DISPATCH(SiluMulF32)(gate, up, n);
}
void gelu_tanh_f32(float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(GeluTanhF32)(x, n); }
void add_f32(float* y, const float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(AddF32)(y, x, n); }
float max_f32(const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(MaxF32)(x, n); }
float exp_sub_sum_f32(float* x, float m, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(ExpSubSumF32)(x, m, n);
}
double stream_read_f32(const float* x, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(StreamReadF32)(x, n);
}
size_t fma_loop(int64_t iters, double* sink) { return HWY_DYNAMIC_DISPATCH(FmaLoop)(iters, sink); }
float dot_f32_f16(const float* q, const uint16_t* k, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(DotF32F16)(q, k, n);
}
void axpy_f32_f16(float a, const uint16_t* v, float* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(AxpyF32F16)(a, v, y, n);
}
void f32_to_f16_row(const float* x, uint16_t* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(F32ToF16)(x, y, n);
}
}  // namespace reel::ops::detail
#endif
