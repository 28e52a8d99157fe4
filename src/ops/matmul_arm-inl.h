// aarch64-only matmul kernels: SDOT (ARMv8.2 dotprod) for the int8 decode GEMV of Q8_0, Q4_K
// and Q6_K and for Q8_0 with a few activation rows, and SMMLA (I8MM) for the latter where the
// CPU has it (see "I8MM" below), written with NEON intrinsics.
// Part of matmul.cpp: included there once per Highway target pass, inside its per-target
// namespace and after the portable kernels, hence no include guard. For the NEON target on
// aarch64 it defines GemvIntRowsArch and Q8_0RowsArch and sets REEL_ARCH_GEMV and
// REEL_ARCH_Q8_ROWS (see matmul.cpp). The rest of the binary stays ARMv8.0: only these
// functions are compiled for armv8.2-a+dotprod (the SMMLA ones for +i8mm too), and they run only
// where the CPU reports it (HWCAP asimddp, HWCAP2 i8mm; cpu_features.h); elsewhere the portable
// kernels run.
//
// SDOT multiplies 16 signed byte pairs and adds each group of 4 into one int32 lane. The int16
// activations meet it as two signed byte planes, v = 256*hi + lo (kernels.h, kArmSdotPlanes):
// t = hi . w, then 256*t + lo . w, exact in int32 (|t| <= 8*128*64 per lane). Both planes are
// stored with every 16 values transposed as 4x4 bytes, and the weights are transposed the same
// way with one TBL per 16 bytes, so lane j sums values j, j+4, j+8, j+12 of each 16: the
// very int32 lane sums of the portable kernels (vmlal/vmlal2 put value e in lane e mod 4).
// Converted, scaled and accumulated in the same order, with the same f32 operations, they
// give the portable kernels' results bit for bit (tests/ops/arm_kernels_test.cpp).

#if HWY_TARGET == HWY_NEON && HWY_ARCH_ARM_A64
#include <arm_neon.h>

#include <vector>

#undef REEL_ARCH_GEMV
#define REEL_ARCH_GEMV 1
#undef REEL_ARCH_Q8_ROWS
#define REEL_ARCH_Q8_ROWS 1

#pragma GCC push_options
// vdotq_s32 (GCC 12) needs the caller to be "arch=armv8.2-a+dotprod" (any core with dotprod
// is ARMv8.2 or later); the assembler then accepts SDOT in these functions only. Baseline
// always-inline helpers (Highway's ops, F16Scale) do not inline into such functions, so the
// region uses NEON intrinsics and its own helpers, matching the operations Highway 1.0.3
// emits on aarch64 (SumOfLanes of f32x4 is FADDP-based vaddvq_f32, MulAdd is vfmaq_f32).
#pragma GCC target("arch=armv8.2-a+dotprod")

HWY_INLINE int32x4_t Sdot(int32x4_t acc, int8x16_t a, int8x16_t b) {
  return vdotq_s32(acc, a, b);
}

// F16Scale on aarch64: the hardware conversion (half_to_float, kernels.h).
HWY_INLINE float ArmHalf(const uint8_t* p) {
  __fp16 h;
  std::memcpy(&h, p, 2);
  return static_cast<float>(h);
}

// Byte 4j+k <- byte j+4k of 16: the 4x4 transpose (its own inverse).
alignas(16) constexpr uint8_t kTranspose4x4[16] = {0, 4, 8, 12, 1, 5, 9, 13,
                                                   2, 6, 10, 14, 3, 7, 11, 15};

// sum over the 32 values of w . v per portable lane (value e in lane e mod 4): w0/w1 are the
// two transposed halves of the weights, hi/lo the activation planes of the same 32 values.
HWY_INLINE int32x4_t SdotBlock(int8x16_t w0, int8x16_t w1, const int8_t* hi, const uint8_t* lo) {
  int32x4_t t = Sdot(vdupq_n_s32(0), w0, vld1q_s8(hi));
  t = Sdot(t, w1, vld1q_s8(hi + 16));
  t = vshlq_n_s32(t, 8);
  const int8_t* l = reinterpret_cast<const int8_t*>(lo);
  t = Sdot(t, w0, vld1q_s8(l));
  return Sdot(t, w1, vld1q_s8(l + 16));
}

