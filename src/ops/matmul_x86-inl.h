// x86-only matmul kernels, written with intrinsics: the AVX3_DL (AVX-512 VNNI) decode GEMV, and
// (at the end) the Q4_K prefill kernel with int8 activations for AVX2 and up (on AVX3_DL the
// Q4_K and Q6_K int8 panels and the Q8_0 int16 panels instead), then the Q4_K and Q6_K decode
// GEMV with int8 activations for AVX2 and AVX3 (the targets without VNNI).
// Part of matmul.cpp: included there once per Highway target pass, inside its per-target
// namespace and after the portable GEMV kernels (which these use for tails), hence no include
// guard. For AVX3_DL, AVX3 and AVX2 it defines GemvIntRowsArch and sets REEL_ARCH_GEMV (see
// matmul.cpp); for AVX3 and AVX2 also QuantizeRowInt8 and REEL_KQ_INT8_GEMV.
//
// vpdpbusd sums 4 u8 x s8 products into each int32 lane in one instruction; the activations
// meet it as their two byte planes (QuantizedX::hi/lo, see DotPlanes). Q8_0 takes vpdpwssd on
// the int16 activations instead (GemvRowQ8_0Dpw).

#ifndef REEL_PUSH_AVX512VNNI
// Highway 1.0.3 compiles AVX3_DL with "avxvnni" (the VEX form, absent on Ice Lake) but not
// "avx512vnni", which its runtime check does require for that target: the AVX3_DL kernels below
// enable the EVEX form between these two (the file is included once per target, hence the guard).
#if HWY_COMPILER_CLANG
#define REEL_PUSH_AVX512VNNI \
  _Pragma("clang attribute push(__attribute__((target(\"avx512vnni\"))), apply_to = function)")
#define REEL_POP_AVX512VNNI _Pragma("clang attribute pop")
#else
#define REEL_PUSH_AVX512VNNI _Pragma("GCC push_options") _Pragma("GCC target(\"avx512vnni\")")
#define REEL_POP_AVX512VNNI _Pragma("GCC pop_options")
#endif
#endif

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// One half (128 values) of a Q6_K super-block w as its four 32-value quarters, q = 0..63 per
// byte. Quarter k: the low 4 bits are the low (k < 2) or high (k >= 2) nibbles of the 32 ql
// bytes at 64*half + 32*(k % 2); the high 2 bits are bits 2k, 2k+1 of the 32 qh bytes at
// 128 + 32*half.
HWY_INLINE void UnpackQ6KHalf(const uint8_t* w, int half, __m256i q[4]) {
  const __m256i lo4 = _mm256_set1_epi8(15);
  const __m256i three = _mm256_set1_epi8(3);
  const __m256i k30 = _mm256_set1_epi8(0x30);
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * half));
  const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * half + 32));
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 128 + 32 * half));
  // 8-bit shifts via 16-bit ones: the masks drop the bits shifted in from the neighbour.
  q[0] = _mm256_or_si256(_mm256_and_si256(a, lo4), _mm256_slli_epi16(_mm256_and_si256(h, three), 4));
  q[1] = _mm256_or_si256(_mm256_and_si256(b, lo4),
                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), three), 4));
  q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), lo4), _mm256_and_si256(h, k30));
  q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), lo4),
                         _mm256_and_si256(_mm256_srli_epi16(h, 2), k30));
}
#endif

#if HWY_TARGET == HWY_AVX3_DL
#undef REEL_ARCH_GEMV
#define REEL_ARCH_GEMV 1
REEL_PUSH_AVX512VNNI
// The dot of weights with v = 256*hi + lo (QuantizedX planes) per int32 lane, from two
// vpdpbusd (u8 x s8): T = init + u_hi . hi (hi signed, weights as unsigned bytes u_hi), then
// 256*T + lo . s_lo (lo unsigned, the same weights as signed bytes s_lo). Chaining through
// the shift keeps it at three instructions; |T| <= 4*255*64 per lane, far from overflow.
HWY_INLINE __m512i DotPlanes(__m512i init, __m512i u_hi, __m512i s_lo, const int8_t* hi,
                             const uint8_t* lo) {
  const __m512i t = _mm512_dpbusd_epi32(init, u_hi, _mm512_loadu_si512(hi));
  return _mm512_dpbusd_epi32(_mm512_slli_epi32(t, 8), _mm512_loadu_si512(lo), s_lo);
}

// Full-width AVX-512 variants for the types whose per-block bookkeeping dominated the portable
// kernels. GemvRowQ6KInt8Vnni takes `corr`: per 4 activation bytes, -K times their sum (see
// VnniOffsetSums), so vpdpbusd on unsigned (q + K) starts from a sum that cancels the offset.

// corr[j] = -k * (x[4j] + ... + x[4j+3]) for the cols/4 groups of the int8 values x: the
// offset of weights taken as unsigned (q + k) against x.
void VnniOffsetSums(const int8_t* x, int64_t cols, int k, int32_t* corr) {
  const __m512i kk = _mm512_set1_epi8(static_cast<char>(k));
  for (int64_t i = 0; i < cols; i += 64) {
    const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), kk, _mm512_loadu_si512(x + i));
    _mm512_storeu_si512(corr + i / 4, _mm512_sub_epi32(_mm512_setzero_si512(), s));
  }
}

// The fp16 values at p, p + stride, ..., p + 15 * stride (block scales or mins) as 16 floats:
// scalar loads into a stack array, then one conversion. vpgatherdd did this in one instruction,
// but it is slow where gathers are microcoded or mitigated: on AMD Zen 5 (bench_ops-style loop,
// Q8_0 2048-column rows, one thread) the gather held the kernel to 29-30 GB/s against 41-44
// with these loads, with the weights in L2 or streamed from DRAM.
HWY_INLINE __m512 LoadF16Strided16(const uint8_t* p, int64_t stride) {
  alignas(32) uint16_t h[16];
  for (int i = 0; i < 16; ++i) std::memcpy(&h[i], p + i * stride, 2);
  return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(h)));
}

// Q8_0 against the int16 activations directly: vpmovsxbw widens one block's 32 weights into
// one zmm, one vpdpwssd (int16 x int16 pairs into 16 int32 lanes) dots it with the block's 32
// activations, and the block's int32 lanes are scaled into f32 with one FMA whose scale is a
// broadcast load. That is four vector uops per block, against five for the two byte planes
// (two vpdpbusd, the shift, half an xor and insert), with no offset sums. The fp16 scales of
// 16 blocks come in together (LoadF16Strided16), times the activation scales, into a stack
// array.
// |w| <= 128 and |v| <= kQMax: a lane sums two products, far inside int32.
// Software prefetch: 16 16-block groups (8.7 KB) ahead, into L2. Measured (2B-shaped Q8_0
// decode, Intel Xeon, quiet, alternated runs): 2 threads 10.8-11.9 tokens/s against 8.9-10.3
// for the earlier two groups into L1; one thread 6.0-6.2 against 4.9-5.6. Into L1 at four or
// more groups, or into L2 at two, was slower; into L2 at 12 or 16 groups about the same as 8.
// On a Zen 4 EPYC (2 vCPUs, `reel bench -p 1 -n 64`, 2 threads, runs alternated) 8 groups left
// the memory idle whenever the host's bandwidth was high: with the probe at 54-64 GB/s, 8
// groups decoded 17.0-19.6 tokens/s (mean ~18), 16 groups 18.8-23.6 (~21.5; 24 and 32 alike);
// with the probe at 32-37 GB/s every distance gave 15.5-17. (Q4_K and Q6_K at 3x their
// distances below: no change in either phase.)
constexpr int kQ8PrefetchBytes = 16 * 16 * 34;
// The Q6_K and Q4_K kernels below prefetch their stream the same way, per super-block about
// 5 KB ahead into L2 (rows are contiguous, so the stream runs on into the next rows). They
// used to fetch whole rows two rows ahead (PrefetchRow): bursts of 27-79 prefetches per row
// that left the stream idle in between. Measured (bench_ops GemvKQuant, 2 threads, quiet,
// GB/s against the probe's 26-30): Q6_K 13-18 -> 19-20 at 16-32 super-blocks ahead (48:
// 17-19); Q4_K 18-19 -> 20-22 at 24-32 (16: 18-20). 2B-shaped Q4_K_M decode, 2 threads,
// alternated: 16.4-16.8 -> 19.3-19.6 tokens/s (58-62% -> 68-69% of the roofline).
constexpr int kQ6KPrefetchBytes = 24 * 210;
constexpr int kQ4KPrefetchBytes = 32 * 144;
float GemvRowQ8_0Dpw(const uint8_t* w, int64_t nb, const int16_t* xq, const float* xd) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  alignas(64) float sc[16];
  int64_t b0 = 0;
  for (; b0 + 16 <= nb; b0 += 16) {
    _mm512_store_ps(sc, _mm512_mul_ps(LoadF16Strided16(w + b0 * 34, 34), _mm512_loadu_ps(xd + b0)));
    const uint8_t* wb = w + b0 * 34 + 2;
    const int16_t* xb = xq + b0 * kQBlock;
    // Keep the DRAM stream ahead of the dot products: the hardware prefetcher alone lets the
    // stream idle while a group is computed.
    for (int l = 0; l < 16 * 34; l += 64)
      _mm_prefetch(reinterpret_cast<const char*>(wb + kQ8PrefetchBytes + l), _MM_HINT_T1);
    // Hidden from the optimizer, so the scales come as broadcast loads (GCC otherwise keeps
    // them in a register and spends a shuffle per block on each).
    const float* scp = sc;
    asm("" : "+r"(scp) : : "memory");
    for (int k = 0; k < 16; k += 2) {
      const __m512i x0 = _mm512_loadu_si512(xb + k * kQBlock);
      const __m512i x1 = _mm512_loadu_si512(xb + (k + 1) * kQBlock);
      const uint8_t* q = wb + k * 34;
      const __m512i w0 =
          _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)));
      const __m512i w1 =
          _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 34)));
      // Zeroing idioms (no execution port) rather than register copies of one zero.
      __m512i s0, s1;
      asm volatile("vpxord %0, %0, %0" : "=v"(s0));
      asm volatile("vpxord %0, %0, %0" : "=v"(s1));
      s0 = _mm512_dpwssd_epi32(s0, w0, x0);
      s1 = _mm512_dpwssd_epi32(s1, w1, x1);
      acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_set1_ps(scp[k]), acc0);
      acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), _mm512_set1_ps(scp[k + 1]), acc1);
    }
  }
  float t = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  if (b0 < nb) {  // The last nb % 16 blocks.
    t += GemvRowQ8_0(w + b0 * 34, nb - b0, xq + b0 * kQBlock, nullptr, nullptr, xd + b0, nullptr);
  }
  return t;
}

