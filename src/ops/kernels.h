// Internal kernel entry points of the ops layer. Each is compiled once per Highway target
// (matmul.cpp, vec.cpp) and picked at run time; ops.cpp and roofline.cpp drive them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "gguf/types.h"

namespace reel::ops::detail {

// Activations quantized for integer dot products: per block of 32 values one f32 scale d and
// s = d * (sum of the 32 int8 values), the latter for weight types with an additive min.
struct QuantizedX {
  const int8_t* q = nullptr;  // [rows][cols]
  const float* d = nullptr;   // [rows][cols / 32]
  const float* s = nullptr;   // [rows][cols / 32]
  int64_t cols = 0;
};
constexpr int kQBlock = 32;

// Rows [0, n) of x (each `cols` floats, cols % 32 == 0) into q/d/s laid out as QuantizedX.
void quantize_rows_q8(const float* x, int64_t n, int64_t cols, int8_t* q, float* d, float* s);

// Weight types with an integer fast path (matmul.cpp), others use dequantize-then-f32.
bool has_int_path(GgmlType type);
bool has_float_path(GgmlType type);  // F32, F16, BF16

// Per-thread buffers the kernels use, carved from Context scratch.
struct RowScratch {
  int16_t* wq = nullptr;  // one decoded weight row: int16 per element
  float* wd = nullptr;    // per 32-block multiplier of the integer dot
  float* wm = nullptr;    // per 32-block multiplier of the activation block sum
  float* wf = nullptr;    // kFloatRowTile rows of f32 (converted/dequantized weights)
};
constexpr int kFloatRowTile = 4;

// y[i*ldy + r] for r in [r0, r1), i in [0, nx): integer path for quantized weights.
void matmul_int_rows(GgmlType type, const uint8_t* w, size_t row_stride, int64_t rows_total,
                     int64_t cols, int64_t r0, int64_t r1, const QuantizedX& x, int64_t nx, float* y, int64_t ldy,
                     const RowScratch& scratch);
// The same for f32/f16/bf16 weights (and, via `dequant`, any type): exact f32 FMA dots.
void matmul_float_rows(GgmlType type, const uint8_t* w, size_t row_stride, int64_t rows_total,
                       int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t nx, float* y, int64_t ldy,
                       const RowScratch& scratch);

// Vector helpers (vec.cpp).
float dot_f32(const float* a, const float* b, int64_t n);
void axpy_f32(float a, const float* x, float* y, int64_t n);  // y += a*x
void scale_f32(float* x, float a, int64_t n);                  // x *= a
float sum_sq_f32(const float* x, int64_t n);
void mul_scale_f32(const float* x, const float* w, float s, float* y, int64_t n);  // y=x*s*w
void silu_mul_f32(float* gate, const float* up, int64_t n);
void gelu_tanh_f32(float* x, int64_t n);
void add_f32(float* y, const float* x, int64_t n);
float max_f32(const float* x, int64_t n);
float exp_sub_sum_f32(float* x, float m, int64_t n);  // x = exp(x - m), returns the sum
double stream_read_f32(const float* x, int64_t n);     // sum of x, for bandwidth probes
size_t fma_loop(int64_t iters, double* sink);          // iters*16 vector FMAs; returns lanes

// Bit-exact IEEE half to float, inlined into the kernels (scalar; branch-free normal path).
inline float half_to_float(uint16_t h) {
  const uint32_t w = uint32_t{h} << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  auto bits = [](uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  };
  auto ubits = [](float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
  };
  const float normalized = bits((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float denormalized = bits((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t r = sign | (two_w < (1u << 27) ? ubits(denormalized) : ubits(normalized));
  return bits(r);
}

}  // namespace reel::ops::detail