// The same for 16 values (one Q6_K scale group).
HWY_INLINE int32x4_t SdotGroup(int8x16_t w, const int8_t* hi, const uint8_t* lo) {
  const int32x4_t t = vshlq_n_s32(Sdot(vdupq_n_s32(0), w, vld1q_s8(hi)), 8);
  return Sdot(t, w, vld1q_s8(reinterpret_cast<const int8_t*>(lo)));
}

// acc + lanes * scale: ScaleAdd's operations (convert, then one fused multiply-add).
HWY_INLINE float32x4_t SdotScaleAdd(int32x4_t s, float scale, float32x4_t acc) {
  return vfmaq_f32(acc, vcvtq_f32_s32(s), vdupq_n_f32(scale));
}

// The sum of the lanes of a + b, as the portable kernels reduce (Highway's SumOfLanes).
HWY_INLINE float SdotReduce(float32x4_t a, float32x4_t b) {
  return vaddvq_f32(vaddq_f32(a, b));
}

HWY_INLINE int8x16_t LoadTransposed(const uint8_t* p, uint8x16_t perm) {
  return vreinterpretq_s8_u8(vqtbl1q_u8(vld1q_u8(p), perm));
}

// GemvRowQ8_0 with SDOT: even blocks into acc0, odd ones into acc1, as there.
float GemvRowQ8_0Sdot(const uint8_t* w, int64_t nb, const int16_t*, const int8_t* xh,
                      const uint8_t* xl, const float* xd, const float*) {
  const uint8x16_t perm = vld1q_u8(kTranspose4x4);
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  auto block = [&](const uint8_t* blk, int64_t b, float32x4_t acc) {
    const int8x16_t w0 = LoadTransposed(blk + 2, perm), w1 = LoadTransposed(blk + 18, perm);
    const int32x4_t s = SdotBlock(w0, w1, xh + b * kQBlock, xl + b * kQBlock);
    return SdotScaleAdd(s, ArmHalf(blk) * xd[b], acc);
  };
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 68) {
    acc0 = block(w, b, acc0);
    acc1 = block(w + 34, b + 1, acc1);
  }
  if (b < nb) acc0 = block(w, b, acc0);
  return SdotReduce(acc0, acc1);
}

// GemvRowsQ8_0<NX> with SDOT: each weight block loaded and transposed once for NX rows; per
// row the arithmetic of GemvRowQ8_0Sdot (and so of the portable kernels). Not inlined: its
// callers are baseline-ISA code.
template <int NX>
HWY_NOINLINE void GemvRowsQ8_0Sdot(const uint8_t* w, int64_t nb, const QuantizedX& x, int64_t x0,
                                 float* out) {
  const uint8x16_t perm = vld1q_u8(kTranspose4x4);
  const int8_t* xh[NX];
  const uint8_t* xl[NX];
  const float* xd[NX];
  float32x4_t acc0[NX], acc1[NX];
  for (int i = 0; i < NX; ++i) {
    xh[i] = x.hi + (x0 + i) * x.cols;
    xl[i] = x.lo + (x0 + i) * x.cols;
    xd[i] = x.d + (x0 + i) * (x.cols / kQBlock);
    acc0[i] = acc1[i] = vdupq_n_f32(0.0f);
  }
  auto block = [&](const uint8_t* blk, int64_t b, float32x4_t* acc) {
    const int8x16_t w0 = LoadTransposed(blk + 2, perm), w1 = LoadTransposed(blk + 18, perm);
    const float wscale = ArmHalf(blk);
    for (int i = 0; i < NX; ++i) {
      const int32x4_t s = SdotBlock(w0, w1, xh[i] + b * kQBlock, xl[i] + b * kQBlock);
      acc[i] = SdotScaleAdd(s, wscale * xd[i][b], acc[i]);
    }
  };
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 68) {
    block(w, b, acc0);
    block(w + 34, b + 1, acc1);
  }
  if (b < nb) block(w, b, acc0);
  for (int i = 0; i < NX; ++i) out[i] = SdotReduce(acc0[i], acc1[i]);
}