// Q4_K against the int8 row rounded per super-block (QuantizedX::k8/kd/ks, as the K-quant
// prefill rounds it), its 32-value groups in the order the nibbles lie: 64 weight bytes hold
// sub-blocks 4h and 4h+2 in their low nibbles and 4h+1, 4h+3 in their high ones, so k8 holds
// groups 0, 2, 1, 3, 4, 6, 5, 7 and each half of a nibble vector meets 64 consecutive bytes.
// vpmaddubsw sums nibble x int8 pairs into int16 (|.| <= 2*15*127 = 3810) and vpdpwssd applies
// the 6-bit sub-block scales in integer (words 0-15 one sub-block, 16-31 the other), so a
// super-block takes one conversion and one FMA by d * kd; |lane| <= 4*2*3810*63 per
// super-block. Per 128 values: 1 load, 3 nibble ops, 2 vpmaddubsw, 2 vpdpwssd and 2 scale
// permutes, against 14 vector ops for the kernel this replaced on per-32 activations, whose scales
// needed a float FMA per sub-block (GemvRowQ4KInt8Vnni: a broadcast 32-byte load, a masked
// shift, an and, vpdpbusd, a conversion, a scale permute and an FMA per 64 values). Measured
// (bench_ops, one thread, the other core busy, alternated with the previous build, AMD Zen 4):
// GemvHot2048x768/Q4_K 42.3-44.3 us -> 34.8-35.3, GemvKQuant 2048x2048 (from DRAM) 136-142 ->
// 122-129. Two rows per call, sharing the activation loads, measured the same as one. The
// minimums go through ks = kd * (sum of each 32 k8).
float GemvRowQ4KQ8K(const uint8_t* w, int64_t nsb, const int8_t* xq, const float* kd,
                    const float* ks) {
  const __m512i lo4 = _mm512_set1_epi8(15);
  // Word lanes 0-15 take sub-block scale a, 16-31 scale b, for (a, b) = (0, 2), (1, 3), (4, 6),
  // (5, 7): the sub-blocks of the low and high nibbles of weight bytes 0-63, then 64-127.
  const __m512i lane_half = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0x20002, 0x20002, 0x20002,
                                              0x20002, 0x20002, 0x20002, 0x20002, 0x20002);
  const __m512i sidx[4] = {lane_half, _mm512_add_epi16(lane_half, _mm512_set1_epi16(1)),
                           _mm512_add_epi16(lane_half, _mm512_set1_epi16(4)),
                           _mm512_add_epi16(lane_half, _mm512_set1_epi16(5))};
  __m512 acc = _mm512_setzero_ps();
  __m256 macc = _mm256_setzero_ps();
  for (int64_t sb = 0; sb < nsb; ++sb, w += 144, xq += 256) {
    for (int l = 0; l < 144; l += 64)
      _mm_prefetch(reinterpret_cast<const char*>(w + kQ4KPrefetchBytes + l), _MM_HINT_T1);
    const Q4KScales u = UnpackQ4KScales(w + 4);
    const __m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(u.sc)));
    const __m256 mf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(u.m)));
    macc = _mm256_fmadd_ps(_mm256_mul_ps(mf, _mm256_set1_ps(F16Scale(w + 2))),
                           _mm256_loadu_ps(ks + 8 * sb), macc);
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i v = _mm512_loadu_si512(w + 16 + 64 * h);
      const __m512i lo = _mm512_and_si512(v, lo4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4);
      const __m512i plo = _mm512_maddubs_epi16(lo, _mm512_loadu_si512(xq + 128 * h));
      const __m512i phi = _mm512_maddubs_epi16(hi, _mm512_loadu_si512(xq + 128 * h + 64));
      s0 = _mm512_dpwssd_epi32(s0, plo, _mm512_permutexvar_epi16(sidx[2 * h], sc16));
      s1 = _mm512_dpwssd_epi32(s1, phi, _mm512_permutexvar_epi16(sidx[2 * h + 1], sc16));
    }
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)),
                          _mm512_set1_ps(F16Scale(w) * kd[sb]), acc);
  }
  return _mm512_reduce_add_ps(_mm512_sub_ps(acc, _mm512_zextps256_ps512(macc)));
}

// Q6_K against the int8 row: two 32-value quarters (q = 0..63, unsigned) per 512-bit vector,
// unpacked at full width, one vpdpbusd each pair, started at `corr` (-32 times each 4
// activation bytes' sum, VnniOffsetSums on q8). A lane sums 4 products, |.| <= 4*95*127; lane l
// of pair p is scale group 4p + l/4, scaled in f32 by d * sc_g * d8_(g/2). Half the vector
// instructions of the int16-plane kernel it replaced (d0662bf: 256-bit quarters, two vpdpbusd
// and a shift each), which on AMD Zen 5 was bound by them (~27 GB/s a core).
float GemvRowQ6KInt8Vnni(const uint8_t* w, int64_t nsb, const int8_t* xq, const float* d8,
                         const int32_t* corr) {
  const __m512i lo4 = _mm512_set1_epi8(15);
  const __m512i k30 = _mm512_set1_epi8(0x30);
  const __m512i xd_idx = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const __m512i g0 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const __m512i gidx[4] = {g0, _mm512_add_epi32(g0, _mm512_set1_epi32(4)),
                           _mm512_add_epi32(g0, _mm512_set1_epi32(8)),
                           _mm512_add_epi32(g0, _mm512_set1_epi32(12))};
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < nsb; ++sb, w += 210, xq += 256, d8 += 8, corr += 64) {
    for (int l = 0; l < 210; l += 64)
      _mm_prefetch(reinterpret_cast<const char*>(w + kQ6KPrefetchBytes + l), _MM_HINT_T1);
    const __m512 xdv = _mm512_permutexvar_ps(xd_idx, _mm512_castps256_ps512(_mm256_loadu_ps(d8)));
    const __m512 sc = _mm512_mul_ps(
        _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                          _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192)))),
                      _mm512_set1_ps(F16Scale(w + 208))),
        xdv);
    for (int half = 0; half < 2; ++half) {
      // As UnpackQ6KHalf: quarters 0 | 1 are the low nibbles of the 64 ql bytes, 2 | 3 the high
      // ones; their high 2 bits are bits (0,1 | 2,3) and (4,5 | 6,7) of the 32 qh bytes,
      // brought to bits 4-5 by 16-bit shifts of 4 | 2 and 0 | -2 (the 0x30 mask drops the rest).
      const __m512i a = _mm512_loadu_si512(w + 64 * half);
      const __m512i h = _mm512_broadcast_i64x4(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 128 + 32 * half)));
      const __m512i h01 = _mm512_mask_slli_epi16(_mm512_slli_epi16(h, 2),
                                                 static_cast<__mmask32>(0x0000FFFFu), h, 4);
      const __m512i h23 = _mm512_mask_srli_epi16(h, static_cast<__mmask32>(0xFFFF0000u), h, 2);
      const __m512i q[2] = {
          _mm512_or_si512(_mm512_and_si512(a, lo4), _mm512_and_si512(h01, k30)),
          _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(a, 4), lo4),
                          _mm512_and_si512(h23, k30))};
      for (int p = 0; p < 2; ++p) {
        const int e = 128 * half + 64 * p;
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(corr + e / 4), q[p],
                                                _mm512_loadu_si512(xq + e));
        __m512& acc = p ? acc1 : acc0;
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                              _mm512_permutexvar_ps(gidx[2 * half + p], sc), acc);
      }
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

// Q4_0/Q4_1/Q5_0/Q5_1, two blocks per 512-bit vector: 128-bit lanes hold block b's 16
// bytes, again, then block b+1's twice; the second copy of each shifted right by 4 gives
// [low nibbles b | high nibbles b | low b+1 | high b+1], which is element order. The fifth
// bits of Q5 are the 32 bits of qh per block, used directly as a byte mask. Scales (and
// Q4_1/Q5_1 mins) of 16 blocks come in together, as in GemvRowQ8_0Dpw; the offset
// (-8 / -16) or min multiplies the activation block sums x.s.
template <bool kFive, bool kHasMin>
float GemvRowQ4Q5Vnni(const uint8_t* w, int64_t nb, const int16_t* xq, const int8_t* xh,
                      const uint8_t* xl, const float* xd, const float* xs) {
  constexpr int kBytes = 18 + (kFive ? 4 : 0) + (kHasMin ? 2 : 0);
  constexpr int kQh = kHasMin ? 4 : 2;
  constexpr int kQs = kQh + (kFive ? 4 : 0);
  const __m512i lo4 = _mm512_set1_epi8(15);
  const __m512i bit4 = _mm512_set1_epi8(16);
  const __m512i pair_idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m512i two = _mm512_set1_epi32(2);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), macc = _mm512_setzero_ps();
  int64_t b0 = 0;
  for (; b0 + 16 <= nb; b0 += 16) {
    const uint8_t* wb = w + b0 * kBytes;
    const __m512 d = LoadF16Strided16(wb, kBytes);
    const __m512 sc = _mm512_mul_ps(d, _mm512_loadu_ps(xd + b0));
    __m512 mins;
    if constexpr (kHasMin) {
      mins = LoadF16Strided16(wb + 2, kBytes);
    } else {
      mins = _mm512_mul_ps(d, _mm512_set1_ps(kFive ? -16.0f : -8.0f));
    }
    macc = _mm512_fmadd_ps(mins, _mm512_loadu_ps(xs + b0), macc);
    __m512i idx = pair_idx;
    for (int p = 0; p < 8; ++p, idx = _mm512_add_epi32(idx, two)) {
      const uint8_t* blk = wb + 2 * kBytes * p;
      const __m512i pair = _mm512_castsi256_si512(_mm256_inserti128_si256(
          _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + kQs))),
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + kBytes + kQs)), 1));
      const __m512i v = _mm512_shuffle_i64x2(pair, pair, 0x50);  // lanes 0, 0, 1, 1
      __m512i q = _mm512_and_si512(
          _mm512_mask_srli_epi16(v, static_cast<__mmask32>(0xFF00FF00u), v, 4), lo4);
      if constexpr (kFive) {
        uint32_t h0, h1;
        std::memcpy(&h0, blk + kQh, 4);
        std::memcpy(&h1, blk + kBytes + kQh, 4);
        q = _mm512_mask_add_epi8(q, static_cast<__mmask64>(h0 | uint64_t{h1} << 32), q, bit4);
      }
      const int64_t e = (b0 + 2 * p) * kQBlock;
      const __m512i s = DotPlanes(_mm512_setzero_si512(), q, q, xh + e, xl + e);
      __m512& acc = (p & 1) ? acc1 : acc0;
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_permutexvar_ps(idx, sc), acc);
    }
  }
  float r = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + _mm512_reduce_add_ps(macc);
  if (b0 < nb) {
    const int64_t e = b0 * kQBlock;
    r += GemvRowQ4Q5<kFive, kHasMin>(w + b0 * kBytes, nb - b0, xq + e, xh + e, xl + e, xd + b0,
                                     xs + b0);
  }
  return r;
}

