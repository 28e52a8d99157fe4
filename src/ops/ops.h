// The ops layer: the numeric building blocks the models are written in. Kernels know nothing
// of Qwen or GGUF files: they see plain float arrays and weight matrices in a ggml storage
// type. SIMD code sits behind these functions (Highway, runtime dispatch) so model code never
// names an instruction set. Nothing here allocates after Context::reserve().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "gguf/types.h"
#include "ops/thread_pool.h"

namespace reel::ops {

// A weight matrix as stored: `rows` output features, each a row of `cols` elements in `type`
// (for block types, cols/block_elems consecutive blocks). Row r starts at data + r*row_stride.
struct Matrix {
  GgmlType type = GgmlType::F32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_stride = 0;
};

// Per-thread-pool working memory (e.g. activations quantized for integer dot products),
// sized once so the token loop never allocates.
class Context {
 public:
  explicit Context(int n_threads);
  ~Context();
  ThreadPool& pool() { return pool_; }
  int n_threads() const { return pool_.size(); }
  // Make room for activations of up to `max_rows` x `max_cols` floats (grows, never shrinks).
  // matmul() throws reel::Error for inputs beyond the reserved size instead of allocating.
  void reserve(int64_t max_rows, int64_t max_cols);
  int64_t max_rows() const { return max_rows_; }
  int64_t max_cols() const { return max_cols_; }
  // The reserved block; grows only inside reserve(), throws reel::Error if `bytes` exceeds it.
  // matmul() uses it too, so its contents do not survive a matmul call.
  void* scratch(size_t bytes);
  // A second, growable block of at least `floats` floats, 64-byte aligned, kept apart from
  // scratch() so it survives the matmul kernels run on it. It may allocate: the non-causal
  // (vision encoder) attention path sizes it by its sequence; the text token loop's blocked
  // attention asks for a size fixed by the tile shape (not the context length), so only its
  // first call can allocate.
  float* workspace(size_t floats);
  // A third growable block, 64-byte aligned, of at least `bytes`: matmul() rounds the
  // activations of a Q4_K/Q6_K prefill to int8 into it once per call (detail::kquant_int8_prefill),
  // for every task to share. Only calls of kPanelMinRows rows and more use it, so the token loop
  // never allocates here; it grows to the largest chunk (at most 1024 rows) seen.
  uint8_t* int8_activations(size_t bytes);

  // Cancellation: a flag that another thread (or a signal handler) sets. The layers above poll
  // it between units of work (a prefill batch, a decoded token, a vision block) and stop.
  void set_cancel_flag(const std::atomic<bool>* flag) { cancel_ = flag; }
  bool cancelled() const { return cancel_ && cancel_->load(std::memory_order_relaxed); }
  // Throws reel::Cancelled when the flag is set.
  void throw_if_cancelled() const;

 private:
  const std::atomic<bool>* cancel_ = nullptr;
  ThreadPool pool_;
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
  int64_t max_rows_ = 0, max_cols_ = 0;
  std::vector<float> workspace_;
  std::vector<uint8_t> int8_activations_;
};

// How matmul may multiply F16 weights with many activation rows (prefill-sized calls):
//   Exact: converted to f32 and multiplied in f32 FMAs, the activations exact (the default).
//   Int16: where the CPU multiplies int16 pairs at twice its f32 FMA rate (x86 AVX-512 VNNI),
//          the weights and the activations each rounded to 14-bit integers per 32 values
//          (within 1/16382 of their block's largest magnitude), exact integer dot products per
//          block, scaled and summed in f32. Elsewhere, and for other weight types and few rows,
//          the same as Exact.
enum class FloatMatmul : uint8_t { Exact, Int16 };

// y[n][w.rows] = x[n][w.cols] * w^T, x and y row-major float32.
void matmul(const Matrix& w, const float* x, int64_t n, float* y, Context& ctx,
            FloatMatmul float_matmul = FloatMatmul::Exact);
// ys[k][n][ws[k].rows] = x * ws[k]^T for up to 8 matrices of the same width (e.g. q/k/v):
// for a few rows the activations are quantized once and all the matrices' rows run in one
// parallel pass, so decode makes one long memory stream instead of several short ones.
void matmul_multi(std::span<const Matrix> ws, const float* x, int64_t n,
                  std::span<float* const> ys, Context& ctx);
// The same through the reference dequantization: slow, for tests.
void matmul_ref(const Matrix& w, const float* x, int64_t n, float* y);

// out[i][:] = dequantized row ids[i] of w.
void get_rows(const Matrix& w, const int32_t* ids, int64_t n, float* out);

// y = x / sqrt(mean(x^2) + eps) * weight, per row of `dim`; weight may be null. y may be x.
void rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t dim, float eps);
// y = (x - mean) / sqrt(var + eps) * weight + bias, per row; weight/bias may be null.
void layer_norm(const float* x, const float* weight, const float* bias, float* y, int64_t n_rows,
                int64_t dim, float eps);

