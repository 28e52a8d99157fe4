// ggml type table and reference dequantization, written from the block layouts (see
// docs/qwen3-vl.md 9.4 and the comments above each function). These are deliberately plain
// scalar loops: they are the ground truth for the fast kernels, so clarity beats speed.
#include "gguf/types.h"

#include <array>
#include <bit>
#include <cstring>
#include <string>

#include "common/error.h"

namespace reel {
namespace {

constexpr int kQK = 32;    // elements per block of the legacy formats (Q4_0 ... Q8_1)
constexpr int kQKK = 256;  // elements per super-block of the k-quants

constexpr std::array<TypeInfo, 15> kTypes = {{
    {GgmlType::F32, "F32", 1, 4, true},
    {GgmlType::F16, "F16", 1, 2, true},
    {GgmlType::Q4_0, "Q4_0", kQK, 2 + 16, true},
    {GgmlType::Q4_1, "Q4_1", kQK, 2 + 2 + 16, true},
    {GgmlType::Q5_0, "Q5_0", kQK, 2 + 4 + 16, true},
    {GgmlType::Q5_1, "Q5_1", kQK, 2 + 2 + 4 + 16, true},
    {GgmlType::Q8_0, "Q8_0", kQK, 2 + 32, true},
    {GgmlType::Q8_1, "Q8_1", kQK, 2 + 2 + 32, false},
    {GgmlType::Q2_K, "Q2_K", kQKK, 16 + 64 + 2 + 2, true},
    {GgmlType::Q3_K, "Q3_K", kQKK, 32 + 64 + 12 + 2, true},
    {GgmlType::Q4_K, "Q4_K", kQKK, 2 + 2 + 12 + 128, true},
    {GgmlType::Q5_K, "Q5_K", kQKK, 2 + 2 + 12 + 32 + 128, true},
    {GgmlType::Q6_K, "Q6_K", kQKK, 128 + 64 + 16 + 2, true},
    {GgmlType::Q8_K, "Q8_K", kQKK, 4 + 256 + 2 * 16, false},
    {GgmlType::BF16, "BF16", 1, 2, true},
}};

uint16_t load_u16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
uint32_t load_u32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
float load_fp16(const uint8_t* p) {
  return fp16_to_f32(load_u16(p));
}

// Q4_0 (18 bytes): fp16 d; u8 qs[16]. Element j < 16 is the low nibble of qs[j], element
// j + 16 the high nibble; x = d * (q - 8).
void dequant_q4_0(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 15) - 8);
    y[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

// Q4_1 (20 bytes): fp16 d; fp16 m; u8 qs[16]. Nibbles as Q4_0, unsigned; x = d * q + m.
void dequant_q4_1(const uint8_t* b, float* y) {
  const float d = load_fp16(b), m = load_fp16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(qs[j] & 15) + m;
    y[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

// The 5-bit legacy formats add a fifth bit per element from a little-endian u32 `qh`:
// bit i belongs to element i.
int q5_value(const uint8_t* qs, uint32_t qh, int i) {
  const int low = i < 16 ? (qs[i] & 15) : (qs[i - 16] >> 4);
  return low | static_cast<int>(((qh >> i) & 1) << 4);
}

// Q5_0 (22 bytes): fp16 d; u8 qh[4]; u8 qs[16]. x = d * (q - 16).
void dequant_q5_0(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  const uint32_t qh = load_u32(b + 2);
  for (int i = 0; i < kQK; ++i) y[i] = d * static_cast<float>(q5_value(b + 6, qh, i) - 16);
}

// Q5_1 (24 bytes): fp16 d; fp16 m; u8 qh[4]; u8 qs[16]. x = d * q + m.
void dequant_q5_1(const uint8_t* b, float* y) {
  const float d = load_fp16(b), m = load_fp16(b + 2);
  const uint32_t qh = load_u32(b + 4);
  for (int i = 0; i < kQK; ++i) y[i] = d * static_cast<float>(q5_value(b + 8, qh, i)) + m;
}

// Q8_0 (34 bytes): fp16 d; int8 q[32]. x = d * q.
void dequant_q8_0(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  for (int i = 0; i < kQK; ++i) y[i] = d * static_cast<float>(static_cast<int8_t>(b[2 + i]));
}

// Q2_K (84 bytes): u8 scales[16]; u8 qs[64]; fp16 d; fp16 dmin. Sixteen sub-blocks of 16;
// scales[s] holds the 4-bit scale (low nibble) and 4-bit min (high nibble) of sub-block s.
// Element 128h + 32j + l (h < 2, j < 4, l < 32) is bits 2j..2j+1 of qs[32h + l] and belongs
// to sub-block 8h + 2j + l/16. x = d * sc * q - dmin * m.
void dequant_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = load_fp16(b + 80), dmin = load_fp16(b + 82);
  for (int h = 0; h < 2; ++h) {
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t sc = scales[8 * h + 2 * j + l / 16];
        const int q = (qs[32 * h + l] >> (2 * j)) & 3;
        const float dl = d * static_cast<float>(sc & 15);
        const float ml = dmin * static_cast<float>(sc >> 4);
        y[128 * h + 32 * j + l] = dl * static_cast<float>(q) - ml;
      }
    }
  }
}

// Q3_K sub-block scale s (0..15): 6 bits, stored with a +32 bias. The low 4 bits are the low
// nibble of scales[s] for s < 8 and the high nibble of scales[s - 8] otherwise; the high 2 bits
// come from scales[8 + s % 4], at bit position 2 * (s / 4).
int q3_k_scale(const uint8_t* scales, int s) {
  const int low = s < 8 ? (scales[s] & 15) : (scales[s - 8] >> 4);
  const int high = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Q3_K (110 bytes): u8 hmask[32]; u8 qs[64]; u8 scales[12]; fp16 d. Element 128h + 32j + l
// takes bits 2j..2j+1 of qs[32h + l] as its low two bits; bit (4h + j) of hmask[l] is the high
// bit, and a cleared high bit means "subtract 4". Sub-block 8h + 2j + l/16. x = d * sc * q.
void dequant_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* scales = b + 96;
  const float d = load_fp16(b + 108);
  for (int h = 0; h < 2; ++h) {
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < 32; ++l) {
        const float dl = d * static_cast<float>(q3_k_scale(scales, 8 * h + 2 * j + l / 16));
        const int low = (qs[32 * h + l] >> (2 * j)) & 3;
        const bool high = (hmask[l] >> (4 * h + j)) & 1;
        y[128 * h + 32 * j + l] = dl * static_cast<float>(low - (high ? 0 : 4));
      }
    }
  }
}