REEL_POP_AVX512VNNI

// Q8_0 with a few activation rows (2..15) on AVX3_DL: each row through the decode kernel above,
// so that a sequence's logits do not depend on how many others it is batched with. The portable
// few-rows kernel (GemvRowsQ8_0) sums in the order of the portable GEMV, not GemvRowQ8_0Dpw's,
// and on a random model that flipped greedy tokens: a server's two concurrent requests answered
// differently from the same requests alone (test_server_openai, on an AVX-512 VNNI machine).
// Each weight row (34 bytes a block) stays in L1 across the activation rows.
#undef REEL_ARCH_Q8_ROWS
#define REEL_ARCH_Q8_ROWS 1
bool Q8_0RowsArch(const uint8_t* w, size_t row_stride, int64_t, int64_t cols, int64_t r0,
                  int64_t r1, const QuantizedX& x, int64_t nx, float* y, int64_t ldy) {
  const int64_t blocks = cols / kQBlock;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + r * row_stride;
    for (int64_t i = 0; i < nx; ++i)
      y[i * ldy + r] = GemvRowQ8_0Dpw(row, blocks, x.v + i * x.cols, x.d + i * blocks);
  }
  return true;
}

// The AVX3_DL decode kernels for `type`, if it has one: rows [r0, r1) of y. Outside the
// avx512vnni region (the kernels are called, not inlined).
bool GemvIntRowsArch(GgmlType type, const uint8_t* w, size_t row_stride, int64_t rows_total,
                     int64_t cols, int64_t r0, int64_t r1, const QuantizedX& x, float* y,
                     const RowScratch& scratch) {
  const int64_t blocks = cols / type_info(type).block_elems;
  if (type == GgmlType::Q4_K && x.k8 != nullptr) {  // rounded per super-block (QuantizeRowInt8)
    for (int64_t r = r0; r < r1; ++r)
      y[r] = GemvRowQ4KQ8K(w + r * row_stride, blocks, x.k8, x.kd, x.ks);
    return true;
  }
  if (type == GgmlType::Q6_K && x.q8 != nullptr) {
    // The -32's start values depend on x only: once per task, into the decode buffer (cols/4
    // int32 where it holds cols int16).
    auto* corr = reinterpret_cast<int32_t*>(scratch.wq);
    VnniOffsetSums(x.q8, cols, 32, corr);
    for (int64_t r = r0; r < r1; ++r)
      y[r] = GemvRowQ6KInt8Vnni(w + r * row_stride, blocks, x.q8, x.d8, corr);
    return true;
  }
  if (type == GgmlType::Q8_0) {
    // GemvRowQ8_0Dpw prefetches its own stream, 16 blocks at a time.
    for (int64_t r = r0; r < r1; ++r) y[r] = GemvRowQ8_0Dpw(w + r * row_stride, blocks, x.v, x.d);
    return true;
  }
  GemvRowFn wide = nullptr;
  switch (type) {
    case GgmlType::Q4_0:
      wide = GemvRowQ4Q5Vnni<false, false>;
      break;
    case GgmlType::Q4_1:
      wide = GemvRowQ4Q5Vnni<false, true>;
      break;
    case GgmlType::Q5_0:
      wide = GemvRowQ4Q5Vnni<true, false>;
      break;
    case GgmlType::Q5_1:
      wide = GemvRowQ4Q5Vnni<true, true>;
      break;
    default:
      // Q5_K, and Q4_K/Q6_K without the int8 row (kquant_int8_gemv switched off, as tests and
      // benchmarks do to compare): the portable kernels.
      return false;
  }
  for (int64_t r = r0; r < r1; ++r) {
    PrefetchRow(w + (r + kPrefetchRows) * row_stride, row_stride, r + kPrefetchRows < rows_total);
    y[r] = wide(w + r * row_stride, blocks, x.v, x.hi, x.lo, x.d, x.s);
  }
  return true;
}
#endif  // HWY_TARGET == HWY_AVX3_DL

// ---- Q4_K prefill with int8 activations (AVX2 and up) ----
//
// Many activation rows against Q4_K weights (MatmulFloatRows' case): instead of decoding the
// weights to f32 panels, the activations are quantized to int8 per 256 values (one super-block:
// dx = max|x|/127, q = round(x/dx), |x - dx q| <= dx/2; per 32 values also dx * sum q for the
// minimum term), and every weight super-block is dotted in integers:
//   vpmaddubsw: nibbles (u8, 0..15) x q (s8): pairs into int16, |sum| <= 2*15*127 = 3810;
//   vpmaddwd with the sub-block's 6-bit scale broadcast as int16: pairs into int32, so a lane
//   holds 4 products times the scale, <= 4*15*127*63 = 480060, and 8 sub-blocks accumulated
//   stay below 3.9e6 < 2^24: the lane converts to f32 exactly, once per super-block, and is
//   scaled by d * dx. The minimum adds -dmin * sum_j m_j * (dx * sum of sub-block j's q).
// One scale per 256 values (not per 32) lets the 6-bit scales act inside the integer sum, so
// only one conversion per super-block and tile pair is left; its rounding error is at most
// dx/2 = max|x over the 256|/254 per value (per 32 values it would be up to 8x smaller on
// uneven activations, at 8 conversions and FMAs per super-block instead of one).
// Register tile: 1 weight row x 8 activation rows, 8 int32 accumulators; the activation loads
// fold into vpmaddubsw. Per 32 values and row pair: 2 multiplies and 1 add (the f32 panel
// kernel: 4 FMAs per 32 values and pair), plus 1/8 of the per-super-block conversion work.
// The activations are quantized once per call (ops.cpp), shared by every task (64 weight rows);
// quantizing per task, as at first, cost ~14% of the instructions at 2048 columns.
// On AVX-512 CPUs the f32 panels run 512-bit FMAs and beat these 256-bit tiles (Intel Xeon,
// 2048x2048 Q4_K weights, 256 rows, one thread: int8 53.5 against panels 64.8 GMAC/s; with AVX2
// forced on the same CPU int8 54.2 against panels 37.6): AVX3_DL takes the interleaved panels
// with vpdpbusd at the end instead (Q4_K and Q6_K), AVX3 without VNNI the f32 panels
// (KQuantInt8PrefillType).
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// The types that take it, per target, where it beat the f32 panels (see the tiles below).
constexpr bool KQuantInt8PrefillType(GgmlType t) {
  return HWY_TARGET == HWY_AVX2      ? t == GgmlType::Q4_K || t == GgmlType::Q6_K
         : HWY_TARGET == HWY_AVX3_DL ? t == GgmlType::Q4_K || t == GgmlType::Q6_K
                                     : false;
}

constexpr int64_t kQ4KBlock = 256;  // values per super-block
constexpr int64_t kQ4KBytes = 144;  // d, dmin (f16), 12 scale bytes, 128 nibble bytes
constexpr int64_t kQ6KBytes = 210;  // ql[128], qh[64], 16 int8 scales, d (f16)

// DecodeQ4KMeta: the per-super-block numbers of weight rows, decoded once per task and reused
// by every activation tile.
void DecodeQ4KMeta(const uint8_t* w, int64_t nsb, int16_t* sc, float* mn, float* d) {
  for (int64_t sb = 0; sb < nsb; ++sb, w += kQ4KBytes) {
    const Q4KScales u = UnpackQ4KScales(w + 4);
    const __m128i s16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(u.sc)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(sc + 8 * sb), s16);
    const __m256 mf =
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(u.m))));
    _mm256_storeu_ps(mn + 8 * sb, _mm256_mul_ps(mf, _mm256_set1_ps(F16Scale(w + 2))));
    d[sb] = F16Scale(w);
  }
}

HWY_INLINE float HorizontalMax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

HWY_INLINE int32_t HorizontalSum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

HWY_INLINE float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// One activation row (cols % 256 == 0) to int8 per super-block: q [cols], dx [nsb],
// xbs [nsb * 8] = dx * (sum of each 32 q), g16 [nsb * 16] = sum of each 16 q.
void QuantizeKQuantActivations(const float* x, int64_t nsb, int8_t* q, float* dx, float* xbs,
                               int16_t* g16) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  // packs_epi32/packs_epi16 interleave the 128-bit lanes; this puts the dwords back in order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t sb = 0; sb < nsb; ++sb, x += kQ4KBlock, q += kQ4KBlock) {
    __m256 vmax = _mm256_setzero_ps();
    for (int k = 0; k < kQ4KBlock; k += 8)
      vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(x + k), abs_mask));
    const float amax = HorizontalMax(vmax);
    const float d = amax / 127.0f;
    // |x| * 127/amax <= 127 up to one rounding, which the nearest-int conversion absorbs
    // (127.00002 -> 127); packs saturates in any case.
    const __m256 id = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    dx[sb] = d;
    for (int g = 0; g < kQ4KBlock; g += 32) {
      __m256i v[4];
      for (int k = 0; k < 4; ++k)
        v[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + g + 8 * k), id));
      const int32_t first16 = HorizontalSum(_mm256_add_epi32(v[0], v[1]));
      const int32_t second16 = HorizontalSum(_mm256_add_epi32(v[2], v[3]));
      if (g16 != nullptr) {  // null: the caller needs no per-16 sums (QuantizeRowQ8K)
        g16[16 * sb + g / 16] = static_cast<int16_t>(first16);  // |sum| <= 16 * 127
        g16[16 * sb + g / 16 + 1] = static_cast<int16_t>(second16);
      }
      const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]),
                                                _mm256_packs_epi32(v[2], v[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + g),
                          _mm256_permutevar8x32_epi32(packed, order));
      xbs[8 * sb + g / 32] = d * static_cast<float>(first16 + second16);
    }
  }
}

HWY_INLINE uint8_t* AlignUp64(uint8_t* p) {
  return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
}

// Rows [0, n) of x into KQuantInt8X's layout (kernels.h): once per matmul call (ops.cpp).
void QuantizeRowsKQuantInt8(const float* x, int64_t n, int64_t cols, int8_t* q, float* dx,
                            float* xbs, int16_t* g16) {
  const int64_t nsb = cols / kQ4KBlock;
  for (int64_t i = 0; i < n; ++i) {
    QuantizeKQuantActivations(x + i * cols, nsb, q + i * cols, dx + i * nsb, xbs + i * nsb * 8,
                              g16 + i * nsb * 16);
  }
}