// Rotary embedding on `n_heads` heads of `head_dim` per token, rotating pairs (d, d + head_dim/2)
// ("NeoX" order): x' = x*cos + rotate_half(x)*sin. cos/sin hold head_dim/2 angles per token.
// Token t's heads start at x + t*token_stride.
void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t token_stride,
          const float* cos, const float* sin);

void silu_mul(float* gate, const float* up, int64_t n);      // gate = silu(gate) * up
void gelu_tanh(float* x, int64_t n);                         // tanh approximation
void gelu_erf(float* x, int64_t n);                          // exact
void add(float* y, const float* x, int64_t n);               // y += x
void add_bias(float* y, const float* bias, int64_t n_rows, int64_t dim);
void softmax(float* x, int64_t n);                           // in place, numerically stable

// The same, split across ctx's threads in contiguous chunks (rows for the norms and add_bias,
// tokens for rope), with the same values; calls under 16384 elements run on the calling thread.
void rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t dim, float eps,
              Context& ctx);
void layer_norm(const float* x, const float* weight, const float* bias, float* y, int64_t n_rows,
                int64_t dim, float eps, Context& ctx);
void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t token_stride,
          const float* cos, const float* sin, Context& ctx);
void silu_mul(float* gate, const float* up, int64_t n, Context& ctx);
void gelu_tanh(float* x, int64_t n, Context& ctx);
void gelu_erf(float* x, int64_t n, Context& ctx);
void add(float* y, const float* x, int64_t n, Context& ctx);
void add_bias(float* y, const float* bias, int64_t n_rows, int64_t dim, Context& ctx);

// Scaled dot-product attention with grouped KV heads.
//   q:   [n_q][n_head][head_dim] (token stride q_stride floats)
//   k,v: per KV head h, key j at k + h*kv_head_stride + j*head_dim elements of kv_type
//        (F32 or F16; the same for v)
//   out: [n_q][n_head][head_dim] (token stride out_stride)
// Query i may see keys [seg_begin(i), seg_end(i)): causal => [0, q_pos0 + i + 1);
// non-causal => all n_kv keys. Query head hq uses KV head hq / (n_head / n_kv_head).
struct AttentionShape {
  int64_t n_q = 0, n_kv = 0;        // queries in this call; keys available
  int64_t n_head = 0, n_kv_head = 0, head_dim = 0;
  int64_t q_stride = 0, out_stride = 0, kv_head_stride = 0;
  int64_t q_pos0 = 0;               // absolute position of query 0 (causal)
  bool causal = true;
  float scale = 1.0f;
  GgmlType kv_type = GgmlType::F32;  // F32 or F16 keys and values
};
// The kernel attention() runs. Auto picks by shape: causal calls with a few queries or more
// (prefill) take Tiles, blocked over query and key tiles with an online softmax (the heads of
// a KV group together, keys above the diagonal skipped, memory independent of n_kv); decode
// takes Rows, one query row at a time over the keys; non-causal f32 calls with many queries
// (the vision encoder) take full score rows through the matmul kernel. Rows and Tiles force
// one kernel for any shape (tests and benchmarks compare them).
enum class AttentionKernel : uint8_t { Auto, Rows, Tiles };
void attention(const AttentionShape& s, const float* q, const void* k, const void* v, float* out,
               Context& ctx, AttentionKernel kernel = AttentionKernel::Auto);

// Stores n floats as IEEE half (round to nearest even), e.g. into an f16 KV cache.
void f32_to_f16(const float* x, uint16_t* y, int64_t n);

}  // namespace reel::ops