// GemvRowQK<false> (Q4_K) with SDOT. Nibbles (0..15) are valid signed bytes; one TBL per 16
// stored bytes transposes both of their nibbles. The mins go through the activation block sums
// with GemvRowQK's scalar code, unchanged.
float GemvRowQ4KSdot(const uint8_t* w, int64_t nsb, const int16_t*, const int8_t* xh,
                     const uint8_t* xl, const float* xd, const float* xs) {
  const uint8x16_t perm = vld1q_u8(kTranspose4x4);
  const uint8x16_t lo4 = vdupq_n_u8(15);
  float32x4_t acc[2] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  float min_sum = 0.0f;
  for (int64_t sb = 0; sb < nsb; ++sb, w += 144, xh += 256, xl += 256, xd += 8, xs += 8) {
    const float dd = ArmHalf(w), dmin = ArmHalf(w + 2);
    uint32_t a, bw, c;
    std::memcpy(&a, w + 4, 4);
    std::memcpy(&bw, w + 8, 4);
    std::memcpy(&c, w + 12, 4);
    const uint32_t sc_words[2] = {a & 0x3f3f3f3fu,
                                  (c & 0x0f0f0f0fu) | (((a >> 6) & 0x03030303u) << 4)};
    const uint32_t m_words[2] = {bw & 0x3f3f3f3fu,
                                 ((c >> 4) & 0x0f0f0f0fu) | (((bw >> 6) & 0x03030303u) << 4)};
    uint8_t sc[8], m[8];
    std::memcpy(sc, sc_words, 8);
    std::memcpy(m, m_words, 8);
    float msum = 0.0f;
    for (int j = 0; j < 8; ++j) msum += static_cast<float>(m[j]) * xs[j];
    min_sum -= dmin * msum;
    const uint8_t* qs = w + 16;
    for (int ch = 0; ch < 4; ++ch) {
      const uint8x16_t v0 = vqtbl1q_u8(vld1q_u8(qs + 32 * ch), perm);
      const uint8x16_t v1 = vqtbl1q_u8(vld1q_u8(qs + 32 * ch + 16), perm);
      const int8x16_t l0 = vreinterpretq_s8_u8(vandq_u8(v0, lo4));
      const int8x16_t l1 = vreinterpretq_s8_u8(vandq_u8(v1, lo4));
      const int8x16_t h0 = vreinterpretq_s8_u8(vshrq_n_u8(v0, 4));
      const int8x16_t h1 = vreinterpretq_s8_u8(vshrq_n_u8(v1, 4));
      const int e = 64 * ch;
      const int32x4_t sl = SdotBlock(l0, l1, xh + e, xl + e);
      const int32x4_t sh = SdotBlock(h0, h1, xh + e + 32, xl + e + 32);
      acc[0] = SdotScaleAdd(sl, dd * static_cast<float>(sc[2 * ch]) * xd[2 * ch], acc[0]);
      acc[1] = SdotScaleAdd(sh, dd * static_cast<float>(sc[2 * ch + 1]) * xd[2 * ch + 1], acc[1]);
    }
  }
  return SdotReduce(acc[0], acc[1]) + min_sum;
}