#if HWY_TARGET != HWY_AVX3_DL
// y[i*ldy] (+)= one weight row's super-blocks [0, nsb) (w, with its decoded sc/mn/d) . NX
// activation rows (int8 at xq + i*ldq, dx at i*ldd, xbs at i*ldd*8). One weight row and NX
// activation rows: the activation loads fold into vpmaddubsw either way (a second weight row
// would not save loads), and NX int32 accumulators plus the nibbles, the scale and a product
// leave the compiler room in 16 registers (a 2x4 tile spilled accumulators).
template <int NX>
HWY_NOINLINE void Q4KTile(const uint8_t* w, const int16_t* sc, const float* mn, const float* d,
                          const int8_t* xq, int64_t ldq, const float* dx, const float* xbs,
                          int64_t ldd, int64_t nsb, float* y, int64_t ldy, bool accumulate) {
  const __m256i lo4 = _mm256_set1_epi8(15);
  __m256 accf[NX];
  for (int i = 0; i < NX; ++i) accf[i] = _mm256_setzero_ps();
  for (int64_t sb = 0; sb < nsb; ++sb, w += kQ4KBytes, sc += 8, mn += 8, xq += kQ4KBlock) {
    __m256i acc[NX];
    for (int i = 0; i < NX; ++i) acc[i] = _mm256_setzero_si256();
    // Unrolled: a rolled loop left GCC moving each accumulator between registers per step.
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {  // sub-block j: low nibbles of chunk j/2, then its high ones
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16 + 16 * (j & ~1)));
      const __m256i nib = (j & 1) ? _mm256_and_si256(_mm256_srli_epi16(raw, 4), lo4)
                                  : _mm256_and_si256(raw, lo4);
      const __m256i scale = _mm256_set1_epi16(sc[j]);
      for (int i = 0; i < NX; ++i) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + i * ldq + 32 * j));
        acc[i] = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(nib, xv), scale), acc[i]);
        // Keeps the sum a running one: GCC otherwise reassociates it into a tree of all 8
        // sub-blocks' products, spilling them.
        asm("" : "+x"(acc[i]));
      }
    }
    const __m256 dr = _mm256_set1_ps(d[sb]);
    const __m256 mr = _mm256_loadu_ps(mn);
    for (int i = 0; i < NX; ++i) {
      const __m256 scale = _mm256_mul_ps(dr, _mm256_broadcast_ss(dx + i * ldd + sb));
      accf[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[i]), scale, accf[i]);
      accf[i] = _mm256_fnmadd_ps(mr, _mm256_loadu_ps(xbs + (i * ldd + sb) * 8), accf[i]);
    }
  }
  for (int i = 0; i < NX; ++i) {
    const float v = HorizontalSum(accf[i]);
    y[i * ldy] = accumulate ? y[i * ldy] + v : v;
  }
}

constexpr int kQ4KTileX = 8;  // activation rows per register tile
constexpr int64_t kQ4KKBlock = 8;  // super-blocks per k-block: 8 int8 rows x 2 KB stay in L1

void Q4KTileX(int nx, const uint8_t* w, const int16_t* sc, const float* mn, const float* d,
              const int8_t* xq, int64_t ldq, const float* dx, const float* xbs, int64_t ldd,
              int64_t nsb, float* y, int64_t ldy, bool accumulate) {
  switch (nx) {
#define REEL_Q4K_CASE(N) \
  case N: return Q4KTile<N>(w, sc, mn, d, xq, ldq, dx, xbs, ldd, nsb, y, ldy, accumulate);
    REEL_Q4K_CASE(8)
    REEL_Q4K_CASE(7)
    REEL_Q4K_CASE(6)
    REEL_Q4K_CASE(5)
    REEL_Q4K_CASE(4)
    REEL_Q4K_CASE(3)
    REEL_Q4K_CASE(2)
#undef REEL_Q4K_CASE
    default: return Q4KTile<1>(w, sc, mn, d, xq, ldq, dx, xbs, ldd, nsb, y, ldy, accumulate);
  }
}

// The decoded scales of one weight row: 8 int16 scales, 8 f32 minimums, one f32 d per
// super-block, as laid out in the thread's scratch.
constexpr int64_t kQ4KMetaBytesPerBlock = 8 * 2 + 8 * 4 + 4;
// wf holds at least 2 * kFloatPanel * kFloatKc floats (kernels.h), 64-byte aligned; three
// arrays, each aligned up to 64 bytes.
constexpr int64_t kQ4KMetaBudget = int64_t{2} * kFloatPanel * kFloatKc * int64_t{sizeof(float)} - 3 * 64;
static_assert(kKQuantInt8MaxCols / kQ4KBlock * kQ4KMetaBytesPerBlock <= kQ4KMetaBudget,
              "one weight row's decoded scales must fit the thread scratch");

// Rows [r0, r1) of y for nx activation rows already rounded to int8 (QuantizeRowsKQuantInt8).
// The weight rows' scales are decoded as many rows at a time as fit the thread's scratch.
void MatmulQ4KInt8(const uint8_t* w, size_t row_stride, int64_t cols, int64_t r0, int64_t r1,
                   const KQuantInt8X& x, int64_t nx, float* y, int64_t ldy, const RowScratch& s) {
  const int64_t nsb = cols / kQ4KBlock;
  const int64_t group = std::max<int64_t>(1, kQ4KMetaBudget / (nsb * kQ4KMetaBytesPerBlock));
  auto* base = reinterpret_cast<uint8_t*>(s.wf);
  for (int64_t g0 = r0; g0 < r1; g0 += group) {
    const int64_t rows = std::min(group, r1 - g0);
    auto* sc = reinterpret_cast<int16_t*>(base);
    auto* mn = reinterpret_cast<float*>(AlignUp64(base + rows * nsb * 16));
    auto* dw = reinterpret_cast<float*>(AlignUp64(reinterpret_cast<uint8_t*>(mn + rows * nsb * 8)));
    for (int64_t r = 0; r < rows; ++r) {
      DecodeQ4KMeta(w + (g0 + r) * row_stride, nsb, sc + r * nsb * 8, mn + r * nsb * 8,
                    dw + r * nsb);
    }
    // Activation tile and k-block outside, weight rows inside: the tile's int8 rows over one
    // k-block stay in L1 while the group's weight rows (fewer bytes per pass than the
    // activations) come from L2; partial sums over k-blocks accumulate in y.
    for (int64_t i = 0; i < nx; i += kQ4KTileX) {
      const int nt = static_cast<int>(std::min<int64_t>(kQ4KTileX, nx - i));
      for (int64_t k0 = 0; k0 < nsb; k0 += kQ4KKBlock) {
        const int64_t kb = std::min(kQ4KKBlock, nsb - k0);
        for (int64_t r = 0; r < rows; ++r) {
          Q4KTileX(nt, w + (g0 + r) * row_stride + k0 * kQ4KBytes, sc + (r * nsb + k0) * 8,
                   mn + (r * nsb + k0) * 8, dw + r * nsb + k0, x.q + i * cols + k0 * kQ4KBlock,
                   cols, x.dx + i * nsb + k0, x.xbs + (i * nsb + k0) * 8, nsb, kb,
                   y + i * ldy + g0 + r, ldy, k0 > 0);
        }
      }
    }
  }
}

// ---- Q6_K prefill with int8 activations (AVX2) ----
//
// The same activations as Q4_K's (one int8 scale dx per 256 values), and Q6_K's q (0..63, the
// 6-bit quants before the -32) as unsigned bytes:
//   vpmaddubsw: q (u8) x x (s8), pairs into int16, |pair| <= 2*63*127 = 16002;
//   vpmaddwd with the 16-value group's int8 scale as int16 (sign-extended once per super-block,
//   placed per quarter by one vpshufb): int32 lanes of 2 pairs x scale, <= 2*16002*128 = 4.1e6
//   per quarter, <= 3.3e7 over the super-block's 8 quarters;
//   the -32: minus 32 * sum_g sc_g * g16_g (g16: the activation's int sums of 16), one vpmaddwd
//   per super-block and activation row, |.| <= 32 * 2*128*2032 = 1.7e7.
// So the super-block's dot stays an exact int32 (< 5.1e7 < 2^31), converted to f32 once (above
// 2^24 that rounds, relative 2^-24: within the f32 summation term of the tests' bound) and
// scaled by d * dx. Register tile: 1 weight row x NX activation rows, as Q4KTile.

// vpshufb controls: from 8 int16 scales in each 128-bit lane (groups 8h..8h+7 of half h),
// scale 2k into every int16 of the low lane and 2k+1 into the high one, for quarter k.
struct Q6KQuarterScales {
  alignas(32) uint8_t b[4][32];
};
constexpr Q6KQuarterScales MakeQ6KQuarterScales() {
  Q6KQuarterScales s{};
  for (int k = 0; k < 4; ++k) {
    for (int i = 0; i < 32; ++i) s.b[k][i] = static_cast<uint8_t>(2 * (2 * k + i / 16) + (i & 1));
  }
  return s;
}
alignas(32) constexpr Q6KQuarterScales kQ6KQuarterScales = MakeQ6KQuarterScales();

// y[i*ldy] (+)= one Q6_K weight row's super-blocks [0, nsb) . NX int8 activation rows (q at
// xq + i*ldq, dx at i*ldd, g16 at i*ldd*16).
template <int NX>
HWY_NOINLINE void Q6KTile(const uint8_t* w, const int8_t* xq, int64_t ldq, const float* dx,
                          const int16_t* g16, int64_t ldd, int64_t nsb, float* y, int64_t ldy,
                          bool accumulate) {
  __m256 accf[NX];
  for (int i = 0; i < NX; ++i) accf[i] = _mm256_setzero_ps();
  for (int64_t sb = 0; sb < nsb; ++sb, w += kQ6KBytes, xq += kQ4KBlock) {
    const __m256i sc16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192)));
    __m256i acc[NX];
    for (int i = 0; i < NX; ++i) acc[i] = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      __m256i q[4];
      UnpackQ6KHalf(w, half, q);
      const __m256i sch = half ? _mm256_permute2x128_si256(sc16, sc16, 0x11)
                               : _mm256_permute2x128_si256(sc16, sc16, 0x00);
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const __m256i scale = _mm256_shuffle_epi8(
            sch, _mm256_load_si256(reinterpret_cast<const __m256i*>(kQ6KQuarterScales.b[k])));
        for (int i = 0; i < NX; ++i) {
          const __m256i xv = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(xq + i * ldq + 128 * half + 32 * k));
          acc[i] = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(q[k], xv), scale), acc[i]);
          asm("" : "+x"(acc[i]));  // a running sum, as in Q4KTile
        }
      }
    }
    const float d = F16Scale(w + 208);
    // The -32 as one more pair sum per row: (-32 * sc_g) x g16_g, |-32 * sc| <= 4096.
    const __m256i sc_m32 = _mm256_slli_epi16(_mm256_sub_epi16(_mm256_setzero_si256(), sc16), 5);
    for (int i = 0; i < NX; ++i) {
      const __m256i off = _mm256_madd_epi16(
          sc_m32, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g16 + (i * ldd + sb) * 16)));
      accf[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc[i], off)),
                                _mm256_set1_ps(d * dx[i * ldd + sb]), accf[i]);
    }
  }
  for (int i = 0; i < NX; ++i) {
    const float v = HorizontalSum(accf[i]);
    y[i * ldy] = accumulate ? y[i * ldy] + v : v;
  }
}