// 6-bit scale and min of sub-block j (0..7) as packed in the 12 scale bytes of Q4_K and Q5_K.
void k4_scale_min(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K (144 bytes): fp16 d; fp16 dmin; u8 scales[12]; u8 qs[128]. Chunk c (64 elements) uses
// qs[32c..]: low nibbles with sub-block 2c, then high nibbles with sub-block 2c+1.
// x = d * sc * q - dmin * m.
void dequant_q4_k(const uint8_t* b, float* y) {
  const float d = load_fp16(b), dmin = load_fp16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  for (int c = 0; c < 4; ++c) {
    for (int half = 0; half < 2; ++half) {
      int sc, m;
      k4_scale_min(scales, 2 * c + half, &sc, &m);
      const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        const int q = half == 0 ? (qs[32 * c + l] & 15) : (qs[32 * c + l] >> 4);
        y[64 * c + 32 * half + l] = dl * static_cast<float>(q) - ml;
      }
    }
  }
}

// Q5_K (176 bytes): fp16 d; fp16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]. As Q4_K, plus a
// fifth bit: element 64c + 32*half + l takes bit (2c + half) of qh[l] as its bit 4.
void dequant_q5_k(const uint8_t* b, float* y) {
  const float d = load_fp16(b), dmin = load_fp16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int c = 0; c < 4; ++c) {
    for (int half = 0; half < 2; ++half) {
      int sc, m;
      k4_scale_min(scales, 2 * c + half, &sc, &m);
      const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        const int low = half == 0 ? (qs[32 * c + l] & 15) : (qs[32 * c + l] >> 4);
        const int high = (qh[l] >> (2 * c + half)) & 1;
        y[64 * c + 32 * half + l] = dl * static_cast<float>(low | (high << 4)) - ml;
      }
    }
  }
}

// Q6_K (210 bytes): u8 ql[128]; u8 qh[64]; int8 scales[16]; fp16 d. Element 128h + 32k + l
// (k < 4, l < 32): low 4 bits from ql[64h + l + 32*(k & 1)] (low nibble for k < 2, high for
// k >= 2), high 2 bits are bits 2k..2k+1 of qh[32h + l]; scale scales[8h + 2k + l/16].
// x = d * sc * (q - 32).
void dequant_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float d = load_fp16(b + 208);
  for (int h = 0; h < 2; ++h) {
    for (int k = 0; k < 4; ++k) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t lbyte = ql[64 * h + l + 32 * (k & 1)];
        const int low = k < 2 ? (lbyte & 15) : (lbyte >> 4);
        const int high = (qh[32 * h + l] >> (2 * k)) & 3;
        const float dl = d * static_cast<float>(scales[8 * h + 2 * k + l / 16]);
        y[128 * h + 32 * k + l] = dl * static_cast<float>((low | (high << 4)) - 32);
      }
    }
  }
}

