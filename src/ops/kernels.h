// Internal kernel entry points of the ops layer. Each is compiled once per Highway target
// (matmul.cpp, vec.cpp) and picked at run time; ops.cpp and roofline.cpp drive them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "gguf/types.h"

namespace reel::ops::detail {

// Activations quantized for integer dot products: per block of 32 values one f32 scale
// d = max|x|/kQMax, v = round(x/d) as int16 (|x - d v| <= d/2), and s = d * (sum of the 32 v),
// the latter for weight types with an additive min. v is also stored split into two byte
// planes, v = 256*hi + lo (hi = floor(v/256) in [-64, 63] signed, lo in [0, 255] unsigned), for
// the u8 x s8 VNNI kernels: hi meets the weights as unsigned bytes, lo meets them as signed
// bytes (every quant of these types fits one: int8, or 0..63), combined as 256*hi_sum + lo_sum.
//
// kQMax bounds every int32 sum of one 32-element block: sum |w_j| |v_j| <= 32 * Wmax * kQMax
// must stay below 2^31, i.e. kQMax < 2^26 / Wmax, where Wmax is the largest |integer weight|
// a kernel multiplies v by:
//   Q8_0: 128 (int8)                          -> kQMax < 524288
//   Q4_0/Q4_1: 15 (nibble, offset via s)      -> kQMax < 4.4e6
//   Q5_0/Q5_1/Q4_K/Q5_K: 31 (5 bits)          -> kQMax < 2.1e6
//   Q6_K decode (q - 32, scale in f32): 32    -> kQMax < 2.1e6
//   Q6_K prefill (scale folded, |sc(q-32)| <= 128*32 = 4096) -> kQMax < 16384
// The VNNI kernels' int32 lanes sum only 4 products of each plane, far below those. One value
// for all types keeps the quantization independent of the weight type; 16383 is the largest
// the prefill Q6_K bound allows (32*4096*16383 = 2^31 - 131072). Relative to int8
// (d = amax/127) the rounding error is 129x smaller.
constexpr int kQMax = 16383;
struct QuantizedX {
  const int16_t* v = nullptr;   // [rows][cols]
  const int8_t* hi = nullptr;   // [rows][cols]
  const uint8_t* lo = nullptr;  // [rows][cols]
  const float* d = nullptr;     // [rows][cols / 32]
  const float* s = nullptr;     // [rows][cols / 32]
  int64_t cols = 0;
  // Decode only (one row, kquant_int8_gemv below): the same row as int8 per 32 values,
  // q8 = round(x/d8) with d8 = max|x|/127 (|x - d8 q8| <= d8/2), s8 = d8 * (sum of the 32 q8)
  // for the K-quant minimum, g8 = the int16 sum of every 16 q8 for Q6_K's -32. Null elsewhere.
  const int8_t* q8 = nullptr;   // [cols]
  const float* d8 = nullptr;    // [cols / 32]
  const float* s8 = nullptr;    // [cols / 32]
  const int16_t* g8 = nullptr;  // [cols / 16]
  // Decode only, where quantize_row_q8k fills them (x86 AVX2 and up) for the Q4_K kernel: the row
  // as int8 per 256 values, k8 = round(x/kd) with kd = max|x|/127 over the 256 (as the K-quant
  // prefill rounds), each 256's 32-value groups in the order the target's kernel reads the
  // weights' nibbles (AVX3_DL: 0, 2, 1, 3, 4, 6, 5, 7; AVX2: natural), and ks = kd * (sum of each
  // group's k8), groups in natural order.
  const int8_t* k8 = nullptr;  // [cols]
  const float* kd = nullptr;   // [cols / 256]
  const float* ks = nullptr;   // [cols / 32]
};
constexpr int kQBlock = 32;

// aarch64: the two byte planes are laid out for SDOT (signed x signed int8) instead, see
// ArmPlanes in matmul.cpp: v = 256*hi + lo with lo = the low byte as *signed* [-128, 127] and
// hi = (v - lo) / 256 in [-64, 64], and within every 16 values the bytes are transposed as a
// 4x4 matrix (byte 4j+k holds value j+4k), so that SDOT's int32 lane j sums values j, j+4,
// j+8, j+12: the same lane sums as the portable widening kernels, hence the same f32 results.
// The portable kernels read only v, so the layout is free to differ there.
constexpr bool kArmSdotPlanes =
#if defined(__aarch64__)
    true;
#else
    false;
#endif

// The int8 dot-product kernels matmul uses for quantized weights on this machine: on aarch64
// "sdot+i8mm" where the CPU has dotprod and i8mm, "sdot" where it has dotprod only
// (matmul_arm-inl.h), else "portable" (the widening kernels). x86 reports "portable" too (its VNNI
// kernels are chosen by Highway's dispatch).
const char* arm_int8_kernels();
// Tests: false makes aarch64 use the portable kernels even with dotprod (and i8mm), to compare.
void set_arm_int8_kernels_enabled(bool enabled);
bool arm_int8_kernels_enabled();

// Rows [0, n) of x (each `cols` floats, cols % 32 == 0) into v/hi/lo/d/s laid out as QuantizedX.
// hi and lo may be null together (no byte planes), and s may be null (no block sums).
// qmax (<= kQMax): the largest |v|, d = max|x| / qmax per block.
void quantize_rows(const float* x, int64_t n, int64_t cols, int16_t* v, int8_t* hi, uint8_t* lo,
                   float* d, float* s, int qmax = kQMax);

// One row of x (cols % 32 == 0) into QuantizedX's int8 fields q8/d8/s8/g8 (laid out as there).
void quantize_row_int8(const float* x, int64_t cols, int8_t* q8, float* d8, float* s8, int16_t* g8);

// One row of x (cols % 256 == 0) into QuantizedX's k8/kd/ks, where the target's Q4_K GEMV reads
// them (x86 AVX2 and up): returns false (writing nothing) elsewhere.
bool quantize_row_q8k(const float* x, int64_t cols, int8_t* k8, float* kd, float* ks);
// Whether the target the dispatch picks now decodes Q4_K from k8 (activations rounded per 256
// values instead of per 32; tests pick their error bound by it).
bool q8k_gemv();

// Whether a one-row matmul of `type` takes the int8-activation GEMV (Q4_K and Q6_K on x86 AVX2
// and up, matmul_x86-inl.h) on the target the dispatch picks now: the caller then fills
// QuantizedX's int8 fields (and k8/kd/ks where quantize_row_q8k does).
bool kquant_int8_gemv(GgmlType type);
// Tests and benchmarks: false sends Q4_K/Q6_K decode back to the int16 kernels, to compare.
void set_kquant_int8_gemv_enabled(bool enabled);
bool kquant_int8_gemv_enabled();

// Weight types with an integer fast path (matmul.cpp), others use dequantize-then-f32.
bool has_int_path(GgmlType type);
bool has_float_path(GgmlType type);  // F32, F16, BF16

// Per-thread buffers the kernels use, carved from Context scratch.
struct RowScratch {
  int16_t* wq = nullptr;  // one decoded weight row: int16 per element
  float* wd = nullptr;    // per 32-block multiplier of the integer dot
  float* wm = nullptr;    // per 32-block multiplier of the activation block sum
  float* wf = nullptr;    // max(kFloatRowTile rows, 2 * kFloatPanel * kFloatKc) f32
};
constexpr int kFloatRowTile = 4;
// Many activation rows (matmul.cpp, MatmulFloatPanels; float weights, and quantized ones
// decoded to f32): weight rows are taken kFloatTaskRows per task, packed at most kFloatKc
// columns at a time into a feature-major panel of at most kFloatPanel features
// (2 * kFloatPanel * kFloatKc floats of wf).
constexpr int kFloatTaskRows = 64;
constexpr int kFloatPanel = 64;
constexpr int kFloatTileRows = 6;  // activation rows per register tile of the panels (every target)
constexpr int kFloatKc = 1024;
constexpr int64_t kPanelMinRows = 16;  // activation rows from which matmul uses the panels

// Whether matmul (many activation rows) takes `type` through an int8 kernel (activations
// rounded to int8 per 256 values, matmul_x86-inl.h) on the target the dispatch picks now: Q4_K
// and Q6_K on x86 AVX2 and AVX3_DL (AVX-512 VNNI). Other types and targets take the f32 panels.
bool kquant_int8_prefill(GgmlType type);
// Tests and benchmarks: false sends Q4_K and Q6_K back to the f32 panels, to compare.
void set_kquant_int8_prefill_enabled(bool enabled);
bool kquant_int8_prefill_enabled();

// The activations of those int8 kernels, rounded once per matmul call and shared by its tasks:
// per row and super-block of 256 values dx = max|x|/127 and q = round(x/dx) (|x - dx q| <=
// dx/2); per 32 values xbs = dx * (sum of the 32 q), for Q4_K's minimum term; per 16 values
// g16 = the sum of the 16 q, for Q6_K's -32.
struct KQuantInt8X {
  const int8_t* q = nullptr;     // [rows][cols]
  const float* dx = nullptr;     // [rows][cols / 256]
  const float* xbs = nullptr;    // [rows][cols / 32]
  const int16_t* g16 = nullptr;  // [rows][cols / 16]
};
// The widest rows they take: one Q4_K weight row's decoded scales must fit a thread's scratch.
constexpr int64_t kKQuantInt8MaxCols = 65536;
// Only where kquant_int8_prefill(type) holds (elsewhere they do nothing); cols % 256 == 0.
void quantize_rows_kquant_int8(const float* x, int64_t n, int64_t cols, int8_t* q, float* dx,
                               float* xbs, int16_t* g16);
// y[i*ldy + r] for r in [r0, r1), i in [0, nx), Q4_K or Q6_K weights, x from
// quantize_rows_kquant_int8.
void matmul_kquant_int8_rows(GgmlType type, const uint8_t* w, size_t row_stride, int64_t cols,
                             int64_t r0, int64_t r1, const KQuantInt8X& x, int64_t nx, float* y,
                             int64_t ldy, const RowScratch& scratch);

// Whether matmul (many activation rows) takes Q8_0 weights through int16 panels on the target
// the dispatch picks now (AVX3_DL, matmul_x86-inl.h MatmulQ8_0Int16): the activations quantized
// per 32 values exactly as for the few-row and decode kernels (quantize_rows' v and d), so a
// row's integer dot per block is the same whichever kernel the batch size picks, and only the
// order of the f32 sums differs. Elsewhere Q8_0 prefill takes the f32 panels.
bool q8_0_int16_prefill();
// Tests and benchmarks: false sends Q8_0 back to the f32 panels, to compare.
void set_q8_0_int16_prefill_enabled(bool enabled);
bool q8_0_int16_prefill_enabled();
// y[i*ldy + r] for r in [r0, r1), i in [0, nx), Q8_0 weights; xv/xd from quantize_rows (row i
// at xv + i * cols and xd + i * cols / 32). Only where q8_0_int16_prefill() holds.
void matmul_q8_0_int16_rows(const uint8_t* w, size_t row_stride, int64_t cols, int64_t r0,
                            int64_t r1, const int16_t* xv, const float* xd, int64_t nx, float* y,
                            int64_t ldy, const RowScratch& scratch);

// Whether matmul can take F16 weights with many activation rows through int16 panels
// (FloatMatmul::Int16, matmul_x86-inl.h MatmulF16Int16): on AVX3_DL, where vpdpwssd makes 32
// multiply-adds per instruction against the f32 FMA's 16. Each block of 32 weights is rounded to
// int16 per call with its own scale, the activations by quantize_rows (qmax kF16Int16XMax). A
// lane sums one block's 32 products in int32 before the f32 scale: 32 * XMax * WMax < 2^31
// allows 13 bits and a sign each, |x - d v| <= d / 2 = max|x| / 16382 per block on both sides.
// (15-bit weights and activations summed per 8 values halved the error on the 2B-shaped encoder
// but the extra conversions took most of the gain: 2.6 s against 2.1 s and f32's 3.0 s.)
bool f16_int16_prefill();
constexpr int kF16Int16XMax = 8191;  // the activations' largest |v|
constexpr int kF16Int16WMax = 8191;  // the weights'
static_assert(32.0 * kF16Int16XMax * kF16Int16WMax < 2147483648.0,
              "a block's int32 sum must not overflow");
// y[i*ldy + r] for r in [r0, r1), i in [0, nx), F16 weights; xv/xd as matmul_q8_0_int16_rows.
// Only where f16_int16_prefill() holds.
void matmul_f16_int16_rows(const uint8_t* w, size_t row_stride, int64_t cols, int64_t r0,
                           int64_t r1, const int16_t* xv, const float* xd, int64_t nx, float* y,
                           int64_t ldy, const RowScratch& scratch);

// y[i*ldy + r] for r in [r0, r1), i in [0, nx): integer path for quantized weights.
void matmul_int_rows(GgmlType type, const uint8_t* w, size_t row_stride, int64_t rows_total,
                     int64_t cols, int64_t r0, int64_t r1, const QuantizedX& x, int64_t nx, float* y, int64_t ldy,
                     const RowScratch& scratch);
// The same for f32/f16/bf16 weights (and, via `dequant`, any type): exact f32 FMA dots.
void matmul_float_rows(GgmlType type, const uint8_t* w, size_t row_stride, int64_t rows_total,
                       int64_t cols, int64_t r0, int64_t r1, const float* x, int64_t nx, float* y, int64_t ldy,
                       const RowScratch& scratch);
// y[i][f] = sum_k x[i * ldx + k] * b[k * ldb + f] for i < nx, f < nf, k < kc (y[i * ldy + f]
// overwritten): f32 b stored k by f (e.g. keys transposed, or values as they are) is read in
// place as the panels of the kernel above, nothing packed. `pad`: kc * kFloatPanel floats for a
// last partial block of f.
void matmul_f32_kmajor(const float* b, int64_t ldb, int64_t nf, int64_t kc, const float* x,
                       int64_t ldx, int64_t nx, float* y, int64_t ldy, float* pad);

// Vector helpers (vec.cpp).
float dot_f32(const float* a, const float* b, int64_t n);
void axpy_f32(float a, const float* x, float* y, int64_t n);  // y += a*x
void scale_f32(float* x, float a, int64_t n);                  // x *= a
float sum_sq_f32(const float* x, int64_t n);
// One row of layer norm: y = (x - mean) / sqrt(var + eps) * w + b; w and b may be null.
void layer_norm_row_f32(const float* x, const float* w, const float* b, float* y, int64_t n,
                        float eps);
void mul_scale_f32(const float* x, const float* w, float s, float* y, int64_t n);  // y=x*s*w
void silu_mul_f32(float* gate, const float* up, int64_t n);
void gelu_tanh_f32(float* x, int64_t n);
void add_f32(float* y, const float* x, int64_t n);
float max_f32(const float* x, int64_t n);
float exp_sub_sum_f32(float* x, float m, int64_t n);  // x = exp(x - m), returns the sum
double stream_read_f32(const float* x, int64_t n);     // sum of x, for bandwidth probes
size_t fma_loop(int64_t iters, double* sink);          // iters*16 vector FMAs; returns lanes
// The same with one operand in IEEE half (the f16 KV cache), converted exactly in registers:
// on values that are f16-representable they return the bits of dot_f32 / axpy_f32.
float dot_f32_f16(const float* q, const uint16_t* k, int64_t n);
void axpy_f32_f16(float a, const uint16_t* v, float* y, int64_t n);  // y += a*v
// y = x rounded to nearest even half, bit-identical to f32_to_fp16 (gguf/types.h) for every
// input, inf, NaN and subnormals included.
void f32_to_f16_row(const float* x, uint16_t* y, int64_t n);

// Blocked attention (attention.cpp): one tile of n_q consecutive queries times the `group`
// query heads of one KV head, against that KV head's keys and values (key j at j * head_dim,
// f32 or IEEE half). Query i of the tile, head g of the group, is at q + i*q_stride + g*head_dim,
// its output likewise in out. Causal: query i sees keys [0, min(first_end + i, n_kv)); else
// all n_kv. scratch: flash_scratch_floats(n_q * group, head_dim) floats, 64-byte aligned.
constexpr int64_t kFlashKeys = 64;  // keys per tile of the online softmax
struct FlashTile {
  const float* q = nullptr;
  int64_t q_stride = 0;
  const void* k = nullptr;
  const void* v = nullptr;
  bool f16 = false;
  float* out = nullptr;
  int64_t out_stride = 0;
  int64_t n_q = 0, group = 1, head_dim = 0;
  int64_t n_kv = 0, first_end = 0;
  bool causal = true;
  float scale = 1.0f;
  float* scratch = nullptr;
};
void flash_attention_tile(const FlashTile& tile);
size_t flash_scratch_floats(int64_t rows, int64_t head_dim);
// One query row for each of `group` heads (q[h], out[h]) sharing one KV head's keys and values
// [0, end) (rows head_dim apart, f16 or f32): softmax(scale q.k) v into out[h]. False (nothing
// done) where the target has no such kernel (AVX-512 only), or for other head sizes (64, 128)
// or groups above kMaxDecodeGroup: the caller takes its general path.
constexpr int64_t kMaxDecodeGroup = 16;
bool attend_decode_group(const float* const* q, float* const* out, int64_t group, const void* k,
                         const void* v, bool f16, int64_t end, int64_t head_dim, float scale);
// The regions of a tile's scratch (rows padded to the widest target's row chunk).
struct FlashScratch {
  float* qt = nullptr;    // [head_dim][rows] queries times the scale, transposed
  float* ot = nullptr;    // [head_dim][rows] output accumulator, transposed, unnormalised
  float* st = nullptr;    // [kFlashKeys][rows] scores, then probabilities
  float* kbuf = nullptr;  // [kFlashKeys][head_dim] keys widened from f16
  float* vbuf = nullptr;  // [kFlashKeys][head_dim] values widened from f16
  float* m = nullptr;     // [rows] running max
  float* l = nullptr;     // [rows] running sum
  float* alpha = nullptr; // [rows] this step's rescale factor
  int32_t* lim = nullptr; // [rows] keys visible to the row: [0, lim)
};
FlashScratch flash_scratch_layout(float* base, int64_t rows, int64_t head_dim);

// Bit-exact IEEE half to float, inlined into the kernels (scalar; branch-free normal path).
// aarch64 converts in hardware (FCVT, base ARMv8: every aarch64 core): one instruction instead
// of about ten, the same bits for every finite and infinite value (a signalling NaN comes back
// quiet, as from any FPU conversion; no weight scale or cached key is one).
inline float half_to_float(uint16_t h) {
#if defined(__aarch64__)
  __fp16 f;
  std::memcpy(&f, &h, 2);
  return static_cast<float>(f);
#else
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
#endif
}

}  // namespace reel::ops::detail