void Q6KTileX(int nx, const uint8_t* w, const int8_t* xq, int64_t ldq, const float* dx,
              const int16_t* g16, int64_t ldd, int64_t nsb, float* y, int64_t ldy, bool accumulate) {
  switch (nx) {
#define REEL_Q6K_CASE(N) \
  case N: return Q6KTile<N>(w, xq, ldq, dx, g16, ldd, nsb, y, ldy, accumulate);
    REEL_Q6K_CASE(8)
    REEL_Q6K_CASE(7)
    REEL_Q6K_CASE(6)
    REEL_Q6K_CASE(5)
    REEL_Q6K_CASE(4)
    REEL_Q6K_CASE(3)
    REEL_Q6K_CASE(2)
#undef REEL_Q6K_CASE
    default: return Q6KTile<1>(w, xq, ldq, dx, g16, ldd, nsb, y, ldy, accumulate);
  }
}

// Rows [r0, r1) of y for nx int8 activation rows, Q6_K weights; the loop order of MatmulQ4KInt8
// (no decoded scales to keep: the tile sign-extends them itself).
void MatmulQ6KInt8(const uint8_t* w, size_t row_stride, int64_t cols, int64_t r0, int64_t r1,
                   const KQuantInt8X& x, int64_t nx, float* y, int64_t ldy) {
  const int64_t nsb = cols / kQ4KBlock;
  for (int64_t i = 0; i < nx; i += kQ4KTileX) {
    const int nt = static_cast<int>(std::min<int64_t>(kQ4KTileX, nx - i));
    for (int64_t k0 = 0; k0 < nsb; k0 += kQ4KKBlock) {
      const int64_t kb = std::min(kQ4KKBlock, nsb - k0);
      for (int64_t r = r0; r < r1; ++r) {
        Q6KTileX(nt, w + r * row_stride + k0 * kQ6KBytes, x.q + i * cols + k0 * kQ4KBlock, cols,
                 x.dx + i * nsb + k0, x.g16 + (i * nsb + k0) * 16, nsb, kb, y + i * ldy + r, ldy,
                 k0 > 0);
      }
    }
  }
}

void MatmulKQuantInt8(GgmlType type, const uint8_t* w, size_t row_stride, int64_t cols,
                      int64_t r0, int64_t r1, const KQuantInt8X& x, int64_t nx, float* y,
                      int64_t ldy, const RowScratch& s) {
  if (type == GgmlType::Q6_K) return MatmulQ6KInt8(w, row_stride, cols, r0, r1, x, nx, y, ldy);
  MatmulQ4KInt8(w, row_stride, cols, r0, r1, x, nx, y, ldy, s);
}
#else
// ---- Q4_K and Q6_K prefill on AVX3_DL: 16 weight rows per vector, vpdpbusd ----
// In the weights' own layout a vector holds one row's values, so every sub-block's scale has to
// act per instruction (vpmaddubsw, then vpdpwssd with the scale: two multiplies per 64 values
// and row pair, as in the AVX2 tiles above). Here each task first repacks its weight rows, 16
// at a time (a panel) and kPanelKb super-blocks at a time, into lanes: bytes 4r..4r+3 of a
// vector are row r's 4 consecutive values as unsigned bytes (Q4_K 0..15, Q6_K 0..63), so one
// vpdpbusd (u8 x s8, 4 products summed into each int32 lane) takes 4 values of 16 rows against
// 4 int8 values of one activation row, broadcast from memory. A lane then holds one row's sum
// over a whole sub-block, exact (Q4_K's 32 values: <= 32*15*127 = 60960; Q6_K's 16, with its
// -32 as a start value of -32 * the activations' sum: <= 16*(63+32)*127 = 193040), converted to
// f32 once and scaled by that row's sub-block scale. Per 32 values, 16 weight rows and one
// activation row: Q4_K 8 vpdpbusd + a conversion + 2 FMAs (scale, and the minimum dmin * m_j *
// xbs_j), Q6_K 8 + 2 + 2, against 16 multiplies in the tiles above and 32 FMAs on the f32
// panels. A tile's output is 16 consecutive floats of y per activation row: no horizontal sums.
// The repack (a 16x16 transpose of 32-bit words per 1 KB) is shared by all activation rows of
// the call (up to 1024).
// Intel Xeon (AVX-512 VNNI), 2048x2048 weights, 256 activation rows, one thread
// (bench_ops Prefill2048x2048, REEL_BENCH_THREADS=1), GFLOP/s against the f32 panels' 145:
// Q4_K 326-337 (the 512-bit tile with vpmaddubsw + vpdpwssd it replaces: 155), Q6_K 282-293
// (it took the f32 panels: 136-145). One vpdpbusd per cycle would be 64 MACs a cycle: at about
// 2.6-3 GHz, 330-380 GFLOP/s.
REEL_PUSH_AVX512VNNI

constexpr int kPanelLanes = 16;  // weight rows per panel: the int32 lanes of a vector
constexpr int64_t kPanelKb = 4;  // super-blocks per repacked block
constexpr int64_t kPanelValueBytes = kPanelKb * kQ4KBlock * kPanelLanes;  // 16 KB
constexpr int64_t kPanelScaleFloats = kPanelKb * 16 * kPanelLanes;        // up to 16 sub-blocks
constexpr int64_t kPanelBytes =
    kPanelValueBytes + 2 * kPanelScaleFloats * 4;  // values, scales, mins
constexpr int64_t kTaskPanels = kFloatTaskRows / kPanelLanes;
static_assert(kTaskPanels * kPanelBytes + 64 <= int64_t{2} * kFloatPanel * kFloatKc * 4,
              "a task's panels must fit the thread scratch");

// r[i] (16 dwords each) transposed: r[i][j] <- r[j][i].
HWY_INLINE void Transpose16x16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
  }
  // u[4k + m], 128-bit lane L: column 4L + m of rows 4k..4k+3.
  for (int k = 0; k < 4; ++k) {
    u[4 * k] = _mm512_unpacklo_epi64(t[4 * k], t[4 * k + 2]);
    u[4 * k + 1] = _mm512_unpackhi_epi64(t[4 * k], t[4 * k + 2]);
    u[4 * k + 2] = _mm512_unpacklo_epi64(t[4 * k + 1], t[4 * k + 3]);
    u[4 * k + 3] = _mm512_unpackhi_epi64(t[4 * k + 1], t[4 * k + 3]);
  }
  for (int m = 0; m < 4; ++m) {
    const __m512i v_lo = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x44);  // lanes 0, 1 of each
    const __m512i v_hi = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xee);  // lanes 2, 3
    const __m512i w_lo = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x44);
    const __m512i w_hi = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xee);
    r[m] = _mm512_shuffle_i32x4(v_lo, w_lo, 0x88);  // lane 0 of the four
    r[4 + m] = _mm512_shuffle_i32x4(v_lo, w_lo, 0xdd);
    r[8 + m] = _mm512_shuffle_i32x4(v_hi, w_hi, 0x88);
    r[12 + m] = _mm512_shuffle_i32x4(v_hi, w_hi, 0xdd);
  }
}

// One super-block's values of a panel's 16 rows (vals[r * 256 + v]) into lanes:
// dst[(v / 4) * 64 + 4 r + v % 4].
void InterleavePanelRows(const uint8_t* vals, uint8_t* dst) {
  for (int blk = 0; blk < 4; ++blk) {
    __m512i r[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_load_si512(vals + i * kQ4KBlock + 64 * blk);
    Transpose16x16(r);
    for (int i = 0; i < 16; ++i) _mm512_store_si512(dst + (16 * blk + i) * 64, r[i]);
  }
}

// One Q4_K super-block b's 256 values (0..15) in order, and its 8 sub-blocks' d * sc_j and
// dmin * m_j (at sc[16 j] and mn[16 j]).
void UnpackQ4KSuperBlock(const uint8_t* b, uint8_t* vals, float* sc, float* mn) {
  const Q4KScales u = UnpackQ4KScales(b + 4);
  const float d = F16Scale(b), dmin = F16Scale(b + 2);
  for (int j = 0; j < 8; ++j) {
    sc[kPanelLanes * j] = d * static_cast<float>((u.sc >> (8 * j)) & 0xff);
    mn[kPanelLanes * j] = dmin * static_cast<float>((u.m >> (8 * j)) & 0xff);
  }
  const __m256i lo4 = _mm256_set1_epi8(15);
  for (int c = 0; c < 4; ++c) {  // chunk c: low nibbles are sub-block 2c, high ones 2c+1
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16 + 32 * c));
    _mm256_store_si256(reinterpret_cast<__m256i*>(vals + 64 * c), _mm256_and_si256(raw, lo4));
    _mm256_store_si256(reinterpret_cast<__m256i*>(vals + 64 * c + 32),
                       _mm256_and_si256(_mm256_srli_epi16(raw, 4), lo4));
  }
}

// One Q6_K super-block b's 256 values (0..63, before the -32) in order, and its 16 sub-blocks'
// d * sc_j (at sc[16 j]).
void UnpackQ6KSuperBlock(const uint8_t* b, uint8_t* vals, float* sc) {
  const float d = F16Scale(b + 208);
  for (int j = 0; j < 16; ++j)
    sc[kPanelLanes * j] = d * static_cast<float>(static_cast<int8_t>(b[192 + j]));
  for (int half = 0; half < 2; ++half) {
    __m256i q[4];
    UnpackQ6KHalf(b, half, q);
    for (int k = 0; k < 4; ++k)
      _mm256_store_si256(reinterpret_cast<__m256i*>(vals + 128 * half + 32 * k), q[k]);
  }
}

// Weight rows [0, rows) (rows <= 16, at w with row_stride) and super-blocks [0, kb) into one
// panel: values at panel[sb * 4096 + (v / 4) * 64 + 4 r + v % 4], then the sub-block scales
// and (Q4_K) minimums at [(sb * subs + j) * 16 + r] of the two float arrays after them. Rows
// past `rows` are zeros.
template <GgmlType T>
void RepackPanel(const uint8_t* w, size_t row_stride, int rows, int64_t kb, uint8_t* panel) {
  constexpr int subs = T == GgmlType::Q4_K ? 8 : 16;  // sub-blocks per super-block
  constexpr int64_t bytes = T == GgmlType::Q4_K ? kQ4KBytes : kQ6KBytes;
  auto* sc = reinterpret_cast<float*>(panel + kPanelValueBytes);
  float* mn = sc + kPanelScaleFloats;
  alignas(64) uint8_t vals[kPanelLanes * kQ4KBlock];
  if (rows < kPanelLanes) {
    std::memset(vals, 0, sizeof(vals));
    std::memset(sc, 0, 2 * kPanelScaleFloats * sizeof(float));
  }
  for (int64_t sb = 0; sb < kb; ++sb) {
    for (int r = 0; r < rows; ++r) {
      const uint8_t* b = w + r * row_stride + sb * bytes;
      float* scr = sc + sb * subs * kPanelLanes + r;
      if constexpr (T == GgmlType::Q4_K) {
        UnpackQ4KSuperBlock(b, vals + r * kQ4KBlock, scr, mn + sb * subs * kPanelLanes + r);
      } else {
        UnpackQ6KSuperBlock(b, vals + r * kQ4KBlock, scr);
      }
    }
    InterleavePanelRows(vals, panel + sb * kQ4KBlock * kPanelLanes);
  }
}