// GemvRowQ6K with SDOT: q - 32 (signed), one 16-value scale group per int32 sum, four
// accumulators by quarter, all as there. The three TBLs per step transpose ql, ql + 32 and
// qh before the bit assembly, which works bytewise.
float GemvRowQ6KSdot(const uint8_t* w, int64_t nsb, const int16_t*, const int8_t* xh,
                     const uint8_t* xl, const float* xd, const float*) {
  const uint8x16_t perm = vld1q_u8(kTranspose4x4);
  const uint8x16_t lo4 = vdupq_n_u8(15);
  const uint8x16_t three = vdupq_n_u8(3);
  const int8x16_t k32 = vdupq_n_s8(32);
  float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f),
                        vdupq_n_f32(0.0f)};
  for (int64_t sb = 0; sb < nsb; ++sb, w += 210, xh += 256, xl += 256, xd += 8) {
    const float dd = ArmHalf(w + 208);
    const int8_t* scales = reinterpret_cast<const int8_t*>(w + 192);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = w + 64 * half;
      const uint8_t* qh = w + 128 + 32 * half;
      const int8_t* sc = scales + 8 * half;
      const int8_t* hh = xh + 128 * half;
      const uint8_t* ll = xl + 128 * half;
      const float* xdh = xd + 4 * half;
      for (int p = 0; p < 32; p += 16) {
        const uint8x16_t a = vqtbl1q_u8(vld1q_u8(ql + p), perm);
        const uint8x16_t b = vqtbl1q_u8(vld1q_u8(ql + 32 + p), perm);
        const uint8x16_t h = vqtbl1q_u8(vld1q_u8(qh + p), perm);
        const uint8x16_t q[4] = {
            vorrq_u8(vandq_u8(a, lo4), vshlq_n_u8(vandq_u8(h, three), 4)),
            vorrq_u8(vandq_u8(b, lo4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 2), three), 4)),
            vorrq_u8(vshrq_n_u8(a, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 4), three), 4)),
            vorrq_u8(vshrq_n_u8(b, 4), vshlq_n_u8(vshrq_n_u8(h, 6), 4))};
        const int g = p / 16;
        for (int k = 0; k < 4; ++k) {
          const int8x16_t qk = vsubq_s8(vreinterpretq_s8_u8(q[k]), k32);
          const int32x4_t s = SdotGroup(qk, hh + 32 * k + p, ll + 32 * k + p);
          acc[k] = SdotScaleAdd(s, dd * static_cast<float>(sc[g + 2 * k]) * xdh[k], acc[k]);
        }
      }
    }
  }
  return vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
}

#pragma GCC pop_options

// ---- I8MM: Q8_0 few rows with SMMLA ----
//
// SMMLA multiplies a 2x8 by an 8x2 byte matrix into a 2x2 int32 tile: lane 2i+j += sum over k of
// a[8i+k] * b[8j+k]. Each of its four dots is over 8 bytes: exactly one portable lane of a
// 32-block (values m, m+4, ..., m+28). So one SMMLA computes one portable lane m for two
// activation rows x two weight rows, and the kernel keeps its f32 accumulators per lane m
// (vectors over the four (activation row, weight row) pairs) instead of per pair (vectors over
// m): every lane sees the same convert and fused multiply-add as in the SDOT kernel, and the
// final (v0 + v1) + (v2 + v3) over m is vaddvq_f32's FADDP order, done across vectors.

// The activations for SMMLA, packed once per call (baseline code): per pair of rows and block,
// 8 registers, hi plane then lo plane, register m = [row 2p's values m, m+4, ..., m+28 | row
// 2p+1's], and the scales [d(2p), d(2p), d(2p+1), d(2p+1)]. From the SDOT layout (kernels.h)
// lane m is 4-byte group m of the block's first 16 bytes then group m of the last 16.
struct MmlaX {
  std::vector<int8_t> q;  // [pair][block][plane][m][16]
  std::vector<float> d;   // [pair][block][4]
};
constexpr int64_t kMmlaBlockBytes = 128;