using BlockDequant = void (*)(const uint8_t*, float*);

BlockDequant block_dequant(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0:
      return dequant_q4_0;
    case GgmlType::Q4_1:
      return dequant_q4_1;
    case GgmlType::Q5_0:
      return dequant_q5_0;
    case GgmlType::Q5_1:
      return dequant_q5_1;
    case GgmlType::Q8_0:
      return dequant_q8_0;
    case GgmlType::Q2_K:
      return dequant_q2_k;
    case GgmlType::Q3_K:
      return dequant_q3_k;
    case GgmlType::Q4_K:
      return dequant_q4_k;
    case GgmlType::Q5_K:
      return dequant_q5_k;
    case GgmlType::Q6_K:
      return dequant_q6_k;
    default:
      return nullptr;
  }
}

}  // namespace

std::optional<TypeInfo> type_info(uint32_t id) {
  for (const TypeInfo& t : kTypes) {
    if (static_cast<uint32_t>(t.type) == id) return t;
  }
  return std::nullopt;
}

TypeInfo type_info(GgmlType type) {
  auto info = type_info(static_cast<uint32_t>(type));
  // A GgmlType is made from a file's id only after type_info(uint32_t) knew it.
  if (!info) {
    throw InternalError("unknown ggml type id " + std::to_string(static_cast<uint32_t>(type)));
  }
  return *info;
}

size_t row_bytes(GgmlType type, int64_t n) {
  const TypeInfo info = type_info(type);
  if (n < 0 || n % info.block_elems != 0) {
    // Callers check rows against the block size when they bind a tensor.
    throw InternalError("row of " + std::to_string(n) + " elements is not a whole number of " +
                        std::string(info.name) + " blocks");
  }
  return static_cast<size_t>(n / info.block_elems) * static_cast<size_t>(info.block_bytes);
}

void dequantize_row_ref(GgmlType type, const void* src, float* dst, int64_t n) {
  const TypeInfo info = type_info(type);
  if (!info.supported) throw Unsupported("cannot dequantize ggml type " + std::string(info.name));
  const size_t bytes = row_bytes(type, n);  // validates n
  const auto* in = static_cast<const uint8_t*>(src);
  switch (type) {
    case GgmlType::F32:
      std::memcpy(dst, in, bytes);
      return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(load_u16(in + 2 * i));
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(in + 2 * i));
      return;
    default:
      break;
  }
  const BlockDequant dequant = block_dequant(type);
  for (int64_t b = 0; b < n / info.block_elems; ++b) {
    dequant(in + b * info.block_bytes, dst + b * info.block_elems);
  }
}

float fp16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;  // signed zero
  } else {
    // Subnormal half: normalise. The value is mant * 2^-24.
    int e = -14;
    while ((mant & 0x400) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (static_cast<uint32_t>(e + 127) << 23) | ((mant & 0x3ff) << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t f32_to_fp16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00 | static_cast<uint16_t>((abs >> 13) & 0x3ff);  // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520: overflow to inf
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero): value / 2^-24, rounded to nearest even. Below 2^-25 it
    // rounds to zero; the shift handles that since the implicit bit is added first.
    if (abs < 0x33000000u) return sign;
    const uint32_t mant = (abs & 0x7fffff) | 0x800000;
    // value = mant * 2^(exp - 150) and one subnormal step is 2^-24, so drop 126 - exp bits
    // (between 14 and 24 here).
    const uint32_t total_shift = 126 - (abs >> 23);
    uint32_t q = mant >> total_shift;
    const uint32_t rem = mant & ((1u << total_shift) - 1);
    const uint32_t half = 1u << (total_shift - 1);
    if (rem > half || (rem == half && (q & 1))) ++q;
    return sign | static_cast<uint16_t>(q);
  }
  // Normal: rebias exponent, round the 13 dropped mantissa bits to nearest even. A carry out of
  // the mantissa correctly bumps the exponent.
  uint32_t r = abs - ((127 - 15) << 23);
  const uint32_t dropped = r & 0x1fff;
  r >>= 13;
  if (dropped > 0x1000 || (dropped == 0x1000 && (r & 1))) ++r;
  return sign | static_cast<uint16_t>(r);
}

float bf16_to_f32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

}  // namespace reel