// acc[i] += the dot of `steps` * 4 values of the panel's 16 rows (lanes at w) with activation
// row i's (int8 at x + i * ldq).
template <int NX, int steps>
HWY_INLINE void PanelDots(const uint8_t* w, const int8_t* x, int64_t ldq, __m512i* acc) {
#pragma GCC unroll 8
  for (int t = 0; t < steps; ++t) {
    const __m512i wv = _mm512_load_si512(reinterpret_cast<const void*>(w + 64 * t));
    for (int i = 0; i < NX; ++i) {
      int32_t x4;
      std::memcpy(&x4, x + i * ldq + 4 * t, 4);
      acc[i] = _mm512_dpbusd_epi32(acc[i], wv, _mm512_set1_epi32(x4));
    }
  }
}

// y[i*ldy + r] (+)= the panel's row r . activation row i over its kb super-blocks, for the rows
// in `rows` and i < NX; activations q at xq + i*ldq, dx at i*ldd, xbs (Q4_K) or g16 (Q6_K)
// following QuantizeKQuantActivations' layout.
template <GgmlType T, int NX>
HWY_NOINLINE void PanelTile(const uint8_t* panel, const int8_t* xq, int64_t ldq, const float* dx,
                            const float* xbs, const int16_t* g16, int64_t ldd, int64_t kb, float* y,
                            int64_t ldy, bool accumulate, __mmask16 rows) {
  constexpr int subs = T == GgmlType::Q4_K ? 8 : 16;
  constexpr int sub_values = kQ4KBlock / subs;
  const auto* sc = reinterpret_cast<const float*>(panel + kPanelValueBytes);
  const float* mn = sc + kPanelScaleFloats;
  __m512 accf[NX];
  for (int i = 0; i < NX; ++i) accf[i] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < kb; ++sb) {
    __m512 sbf[NX];  // this super-block's sum before the activations' scale dx
    for (int i = 0; i < NX; ++i) sbf[i] = _mm512_setzero_ps();
    for (int j = 0; j < subs; ++j) {
      const int64_t sub = sb * subs + j;
      __m512i acc[NX];
      for (int i = 0; i < NX; ++i) {
        // Q6_K's q - 32: the sum starts at -32 times the activations' sum over the 16 values.
        acc[i] = T == GgmlType::Q4_K ? _mm512_setzero_si512()
                                     : _mm512_set1_epi32(-32 * g16[(i * ldd + sb) * 16 + j]);
      }
      PanelDots<NX, sub_values / 4>(panel + sub * sub_values * kPanelLanes,
                                    xq + sb * kQ4KBlock + j * sub_values, ldq, acc);
      const __m512 s = _mm512_load_ps(sc + sub * kPanelLanes);
      for (int i = 0; i < NX; ++i) sbf[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i]), s, sbf[i]);
      if constexpr (T == GgmlType::Q4_K) {  // xbs already holds dx
        const __m512 m = _mm512_load_ps(mn + sub * kPanelLanes);
        for (int i = 0; i < NX; ++i)
          accf[i] = _mm512_fnmadd_ps(m, _mm512_set1_ps(xbs[(i * ldd + sb) * 8 + j]), accf[i]);
      }
    }
    for (int i = 0; i < NX; ++i)
      accf[i] = _mm512_fmadd_ps(sbf[i], _mm512_set1_ps(dx[i * ldd + sb]), accf[i]);
  }
  for (int i = 0; i < NX; ++i) {
    float* yi = y + i * ldy;
    const __m512 v = accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(rows, yi), accf[i]) : accf[i];
    _mm512_mask_storeu_ps(yi, rows, v);
  }
}
REEL_POP_AVX512VNNI

constexpr int kPanelTileX = 8;  // activation rows per register tile

template <GgmlType T>
void PanelTileX(int nx, const uint8_t* panel, const int8_t* xq, int64_t ldq, const float* dx,
                const float* xbs, const int16_t* g16, int64_t ldd, int64_t kb, float* y,
                int64_t ldy, bool accumulate, __mmask16 rows) {
  switch (nx) {
#define REEL_PANEL_CASE(N) \
  case N:                  \
    return PanelTile<T, N>(panel, xq, ldq, dx, xbs, g16, ldd, kb, y, ldy, accumulate, rows);
    REEL_PANEL_CASE(8)
    REEL_PANEL_CASE(7)
    REEL_PANEL_CASE(6)
    REEL_PANEL_CASE(5)
    REEL_PANEL_CASE(4)
    REEL_PANEL_CASE(3)
    REEL_PANEL_CASE(2)
#undef REEL_PANEL_CASE
    default:
      return PanelTile<T, 1>(panel, xq, ldq, dx, xbs, g16, ldd, kb, y, ldy, accumulate, rows);
  }
}

// Rows [r0, r1) of y for nx activation rows already rounded to int8 (QuantizeRowsKQuantInt8):
// per block of kPanelKb super-blocks, up to kFloatTaskRows weight rows (4 panels, 96 KB of the
// thread's scratch) are repacked, then each panel (stays in L1) meets every activation tile,
// the partial sums over the blocks accumulating in y.
template <GgmlType T>
void MatmulPanels(const uint8_t* w, size_t row_stride, int64_t cols, int64_t r0, int64_t r1,
                  const KQuantInt8X& x, int64_t nx, float* y, int64_t ldy, const RowScratch& s) {
  constexpr int64_t bytes = T == GgmlType::Q4_K ? kQ4KBytes : kQ6KBytes;
  const int64_t nsb = cols / kQ4KBlock;
  uint8_t* base = AlignUp64(reinterpret_cast<uint8_t*>(s.wf));
  for (int64_t g0 = r0; g0 < r1; g0 += kFloatTaskRows) {
    const int64_t g1 = std::min(r1, g0 + kFloatTaskRows);
    const int64_t panels = (g1 - g0 + kPanelLanes - 1) / kPanelLanes;
    for (int64_t k0 = 0; k0 < nsb; k0 += kPanelKb) {
      const int64_t kb = std::min(kPanelKb, nsb - k0);
      for (int64_t p = 0; p < panels; ++p) {
        const int rows =
            static_cast<int>(std::min<int64_t>(kPanelLanes, g1 - g0 - p * kPanelLanes));
        RepackPanel<T>(w + (g0 + p * kPanelLanes) * row_stride + k0 * bytes, row_stride, rows, kb,
                       base + p * kPanelBytes);
      }
      const int64_t k_next = k0 + kPanelKb, kb_next = std::min(kPanelKb, nsb - k_next);
      NextBlockPrefetch next(w + g0 * row_stride + k_next * bytes, row_stride, g1 - g0,
                             kb_next > 0 ? kb_next * bytes : 0,
                             panels * ((nx + kPanelTileX - 1) / kPanelTileX));
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t rows = std::min<int64_t>(kPanelLanes, g1 - g0 - p * kPanelLanes);
        const auto mask = static_cast<__mmask16>((1u << rows) - 1);
        for (int64_t i = 0; i < nx; i += kPanelTileX) {
          next.step();
          const int nt = static_cast<int>(std::min<int64_t>(kPanelTileX, nx - i));
          PanelTileX<T>(nt, base + p * kPanelBytes, x.q + i * cols + k0 * kQ4KBlock, cols,
                        x.dx + i * nsb + k0, x.xbs + (i * nsb + k0) * 8,
                        x.g16 + (i * nsb + k0) * 16, nsb, kb, y + i * ldy + g0 + p * kPanelLanes,
                        ldy, k0 > 0, mask);
        }
      }
    }
  }
}

void MatmulKQuantInt8(GgmlType type, const uint8_t* w, size_t row_stride, int64_t cols, int64_t r0,
                      int64_t r1, const KQuantInt8X& x, int64_t nx, float* y, int64_t ldy,
                      const RowScratch& s) {
  if (type == GgmlType::Q6_K)
    return MatmulPanels<GgmlType::Q6_K>(w, row_stride, cols, r0, r1, x, nx, y, ldy, s);
  MatmulPanels<GgmlType::Q4_K>(w, row_stride, cols, r0, r1, x, nx, y, ldy, s);
}

// ---- Q8_0 prefill on AVX3_DL: int16 panels, vpdpwssd ----
// The f32 panels decode Q8_0 to floats and leave the activations exact; the few-row and decode
// kernels (GemvRowQ8_0Dpw) take them quantized to int16 per 32 values (quantize_rows, kQMax).
// Here the activations are quantized the same way once per call and the weights are repacked,
// 16 rows at a time, as int16 pairs: dword r of a vector holds values 2t, 2t+1 of row r, so
// one vpdpwssd takes 2 values of 16 rows against 2 activation values broadcast from memory.
// A lane then holds one row's integer dot over a block, exact and equal to the decode kernel's
// (|.| <= 32 * 128 * kQMax < 2^27), scaled in f32 by (d_w * d_x) in one FMA as there: a row's
// result differs between batch sizes only in the order of the f32 sums over blocks. int8
// activations would run the panels faster (vpdpbusd, 4 values a lane: 525 against ~250
// GFLOP/s on Zen 5), but at int8's rounding, which made a sequence's logits depend on its
// batch by ~1% and flipped greedy tokens (test_scheduler, Interleaved).
#undef REEL_Q8_INT16_PREFILL
#define REEL_Q8_INT16_PREFILL 1
REEL_PUSH_AVX512VNNI
constexpr int kQ8PanelTileX = 6;        // activation rows per register tile
constexpr int64_t kQ8PanelBlocks = 16;  // blocks of 32 values per repacked k-block
constexpr int64_t kQ8PanelValues = kQ8PanelBlocks * kQBlock * kPanelLanes;  // int16: 16 KB
constexpr int64_t kQ8PanelBytes = kQ8PanelValues * 2 + kQ8PanelBlocks * kPanelLanes * 4;
static_assert(kTaskPanels * kQ8PanelBytes + 64 <= int64_t{2} * kFloatPanel * kFloatKc * 4,
              "a task's panels must fit the thread scratch");