HWY_INLINE void PackLanePairs(const int8_t* a, const int8_t* b, int8_t* out) {
  auto s32 = [](const int8_t* p) { return vreinterpretq_s32_s8(vld1q_s8(p)); };
  // [a's lane 0 | a's lane 1] and [lane 2 | lane 3]; b likewise.
  const int64x2_t a01 = vreinterpretq_s64_s32(vzip1q_s32(s32(a), s32(a + 16)));
  const int64x2_t a23 = vreinterpretq_s64_s32(vzip2q_s32(s32(a), s32(a + 16)));
  const int64x2_t b01 = vreinterpretq_s64_s32(vzip1q_s32(s32(b), s32(b + 16)));
  const int64x2_t b23 = vreinterpretq_s64_s32(vzip2q_s32(s32(b), s32(b + 16)));
  vst1q_s8(out, vreinterpretq_s8_s64(vzip1q_s64(a01, b01)));
  vst1q_s8(out + 16, vreinterpretq_s8_s64(vzip2q_s64(a01, b01)));
  vst1q_s8(out + 32, vreinterpretq_s8_s64(vzip1q_s64(a23, b23)));
  vst1q_s8(out + 48, vreinterpretq_s8_s64(vzip2q_s64(a23, b23)));
}

// Rows [0, 2 * pairs) of x into `out` (its vectors grow to fit; bounded by the activations).
void PackMmlaX(const QuantizedX& x, int64_t pairs, MmlaX& out) {
  const int64_t nb = x.cols / kQBlock;
  out.q.resize(static_cast<size_t>(pairs * nb * kMmlaBlockBytes));
  out.d.resize(static_cast<size_t>(pairs * nb * 4));
  int8_t* q = out.q.data();
  float* d = out.d.data();
  for (int64_t p = 0; p < pairs; ++p) {
    const int64_t ra = 2 * p * x.cols, rb = ra + x.cols;
    const float* da = x.d + 2 * p * nb;
    const float* db = da + nb;
    for (int64_t b = 0; b < nb; ++b, q += kMmlaBlockBytes, d += 4) {
      const int64_t e = b * kQBlock;
      PackLanePairs(x.hi + ra + e, x.hi + rb + e, q);
      PackLanePairs(reinterpret_cast<const int8_t*>(x.lo) + ra + e,
                    reinterpret_cast<const int8_t*>(x.lo) + rb + e, q + 64);
      d[0] = d[1] = da[b];
      d[2] = d[3] = db[b];
    }
  }
}

#pragma GCC push_options
// vmmlaq_s32 (SMMLA) needs the caller to be compiled with i8mm; every core that has it also has
// dotprod (Armv8.6 makes both mandatory), and the kernel runs only where HWCAP2 reports i8mm.
#pragma GCC target("arch=armv8.2-a+dotprod+i8mm")

// Q8_0 weight rows ra and rb (one block each, natural order) for SMMLA: register m = [ra's
// values m, m+4, ..., m+28 | rb's], the order of PackLanePairs. Two rounds of unzips: even and
// odd values, then values 0 and 2 (1 and 3) mod 4.
HWY_INLINE void LoadWeightPairs(const uint8_t* ra, const uint8_t* rb, int8x16_t* w) {
  auto s8 = [](const uint8_t* p) { return vld1q_s8(reinterpret_cast<const int8_t*>(p)); };
  const int8x16_t a0 = s8(ra), a1 = s8(ra + 16), b0 = s8(rb), b1 = s8(rb + 16);
  const int8x16_t ae = vuzp1q_s8(a0, a1), ao = vuzp2q_s8(a0, a1);
  const int8x16_t be = vuzp1q_s8(b0, b1), bo = vuzp2q_s8(b0, b1);
  w[0] = vuzp1q_s8(ae, be);
  w[1] = vuzp1q_s8(ao, bo);
  w[2] = vuzp2q_s8(ae, be);
  w[3] = vuzp2q_s8(ao, bo);
}

