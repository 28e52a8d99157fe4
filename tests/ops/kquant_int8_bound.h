// The error bound of the int8-activation GEMV for Q4_K and Q6_K weights (one activation row,
// kernels.h kquant_int8_gemv), shared by ops_test.cpp and matmul_test.cpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "gguf/types.h"

namespace reel::test {

inline float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_f32(h);
}

// Per element k of one Q4_K/Q6_K row: the largest magnitude either integer part of the kernel
// multiplies x_k by. Q4_K: |d sc| * 15 (the nibble part) + |dmin m| (the minimum part);
// Q6_K: |d sc| * (63 + 32) (q in 0..63, and the -32 offset taken separately).
inline void kquant_parts(GgmlType t, const uint8_t* row, int64_t cols, double* parts) {
  for (int64_t sb = 0; sb < cols / 256; ++sb) {
    double* p = parts + sb * 256;
    if (t == GgmlType::Q4_K) {
      const uint8_t* b = row + sb * 144;
      const double d = std::fabs(f16_at(b)), dmin = std::fabs(f16_at(b + 2));
      const uint8_t* s = b + 4;
      for (int j = 0; j < 8; ++j) {  // the 6-bit scale and minimum of sub-block j (ggml layout)
        const int sc = j < 4 ? s[j] & 63 : (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        const int m = j < 4 ? s[j + 4] & 63 : (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
        std::fill(p + 32 * j, p + 32 * j + 32, d * sc * 15 + dmin * m);
      }
    } else {  // Q6_K: int8 scale per 16 elements at byte 192, d at 208
      const uint8_t* b = row + sb * 210;
      const double d = std::fabs(f16_at(b + 208));
      for (int g = 0; g < 16; ++g) {
        const double sc = std::fabs(static_cast<double>(static_cast<int8_t>(b[192 + g])));
        std::fill(p + 16 * g, p + 16 * g + 16, d * sc * 95);
      }
    }
  }
}

// |y - y_ref| for one output (w: the dequantized row, exact in double), derived:
//  - activation rounding: per `block` values (32, or 256 where Q4_K decode rounds per super-block,
//    kernels.h q8k_gemv) d8 = max|x|/127 and |x_k - d8 q8_k| <= d8/2 (times
//    1.0001 for the f32 roundings of 127/max|x| and of the product x * 127/max|x|), and the
//    integer dots are exact, so the dot is off by at most sum_blocks d8/2 * sum |w_k|;
//  - f32: each 32-block term (scale * int32 sum, the minimum or offset product) takes at most
//    5 roundings and passes through fewer than cols/32 + 8 additions (per 256: fewer still)
//    (accumulator lanes, the horizontal sums), each bounded by parts_k * |x~_k| with |x~_k| <=
//    |x_k| + d8/2, so (cols + 8) * 2^-24 * sum_k parts_k (|x_k| + d8/2) bounds it, generously.
inline double kquant_int8_bound(GgmlType t, const uint8_t* row, const float* w, const float* x,
                                int64_t cols, int64_t block = 32) {
  std::vector<double> parts(static_cast<size_t>(cols));
  kquant_parts(t, row, cols, parts.data());
  double rounding = 0, f32 = 0;
  for (int64_t b0 = 0; b0 < cols; b0 += block) {
    double amax = 0, wsum = 0;
    for (int64_t k = b0; k < b0 + block; ++k) {
      amax = std::max(amax, double{std::fabs(x[k])});
      wsum += std::fabs(double{w[k]});
    }
    const double half_step = amax / 127.0 / 2.0 * 1.0001;
    rounding += half_step * wsum;
    for (int64_t k = b0; k < b0 + block; ++k) f32 += parts[k] * (std::fabs(x[k]) + half_step);
  }
  return rounding + (static_cast<double>(cols) + 8) * std::ldexp(1.0, -24) * f32;
}

}  // namespace reel::test