// Weight rows [0, rows) (rows <= 16) and blocks [0, nb) into one panel: block b's values at
// panel[b * 512 + t * 32 + 2 r + (v % 2)] (t = v / 2), then the scales d at [b * 16 + r] of
// the floats after kQ8PanelValues. Rows past `rows` are zeros. block(i, b, d) returns row i's
// block b as 32 int16 values and stores its scale in d.
template <class Block>
HWY_INLINE void RepackInt16Panel(int rows, int64_t nb, int16_t* panel, Block block) {
  auto* sc = reinterpret_cast<float*>(panel + kQ8PanelValues);
  for (int64_t b = 0; b < nb; ++b) {
    __m512i r[16];
    for (int i = 0; i < 16; ++i) {
      if (i >= rows) {
        r[i] = _mm512_setzero_si512();
        sc[b * kPanelLanes + i] = 0.0f;
        continue;
      }
      r[i] = block(i, b, sc[b * kPanelLanes + i]);
    }
    Transpose16x16(r);  // dword t of row i -> dword i of vector t
    for (int t = 0; t < 16; ++t) _mm512_store_si512(panel + b * 512 + t * 32, r[t]);
  }
}

void RepackQ8_0Panel(const uint8_t* w, size_t row_stride, int rows, int64_t nb, int16_t* panel) {
  RepackInt16Panel(rows, nb, panel, [&](int i, int64_t b, float& d) {
    const uint8_t* blk = w + i * row_stride + b * 34;
    d = F16Scale(blk);
    return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)));
  });
}

// y[i*ldy + r] (+)= row r of the two panels (rows 0-15 at `panel`, 16-31 at the next one)
// . activation row i over their nb blocks, for the rows in `rows` (bit r) and i < NX;
// activations v at xv + i*ldx, their scales at xd + i*ldd. Two panels per tile: each
// broadcast activation pair feeds two vpdpwssd (one broadcast per vpdpwssd ran ~10% slower).
template <int NX>
HWY_NOINLINE void Int16PanelTile(const int16_t* panel, const int16_t* xv, int64_t ldx,
                                 const float* xd, int64_t ldd, int64_t nb, float* y, int64_t ldy,
                                 bool accumulate, uint32_t rows) {
  constexpr int64_t kShorts = kQ8PanelBytes / 2;
  const auto* sc0 = reinterpret_cast<const float*>(panel + kQ8PanelValues);
  const auto* sc1 = reinterpret_cast<const float*>(panel + kShorts + kQ8PanelValues);
  __m512 accf[2][NX];
  for (int i = 0; i < NX; ++i) accf[0][i] = accf[1][i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m512i acc[2][NX];
    for (int i = 0; i < NX; ++i) acc[0][i] = acc[1][i] = _mm512_setzero_si512();
#pragma GCC unroll 16
    for (int t = 0; t < 16; ++t) {
      const __m512i w0 = _mm512_load_si512(panel + b * 512 + t * 32);
      const __m512i w1 = _mm512_load_si512(panel + kShorts + b * 512 + t * 32);
      for (int i = 0; i < NX; ++i) {
        int32_t x2;
        std::memcpy(&x2, xv + i * ldx + b * kQBlock + 2 * t, 4);
        const __m512i xb = _mm512_set1_epi32(x2);
        acc[0][i] = _mm512_dpwssd_epi32(acc[0][i], w0, xb);
        acc[1][i] = _mm512_dpwssd_epi32(acc[1][i], w1, xb);
      }
    }
    const __m512 s0 = _mm512_load_ps(sc0 + b * kPanelLanes);
    const __m512 s1 = _mm512_load_ps(sc1 + b * kPanelLanes);
    for (int i = 0; i < NX; ++i) {
      const __m512 d = _mm512_set1_ps(xd[i * ldd + b]);
      accf[0][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[0][i]), _mm512_mul_ps(s0, d), accf[0][i]);
      accf[1][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[1][i]), _mm512_mul_ps(s1, d), accf[1][i]);
    }
  }
  for (int h = 0; h < 2; ++h) {
    const auto mask = static_cast<__mmask16>(rows >> (16 * h));
    if (mask == 0) continue;
    for (int i = 0; i < NX; ++i) {
      float* yi = y + i * ldy + 16 * h;
      const __m512 v =
          accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(mask, yi), accf[h][i]) : accf[h][i];
      _mm512_mask_storeu_ps(yi, mask, v);
    }
  }
}
REEL_POP_AVX512VNNI

// Int16PanelTile for nx (1 to kMaxX) activation rows.
template <int kMaxX>
void Int16PanelTileX(int nx, const int16_t* panel, const int16_t* xv, int64_t ldx, const float* xd,
                     int64_t ldd, int64_t nb, float* y, int64_t ldy, bool accumulate,
                     uint32_t rows) {
  if constexpr (kMaxX > 1) {
    if (nx < kMaxX)
      return Int16PanelTileX<kMaxX - 1>(nx, panel, xv, ldx, xd, ldd, nb, y, ldy, accumulate, rows);
  }
  Int16PanelTile<kMaxX>(panel, xv, ldx, xd, ldd, nb, y, ldy, accumulate, rows);
}

// F16 weights as int16 panels (MatmulF16Int16, FloatMatmul::Int16): block b of a row (32
// values) becomes round(w / d_b) with d_b = max|w| / kF16Int16WMax, in RepackQ8_0Panel's layout,
// once per call and k-block like the f32 panels' conversion. The tile is Q8_0's: one int32 sum
// per block of 32, which bounds the two roundings together (kernels.h, kF16Int16XMax).
constexpr float kF16IntMax = kF16Int16WMax;

REEL_PUSH_AVX512VNNI
void RepackF16Int16Panel(const uint8_t* w, size_t row_stride, int rows, int64_t nb,
                         int16_t* panel) {
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  RepackInt16Panel(rows, nb, panel, [&](int i, int64_t b, float& d) {
    const auto* h = reinterpret_cast<const __m256i*>(w + i * row_stride + b * 64);
    const __m512 lo = _mm512_cvtph_ps(_mm256_loadu_si256(h));
    const __m512 hi = _mm512_cvtph_ps(_mm256_loadu_si256(h + 1));
    const float amax = _mm512_reduce_max_ps(
        _mm512_max_ps(_mm512_and_ps(lo, abs_mask), _mm512_and_ps(hi, abs_mask)));
    d = amax / kF16IntMax;
    const __m512 id = _mm512_set1_ps(amax > 0.0f ? kF16IntMax / amax : 0.0f);
    // Nearest-int conversion; |w| * id <= kF16IntMax up to one rounding, in int16 range.
    const __m256i qlo = _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(lo, id)));
    const __m256i qhi = _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(hi, id)));
    return _mm512_inserti64x4(_mm512_castsi256_si512(qlo), qhi, 1);
  });
}
REEL_POP_AVX512VNNI

// Rows [r0, r1) of y for nx activation rows quantized by quantize_rows: as MatmulPanels, per
// k-block of kQ8PanelBlocks blocks up to kFloatTaskRows weight rows are repacked (4 panels,
// 68 KB of the thread's scratch) by `repack` from blocks of kBlockBytes, then each panel meets
// every activation tile.
template <int64_t kBlockBytes, class Repack>
void MatmulInt16Panels(const uint8_t* w, size_t row_stride, int64_t cols, int64_t r0, int64_t r1,
                       const int16_t* xv, const float* xd, int64_t nx, float* y, int64_t ldy,
                       const RowScratch& s, Repack repack) {
  const int64_t nb = cols / kQBlock;
  auto* base = reinterpret_cast<int16_t*>(AlignUp64(reinterpret_cast<uint8_t*>(s.wf)));
  constexpr int64_t kPanelShorts = kQ8PanelBytes / 2;
  for (int64_t g0 = r0; g0 < r1; g0 += kFloatTaskRows) {
    const int64_t g1 = std::min(r1, g0 + kFloatTaskRows);
    const int64_t panels = (g1 - g0 + kPanelLanes - 1) / kPanelLanes;
    for (int64_t k0 = 0; k0 < nb; k0 += kQ8PanelBlocks) {
      const int64_t kb = std::min(kQ8PanelBlocks, nb - k0);
      // Panels in pairs (a tile takes two); past g1 a panel's rows are zeros.
      for (int64_t p = 0; p < (panels + 1) / 2 * 2; ++p) {
        const int rows =
            static_cast<int>(std::clamp<int64_t>(g1 - g0 - p * kPanelLanes, 0, kPanelLanes));
        repack(w + (g0 + p * kPanelLanes) * row_stride + k0 * kBlockBytes, row_stride, rows, kb,
               base + p * kPanelShorts);
      }
      const int64_t k_next = k0 + kQ8PanelBlocks;
      NextBlockPrefetch next(w + g0 * row_stride + k_next * kBlockBytes, row_stride, g1 - g0,
                             k_next < nb ? std::min(kQ8PanelBlocks, nb - k_next) * kBlockBytes : 0,
                             (panels + 1) / 2 * ((nx + kQ8PanelTileX - 1) / kQ8PanelTileX));
      for (int64_t p = 0; p < panels; p += 2) {
        const int64_t rows = std::min<int64_t>(2 * kPanelLanes, g1 - g0 - p * kPanelLanes);
        const uint32_t mask = rows == 32 ? ~0u : (1u << rows) - 1;
        for (int64_t i = 0; i < nx; i += kQ8PanelTileX) {
          next.step();
          Int16PanelTileX<kQ8PanelTileX>(static_cast<int>(std::min<int64_t>(kQ8PanelTileX, nx - i)),
                                         base + p * kPanelShorts, xv + i * cols + k0 * kQBlock,
                                         cols, xd + i * nb + k0, nb, kb,
                                         y + i * ldy + g0 + p * kPanelLanes, ldy, k0 > 0, mask);
        }
      }
    }
  }
}

void MatmulQ8_0Int16(const uint8_t* w, size_t row_stride, int64_t cols, int64_t r0, int64_t r1,
                     const int16_t* xv, const float* xd, int64_t nx, float* y, int64_t ldy,
                     const RowScratch& s) {
  MatmulInt16Panels<34>(w, row_stride, cols, r0, r1, xv, xd, nx, y, ldy, s, RepackQ8_0Panel);
}

void MatmulF16Int16(const uint8_t* w, size_t row_stride, int64_t cols, int64_t r0, int64_t r1,
                    const int16_t* xv, const float* xd, int64_t nx, float* y, int64_t ldy,
                    const RowScratch& s) {
  MatmulInt16Panels<64>(w, row_stride, cols, r0, r1, xv, xd, nx, y, ldy, s, RepackF16Int16Panel);
}
#endif  // HWY_TARGET != HWY_AVX3_DL