// One Q8_0 block of weight rows ba, bb against one packed pair of activation blocks (q, d):
// acc_m += (256 * hi . w + lo . w of lane m) * wscale * xd, per (activation row, weight row).
HWY_INLINE void MmlaBlockQ8_0(const uint8_t* ba, const uint8_t* bb, const int8_t* q, const float* d,
                              float32x4_t& acc0, float32x4_t& acc1, float32x4_t& acc2,
                              float32x4_t& acc3) {
  int8x16_t w[4];
  LoadWeightPairs(ba + 2, bb + 2, w);
  const float32x2_t ws = vset_lane_f32(ArmHalf(bb), vdup_n_f32(ArmHalf(ba)), 1);
  const float32x4_t scale = vmulq_f32(vcombine_f32(ws, ws), vld1q_f32(d));
  auto lane = [&](int m, float32x4_t acc) __attribute__((always_inline)) {
    int32x4_t t = vmmlaq_s32(vdupq_n_s32(0), vld1q_s8(q + 16 * m), w[m]);
    t = vshlq_n_s32(t, 8);
    t = vmmlaq_s32(t, vld1q_s8(q + 64 + 16 * m), w[m]);
    return vfmaq_f32(acc, vcvtq_f32_s32(t), scale);
  };
  acc0 = lane(0, acc0);
  acc1 = lane(1, acc1);
  acc2 = lane(2, acc2);
  acc3 = lane(3, acc3);
}

// GemvRowsQ8_0 with SMMLA for one packed pair of activation rows (pq, pd: its blocks in
// MmlaX) and the two weight rows at wa, wb: out[i][j] = activation row i . weight row j. Per
// (activation row, weight row) the arithmetic of GemvRowsQ8_0Sdot: the same int32 lane sums
// (256 * hi . w + lo . w), the same scale wscale * xd, even blocks into e and odd ones into
// o. One pair per call: with two (16 accumulators, plus the operands, against 32 registers)
// GCC 12 spilled accumulators in the loop. Not inlined: its caller is baseline-ISA code.
HWY_NOINLINE void MmlaPairQ8_0(const uint8_t* wa, const uint8_t* wb, const int8_t* pq,
                               const float* pd, int64_t nb, float (*out)[2]) {
  // Lane m of the portable kernels: lanes [row 0 . wa, row 0 . wb, row 1 . wa, row 1 . wb].
  // Named variables, not arrays: GCC 12 keeps an array of them in memory across the loop.
  const float32x4_t zero = vdupq_n_f32(0.0f);
  float32x4_t e0 = zero, e1 = zero, e2 = zero, e3 = zero;  // even blocks, lanes 0..3
  float32x4_t o0 = zero, o1 = zero, o2 = zero, o3 = zero;  // odd blocks
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, wa += 68, wb += 68, pq += 2 * kMmlaBlockBytes, pd += 8) {
    MmlaBlockQ8_0(wa, wb, pq, pd, e0, e1, e2, e3);
    MmlaBlockQ8_0(wa + 34, wb + 34, pq + kMmlaBlockBytes, pd + 4, o0, o1, o2, o3);
  }
  if (b < nb) MmlaBlockQ8_0(wa, wb, pq, pd, e0, e1, e2, e3);
  const float32x4_t s0 = vaddq_f32(e0, o0), s1 = vaddq_f32(e1, o1);
  const float32x4_t s2 = vaddq_f32(e2, o2), s3 = vaddq_f32(e3, o3);
  const float32x4_t sum = vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3));
  vst1_f32(out[0], vget_low_f32(sum));
  vst1_f32(out[1], vget_high_f32(sum));
}

#pragma GCC pop_options

// Whether the SDOT kernels run: the CPU has dotprod and no test turned them off.
HWY_INLINE bool UseSdot() {
  static const bool has_dotprod = cpu_features().dotprod;
  return has_dotprod && arm_int8_kernels_enabled();
}

// Whether the SMMLA kernel runs too: the CPU also has i8mm (the same test switch).
HWY_INLINE bool UseI8mm() {
  static const bool has_i8mm = cpu_features().i8mm;
  return has_i8mm && UseSdot();
}