// ---- Q4_K and Q6_K decode with int8 activations (AVX2 and AVX3 without VNNI) ----
//
// The portable GEMV kernels widen every 4/6-bit weight to int16 and multiply it with the int16
// activations (vpmaddwd), which left Q4_K_M decode compute-bound on AVX2. Here the one
// activation row is also rounded to int8 (made once per matmul call from the float row: a single
// rounding, |x - d q| <= d/2, d = max|x|/127), and the weights meet it as unsigned bytes in
// vpmaddubsw (u8 x s8, pairs summed to int16):
//   Q4_K: per 256 values (QuantizedX::k8/kd/ks, as the K-quant prefill rounds), nibbles 0..15,
//         |pair| <= 2*15*127 = 3810; vpmaddwd with the sub-block's 6-bit scale makes int32
//         lanes, converted and scaled by d * kd in f32 once per super-block (GemvRowQ4KQ8K). The
//         minimum is -dmin * sum_j m_j * ks_j (ks = kd * sum of the sub-block's k8).
//   Q6_K: per 32 values (QuantizedX::q8/d8/g8), q 0..63, |pair| <= 2*63*127 = 16002; vpmaddwd
//         with the group's int8 scale placed in
//         the high byte of every int16 (scale * 256, one vpshufb from the super-block's scale
//         bytes) applies the per-16 scale in int32: |lane| <= 2*16002*32768 < 2^31. The -32
//         offset is -32 * sum_g sc_g * g8_g (g8: int16 sums of 16 q8), one vpmaddwd per
//         super-block. The f32 scale per 32 is d * d8_j / 256 (a power of two: exact).
// AVX3_DL takes the int8 rows too, in its own kernels (GemvRowQ6KInt8Vnni, and GemvRowQ4KQ8K on
// 512-bit vectors).
#undef REEL_KQ_INT8_GEMV
#define REEL_KQ_INT8_GEMV 1

// QuantizedX's int8 fields of one row (kernels.h, quantize_row_int8).
void QuantizeRowInt8(const float* x, int64_t cols, int8_t* q8, float* d8, float* s8, int16_t* g8) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  // packs_epi32/packs_epi16 interleave the 128-bit lanes; this puts the dwords back in order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < cols / kQBlock; ++b, x += kQBlock, q8 += kQBlock) {
    __m256 v[4];
    __m256 vmax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      vmax = _mm256_max_ps(vmax, _mm256_and_ps(v[k], abs_mask));
    }
    const float amax = HorizontalMax(vmax);
    const float d = amax / 127.0f;
    // |x| * 127/amax <= 127 up to one rounding, which the nearest-int conversion absorbs.
    const __m256 id = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], id));
    const __m256i packed =
        _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q8), _mm256_permutevar8x32_epi32(packed, order));
    const int32_t g0 = HorizontalSum(_mm256_add_epi32(q[0], q[1]));
    const int32_t g1 = HorizontalSum(_mm256_add_epi32(q[2], q[3]));
    g8[2 * b] = static_cast<int16_t>(g0);
    g8[2 * b + 1] = static_cast<int16_t>(g1);
    d8[b] = d;
    s8[b] = d * static_cast<float>(g0 + g1);
  }
}

#undef REEL_Q8K_GEMV
#define REEL_Q8K_GEMV 1
// QuantizedX's k8/kd/ks (kernels.h, quantize_row_q8k): rounded as the K-quant prefill rounds
// (QuantizeKQuantActivations). On AVX3_DL each super-block's 32-value groups 1 and 2, 5 and 6 are
// then swapped into the order GemvRowQ4KQ8K reads them (512-bit nibble vectors); the AVX2 kernel
// reads 32 bytes of nibbles at a time, whose two halves are consecutive groups: natural order.
bool QuantizeRowQ8K(const float* x, int64_t cols, int8_t* k8, float* kd, float* ks) {
  if (cols % kQ4KBlock != 0) return false;  // never for a Q4_K matrix (rows of 256-value blocks)
  const int64_t nsb = cols / kQ4KBlock;
  QuantizeKQuantActivations(x, nsb, k8, kd, ks, nullptr);
  if constexpr (HWY_TARGET == HWY_AVX3_DL) {
    for (int64_t sb = 0; sb < nsb; ++sb) {
      for (int8_t* g = k8 + sb * kQ4KBlock + 32; g < k8 + (sb + 1) * kQ4KBlock; g += 128) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g));
        const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 32));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(g), b);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(g + 32), a);
      }
    }
  }
  return true;
}

#if HWY_TARGET != HWY_AVX3_DL
#undef REEL_ARCH_GEMV
#define REEL_ARCH_GEMV 1

// One Q4_K row (nsb super-blocks) against the row rounded per super-block (QuantizedX::k8/kd/ks,
// natural order here): per 32 values vpmaddubsw (nibbles x int8, pairs into int16) and vpmaddwd
// with the sub-block's 6-bit scale in every int16 (a broadcast load of scale | scale << 16) sum
// into int32 lanes, |lane| <= 8*2*3810*63 per super-block, converted and scaled by d * kd once
// per super-block. The kernel this replaced rounded the row per 32 values, so each sub-block took
// a conversion and an FMA by its own float scale: 7 vector ops per 32 values against 5 here.
// Measured (bench_ops GemvHot2048x768/Q4_K with REEL_BENCH_AVX2=1, one thread, the other core
// busy, alternated with the previous build, AMD Zen 4): 48.1-50.2 us -> 43.3-44.0.
float GemvRowQ4KQ8K(const uint8_t* w, int64_t nsb, const int8_t* xq, const float* kd,
                    const float* ks) {
  const __m256i lo4 = _mm256_set1_epi8(15);
  __m256 acc = _mm256_setzero_ps(), macc = _mm256_setzero_ps();
  alignas(32) uint32_t scale[8];
  for (int64_t sb = 0; sb < nsb; ++sb, w += kQ4KBytes, xq += kQ4KBlock, ks += 8) {
    const Q4KScales u = UnpackQ4KScales(w + 4);
    const __m256i s32 = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(u.sc)));
    _mm256_store_si256(reinterpret_cast<__m256i*>(scale),
                       _mm256_or_si256(s32, _mm256_slli_epi32(s32, 16)));
    const __m256 mf =
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(u.m))));
    macc = _mm256_fmadd_ps(_mm256_mul_ps(mf, _mm256_set1_ps(F16Scale(w + 2))), _mm256_loadu_ps(ks),
                           macc);
    // Broadcast loads of the scales (a shuffle per scale would take the vector ports).
    const uint32_t* scp = scale;
    asm("" : "+r"(scp) : : "memory");
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    for (int ch = 0; ch < 4; ++ch) {
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16 + 32 * ch));
      const __m256i lo = _mm256_and_si256(raw, lo4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), lo4);
      const __m256i xl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 64 * ch));
      const __m256i xh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 64 * ch + 32));
      a0 =
          _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, xl),
                                                 _mm256_set1_epi32(static_cast<int>(scp[2 * ch]))));
      a1 = _mm256_add_epi32(
          a1, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, xh),
                                _mm256_set1_epi32(static_cast<int>(scp[2 * ch + 1]))));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(a0, a1)),
                          _mm256_set1_ps(F16Scale(w) * kd[sb]), acc);
  }
  return HorizontalSum(acc) - HorizontalSum(macc);
}

// vpshufb controls for Q6_K's activation block j (0..7) of a super-block: from the 16 scale
// bytes in both 128-bit lanes, scale 2j (low lane) / 2j+1 (high lane) into the high byte of
// every int16, zero into the low byte: the int16 scale * 256.
struct Q6KScaleShuffles {
  alignas(32) uint8_t b[8][32];
};
constexpr Q6KScaleShuffles MakeQ6KScaleShuffles() {
  Q6KScaleShuffles s{};
  for (int j = 0; j < 8; ++j) {
    for (int i = 0; i < 32; ++i) {
      s.b[j][i] = (i & 1) ? static_cast<uint8_t>(2 * j + i / 16) : uint8_t{0x80};
    }
  }
  return s;
}
alignas(32) constexpr Q6KScaleShuffles kQ6KScaleShuffles = MakeQ6KScaleShuffles();

// One Q6_K row (nsb super-blocks) against the int8 row; the quants as UnpackQ6KHalf gives them.
float GemvRowQ6KInt8(const uint8_t* w, int64_t nsb, const int8_t* xq, const float* xd,
                     const int16_t* xg) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  __m256 cacc = _mm256_setzero_ps();
  alignas(32) float scale[8];
  for (int64_t sb = 0; sb < nsb; ++sb, w += 210, xq += kQ4KBlock, xd += 8, xg += 16) {
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192));
    const __m256 f = _mm256_mul_ps(_mm256_set1_ps(F16Scale(w + 208)), _mm256_loadu_ps(xd));
    // The offset: lane j = sc_2j * g8_2j + sc_2j+1 * g8_2j+1, for block j.
    const __m256i off = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8),
                                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg)));
    cacc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(off), f, cacc);
    _mm256_store_ps(scale, _mm256_mul_ps(f, _mm256_set1_ps(1.0f / 256.0f)));
    const float* scp = scale;  // broadcast loads, as in GemvRowQ4KQ8K
    asm("" : "+r"(scp) : : "memory");
    const __m256i scb = _mm256_broadcastsi128_si256(sc8);
    for (int half = 0; half < 2; ++half) {
      __m256i q[4];
      UnpackQ6KHalf(w, half, q);
      for (int k = 0; k < 4; ++k) {
        const int j = 4 * half + k;
        const __m256i p = _mm256_maddubs_epi16(
            q[k], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * j)));
        const __m256i s = _mm256_shuffle_epi8(
            scb, _mm256_load_si256(reinterpret_cast<const __m256i*>(kQ6KScaleShuffles.b[j])));
        acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(p, s)),
                                 _mm256_broadcast_ss(scp + j), acc[k]);
      }
    }
  }
  const __m256 t = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
  return HorizontalSum(t) - 32.0f * HorizontalSum(cacc);
}

// Decode of Q4_K/Q6_K when the caller made the int8 row (x.q8); every other case goes to the
// portable kernels (false).
bool GemvIntRowsArch(GgmlType type, const uint8_t* w, size_t row_stride, int64_t rows_total,
                     int64_t cols, int64_t r0, int64_t r1, const QuantizedX& x, float* y,
                     const RowScratch&) {
  const bool q4k = type == GgmlType::Q4_K && x.k8 != nullptr;
  if (!q4k && (type != GgmlType::Q6_K || x.q8 == nullptr)) return false;
  const int64_t nsb = cols / kQ4KBlock;
  for (int64_t r = r0; r < r1; ++r) {
    PrefetchRow(w + (r + kPrefetchRows) * row_stride, row_stride, r + kPrefetchRows < rows_total);
    const uint8_t* row = w + r * row_stride;
    y[r] = q4k ? GemvRowQ4KQ8K(row, nsb, x.k8, x.kd, x.ks)
               : GemvRowQ6KInt8(row, nsb, x.q8, x.d8, x.g8);
  }
  return true;
}
#endif  // HWY_TARGET != HWY_AVX3_DL
#else
constexpr bool KQuantInt8PrefillType(GgmlType) { return false; }
// Not called: ops.cpp takes this path only where KQuantInt8Prefill() holds.
void QuantizeRowsKQuantInt8(const float*, int64_t, int64_t, int8_t*, float*, float*, int16_t*) {}
void MatmulKQuantInt8(GgmlType, const uint8_t*, size_t, int64_t, int64_t, int64_t,
                      const KQuantInt8X&, int64_t, float*, int64_t, const RowScratch&) {}
#endif  // HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