// The decode kernels for `type`, if it has an SDOT one: rows [r0, r1) of y.
bool GemvIntRowsArch(GgmlType type, const uint8_t* w, size_t row_stride, int64_t rows_total,
                     int64_t cols, int64_t r0, int64_t r1, const QuantizedX& x, float* y,
                     const RowScratch&) {
  if (!UseSdot()) return false;
  GemvRowFn fn = nullptr;
  switch (type) {
    case GgmlType::Q8_0: fn = GemvRowQ8_0Sdot; break;
    case GgmlType::Q4_K: fn = GemvRowQ4KSdot; break;
    case GgmlType::Q6_K: fn = GemvRowQ6KSdot; break;
    default: return false;  // the other types: the portable kernels
  }
  const int64_t blocks = cols / type_info(type).block_elems;
  for (int64_t r = r0; r < r1; ++r) {
    PrefetchRow(w + (r + kPrefetchRows) * row_stride, row_stride, r + kPrefetchRows < rows_total);
    y[r] = fn(w + r * row_stride, blocks, x.v, x.hi, x.lo, x.d, x.s);
  }
  return true;
}

// Q8_0 with a few activation rows: the portable loop's tiling (4, 2, then 1 rows) with SDOT,
// or, where the CPU has i8mm, tiles of 2 weight rows x 2 activation rows with SMMLA.
bool Q8_0RowsArch(const uint8_t* w, size_t row_stride, int64_t rows_total, int64_t cols,
                  int64_t r0, int64_t r1, const QuantizedX& x, int64_t nx, float* y, int64_t ldy) {
  if (!UseSdot()) return false;
  const int64_t nb = cols / kQBlock;
  float out[4];
  int64_t r = r0;
  if (UseI8mm() && nx >= 2 && r1 - r0 >= 2) {
    // Weight rows two at a time with SMMLA over pairs of activation rows; an odd last
    // activation row, and an odd last weight row below, take the SDOT kernel.
    thread_local MmlaX px;
    const int64_t pairs = nx / 2;
    PackMmlaX(x, pairs, px);
    const int64_t pair_bytes = nb * kMmlaBlockBytes, pair_scales = nb * 4;
    for (; r + 2 <= r1; r += 2) {
      for (int64_t k = 0; k < 2; ++k) {
        const int64_t ahead = r + k + kPrefetchRows;
        PrefetchRow(w + ahead * row_stride, row_stride, ahead < rows_total);
      }
      const uint8_t* wa = w + r * row_stride;
      const uint8_t* wb = wa + row_stride;
      for (int64_t p = 0; p < pairs; ++p) {
        float tile[2][2];
        MmlaPairQ8_0(wa, wb, px.q.data() + p * pair_bytes, px.d.data() + p * pair_scales, nb, tile);
        for (int i = 0; i < 2; ++i) {
          y[(2 * p + i) * ldy + r] = tile[i][0];
          y[(2 * p + i) * ldy + r + 1] = tile[i][1];
        }
      }
      if (nx % 2) {
        const int64_t i = nx - 1;
        GemvRowsQ8_0Sdot<1>(wa, nb, x, i, out);
        GemvRowsQ8_0Sdot<1>(wb, nb, x, i, out + 1);
        y[i * ldy + r] = out[0];
        y[i * ldy + r + 1] = out[1];
      }
    }
  }
  for (; r < r1; ++r) {
    PrefetchRow(w + (r + kPrefetchRows) * row_stride, row_stride, r + kPrefetchRows < rows_total);
    const uint8_t* row = w + r * row_stride;
    int64_t i = 0;
    for (; i + 4 <= nx; i += 4) {
      GemvRowsQ8_0Sdot<4>(row, nb, x, i, out);
      for (int k = 0; k < 4; ++k) y[(i + k) * ldy + r] = out[k];
    }
    for (; i + 2 <= nx; i += 2) {
      GemvRowsQ8_0Sdot<2>(row, nb, x, i, out);
      for (int k = 0; k < 2; ++k) y[(i + k) * ldy + r] = out[k];
    }
    for (; i < nx; ++i) {
      GemvRowsQ8_0Sdot<1>(row, nb, x, i, out);
      y[i * ldy + r] = out[0];
    }
  }
  return true;
}
#endif  // HWY_TARGET == HWY_NEON && HWY_ARCH_ARM_A64
