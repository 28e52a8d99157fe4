// Drivers of the ops layer: scratch management, work partitioning over the thread pool, and
// the simple ops. SIMD kernels live in matmul.cpp / vec.cpp (per Highway target).
#include "ops/ops.h"

#include <array>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "ops/kernels.h"

namespace reel::ops {
namespace {

constexpr size_t kAlign = 64;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Scratch layout for (rows, cols) activations and n_threads workers: the quantized activations
// first, then one RowScratch per thread.
struct ScratchLayout {
  size_t xv = 0, xh = 0, xl = 0, xd = 0, xs = 0;  // offsets
  size_t x8 = 0, xd8 = 0, xs8 = 0, xg8 = 0;       // one int8 row (decode; kquant_int8_gemv)
  size_t xk8 = 0, xkd = 0, xks = 0;               // the same row per 256 (quantize_row_q8k)
  size_t per_thread = 0, threads = 0, total = 0;
  size_t wq = 0, wd = 0, wm = 0, wf = 0;  // offsets inside one thread's area

  ScratchLayout(int64_t rows, int64_t cols, int n_threads) {
    const size_t r = static_cast<size_t>(rows), c = static_cast<size_t>(cols);
    const size_t nb = (c + detail::kQBlock - 1) / detail::kQBlock;
    // Quantized activations: only calls with fewer than kPanelMinRows rows quantize.
    const size_t rq = std::min<size_t>(r, detail::kPanelMinRows - 1);
    xv = 0;
    xh = align_up(rq * c * sizeof(int16_t));
    xl = xh + align_up(rq * c);
    xd = xl + align_up(rq * c);
    xs = xd + align_up(rq * nb * sizeof(float));
    x8 = xs + align_up(rq * nb * sizeof(float));
    xd8 = x8 + align_up(c);
    xs8 = xd8 + align_up(nb * sizeof(float));
    xg8 = xs8 + align_up(nb * sizeof(float));
    xk8 = xg8 + align_up(2 * nb * sizeof(int16_t));
    xkd = xk8 + align_up(c);
    xks = xkd + align_up((c + 255) / 256 * sizeof(float));  // kd: one scale per super-block
    threads = xks + align_up(nb * sizeof(float));           // ks: one sum per 32 values
    wq = 0;
    wd = align_up(c * sizeof(int16_t));
    wm = wd + align_up(nb * sizeof(float));
    wf = wm + align_up(nb * sizeof(float));
    per_thread = wf + align_up(std::max(detail::kFloatRowTile * c,
                                        size_t{2} * detail::kFloatPanel * detail::kFloatKc) *
                               sizeof(float));
    total = threads + per_thread * static_cast<size_t>(n_threads);
  }
};

// Rows of weights per task: enough work to amortise a task grab, few enough to balance.
constexpr int64_t kRowsPerTask = 16;

// Activation rows processed against one pass over a block of weight rows: the chunk of x
// (int8 or f32) should stay in L2 while the weights stream by.
int64_t x_chunk_rows(int64_t cols, size_t bytes_per_elem) {
  const int64_t budget = 512 * 1024;
  int64_t rows = budget / std::max<int64_t>(1, cols * static_cast<int64_t>(bytes_per_elem));
  rows = std::clamp<int64_t>(rows, 4, 256);
  return rows / 4 * 4;
}

}  // namespace

Context::Context(int n_threads) : pool_(n_threads) {}

Context::~Context() { std::free(scratch_); }

void Context::throw_if_cancelled() const {
  if (cancelled()) throw Cancelled();
}

void Context::reserve(int64_t max_rows, int64_t max_cols) {
  max_rows = std::max(max_rows, max_rows_);
  max_cols = std::max(max_cols, max_cols_);
  const ScratchLayout layout(max_rows, max_cols, n_threads());
  if (layout.total > scratch_bytes_) {
    void* p = std::aligned_alloc(kAlign, align_up(layout.total));
    if (!p) throw Error("out of memory reserving " + std::to_string(layout.total) + " bytes of scratch");
    std::free(scratch_);
    scratch_ = p;
    scratch_bytes_ = layout.total;
  }
  max_rows_ = max_rows;
  max_cols_ = max_cols;
}

void* Context::scratch(size_t bytes) {
  if (bytes > scratch_bytes_) {
    throw Error("ops scratch of " + std::to_string(bytes) + " bytes requested, only " +
                std::to_string(scratch_bytes_) + " reserved (call Context::reserve first)");
  }
  return scratch_;
}

namespace {

// At least n elements of v, kAlign-aligned; grows v, never shrinks it.
template <class T>
T* grow_aligned(std::vector<T>& v, size_t n) {
  constexpr size_t kPad = kAlign / sizeof(T);
  if (v.size() < n + kPad) {
    v.clear();  // no copy of the old contents: callers treat them as garbage
    v.resize(n + kPad);
  }
  const auto addr = reinterpret_cast<uintptr_t>(v.data());
  return v.data() + (align_up(addr) - addr) / sizeof(T);
}

}  // namespace

float* Context::workspace(size_t floats) { return grow_aligned(workspace_, floats); }

uint8_t* Context::int8_activations(size_t bytes) { return grow_aligned(int8_activations_, bytes); }

// ---- matmul ----

namespace {

detail::RowScratch thread_scratch(uint8_t* base, const ScratchLayout& l, int thread) {
  uint8_t* t = base + l.threads + l.per_thread * static_cast<size_t>(thread);
  return {reinterpret_cast<int16_t*>(t + l.wq), reinterpret_cast<float*>(t + l.wd),
          reinterpret_cast<float*>(t + l.wm), reinterpret_cast<float*>(t + l.wf)};
}

}  // namespace

namespace {

// Quantizes n activation rows for the integer kernels into the context's scratch; with
// `int8` (one row only: the int8 GEMV of detail::kquant_int8_gemv) also its int8 fields, once
// per call rather than once per task. `int16`: false only when every matrix of the call takes
// the int8 GEMV (one row), which reads only the int8 fields. `q4k` (with `int8`): a Q4_K matrix
// is among them, so also the row rounded per 256 where the target's Q4_K kernel reads it;
// `per32` (with `int8`): a matrix of another type (Q6_K) takes the int8 GEMV, so the row is also
// rounded per 32. Without it, on targets that round per 256 the per-32 row is skipped.
detail::QuantizedX quantize_activations(const float* x, int64_t n, int64_t cols, uint8_t* base,
                                        const ScratchLayout& layout, ThreadPool& pool, bool int8,
                                        bool int16, bool q4k, bool per32) {
  auto* xv = reinterpret_cast<int16_t*>(base + layout.xv);
  auto* xh = reinterpret_cast<int8_t*>(base + layout.xh);
  auto* xl = reinterpret_cast<uint8_t*>(base + layout.xl);
  auto* xd = reinterpret_cast<float*>(base + layout.xd);
  auto* xs = reinterpret_cast<float*>(base + layout.xs);
  const int64_t nb = cols / detail::kQBlock;
  if (int16) {
    if (n >= 8) {
      pool.run(n, [&](int64_t i, int) {
        detail::quantize_rows(x + i * cols, 1, cols, xv + i * cols, xh + i * cols, xl + i * cols,
                              xd + i * nb, xs + i * nb);
      });
    } else {
      detail::quantize_rows(x, n, cols, xv, xh, xl, xd, xs);
    }
  }
  detail::QuantizedX q{xv, xh, xl, xd, xs, cols};
  if (int8 && n == 1) {
    auto* k8 = reinterpret_cast<int8_t*>(base + layout.xk8);
    auto* kd = reinterpret_cast<float*>(base + layout.xkd);
    auto* ks = reinterpret_cast<float*>(base + layout.xks);
    if (q4k && detail::quantize_row_q8k(x, cols, k8, kd, ks)) {
      q.k8 = k8;
      q.kd = kd;
      q.ks = ks;
    }
    if (per32 || q.k8 == nullptr) {  // Q6_K, or a target whose Q4_K kernel reads the per-32 row
      auto* q8 = reinterpret_cast<int8_t*>(base + layout.x8);
      auto* d8 = reinterpret_cast<float*>(base + layout.xd8);
      auto* s8 = reinterpret_cast<float*>(base + layout.xs8);
      auto* g8 = reinterpret_cast<int16_t*>(base + layout.xg8);
      detail::quantize_row_int8(x, cols, q8, d8, s8, g8);
      q.q8 = q8;
      q.d8 = d8;
      q.s8 = s8;
      q.g8 = g8;
    }
  }
  return q;
}

}  // namespace

void matmul_multi(std::span<const Matrix> ws, const float* x, int64_t n,
                  std::span<float* const> ys, Context& ctx) {
  if (ws.size() != ys.size()) throw Error("matmul_multi: as many outputs as matrices needed");
  if (ws.empty() || n <= 0) return;
  const int64_t cols = ws[0].cols;
  bool fused = n < detail::kPanelMinRows && n <= x_chunk_rows(cols, sizeof(int16_t)) &&
               n <= ctx.max_rows() && cols <= ctx.max_cols() && cols % detail::kQBlock == 0;
  for (const Matrix& w : ws) fused = fused && w.cols == cols && detail::has_int_path(w.type);
  if (!fused || ws.size() == 1) {
    for (size_t k = 0; k < ws.size(); ++k) matmul(ws[k], x, n, ys[k], ctx);
    return;
  }
  const ScratchLayout layout(ctx.max_rows(), ctx.max_cols(), ctx.n_threads());
  auto* base = static_cast<uint8_t*>(ctx.scratch(layout.total));
  bool int8 = false, all_int8 = true, q4k = false, per32 = false;
  for (const Matrix& w : ws) {
    const bool w_int8 = n == 1 && detail::kquant_int8_gemv(w.type);
    int8 = int8 || w_int8;
    all_int8 = all_int8 && w_int8;
    q4k = q4k || (w_int8 && w.type == GgmlType::Q4_K);
    per32 = per32 || (w_int8 && w.type != GgmlType::Q4_K);
  }
  const detail::QuantizedX qx = quantize_activations(x, n, cols, base, layout, ctx.pool(), int8,
                                                     /*int16=*/!all_int8, q4k, per32);
  // One parallel run over the row blocks of every matrix, in order.
  std::array<int64_t, 9> first_block{};
  if (ws.size() > 8) throw Error("matmul_multi: at most 8 matrices");
  for (size_t k = 0; k < ws.size(); ++k)
    first_block[k + 1] = first_block[k] + (ws[k].rows + kRowsPerTask - 1) / kRowsPerTask;
  ctx.pool().run(first_block[ws.size()], [&](int64_t task, int thread) {
    size_t k = 0;
    while (task >= first_block[k + 1]) ++k;
    const Matrix& w = ws[k];
    const int64_t r0 = (task - first_block[k]) * kRowsPerTask;
    const int64_t r1 = std::min(w.rows, r0 + kRowsPerTask);
    detail::matmul_int_rows(w.type, w.data, w.row_stride, w.rows, cols, r0, r1, qx, n, ys[k],
                            w.rows, thread_scratch(base, layout, thread));
  });
}

namespace {

// Activation rows per chunk of the integer prefill paths below: quantized once, then met by
// every weight row.
constexpr int64_t kPrefillChunkRows = 1024;

// The integer prefill paths' shape: the n activation rows in chunks of kPrefillChunkRows, each
// quantized in parallel, 8 rows a task (quantize(x0, i, rows): rows [i, i + rows) of the chunk
// at x0), then every task of kFloatTaskRows weight rows run on the whole chunk
// (multiply(x0, nx, r0, r1, thread)).
template <class Quantize, class Multiply>
void chunked_prefill(int64_t w_rows, int64_t n, ThreadPool& pool, Quantize quantize,
                     Multiply multiply) {
  constexpr int64_t kQuantRows = 8;
  const int64_t n_blocks = (w_rows + detail::kFloatTaskRows - 1) / detail::kFloatTaskRows;
  for (int64_t x0 = 0; x0 < n; x0 += kPrefillChunkRows) {
    const int64_t nx = std::min(kPrefillChunkRows, n - x0);
    pool.run((nx + kQuantRows - 1) / kQuantRows, [&](int64_t task, int) {
      const int64_t i = task * kQuantRows;
      quantize(x0, i, std::min(kQuantRows, nx - i));
    });
    pool.run(n_blocks, [&](int64_t task, int thread) {
      const int64_t r0 = task * detail::kFloatTaskRows;
      multiply(x0, nx, r0, std::min(w_rows, r0 + detail::kFloatTaskRows), thread);
    });
  }
}

// Q4_K or Q6_K weights, many activation rows, on x86 AVX2 and up: the activations are rounded
// to int8 once per chunk of up to 1024 rows (into Context::int8_activations, rows in
// parallel), then every task of 64 weight rows runs the int8 kernel on the whole chunk.
void matmul_kquant_int8(const Matrix& w, const float* x, int64_t n, float* y, Context& ctx,
                        uint8_t* base, const ScratchLayout& layout) {
  const int64_t cols = w.cols, nsb = cols / 256;
  const int64_t xc = std::min(n, kPrefillChunkRows);
  const size_t q_bytes = align_up(static_cast<size_t>(xc * cols));
  const size_t dx_bytes = align_up(static_cast<size_t>(xc * nsb) * sizeof(float));
  const size_t xbs_bytes = align_up(static_cast<size_t>(xc * nsb * 8) * sizeof(float));
  const size_t g16_bytes = static_cast<size_t>(xc * nsb * 16) * sizeof(int16_t);
  uint8_t* buf = ctx.int8_activations(q_bytes + dx_bytes + xbs_bytes + g16_bytes);
  auto* q = reinterpret_cast<int8_t*>(buf);
  auto* dx = reinterpret_cast<float*>(buf + q_bytes);
  auto* xbs = reinterpret_cast<float*>(buf + q_bytes + dx_bytes);
  auto* g16 = reinterpret_cast<int16_t*>(buf + q_bytes + dx_bytes + xbs_bytes);
  const detail::KQuantInt8X qx{q, dx, xbs, g16};
  chunked_prefill(
      w.rows, n, ctx.pool(),
      [&](int64_t x0, int64_t i, int64_t rows) {
        detail::quantize_rows_kquant_int8(x + (x0 + i) * cols, rows, cols, q + i * cols,
                                          dx + i * nsb, xbs + i * nsb * 8, g16 + i * nsb * 16);
      },
      [&](int64_t x0, int64_t nx, int64_t r0, int64_t r1, int thread) {
        detail::matmul_kquant_int8_rows(w.type, w.data, w.row_stride, cols, r0, r1, qx, nx,
                                        y + x0 * w.rows, w.rows,
                                        thread_scratch(base, layout, thread));
      });
}

// Q8_0 weights where detail::q8_0_int16_prefill holds, or F16 weights asked for as
// FloatMatmul::Int16 where detail::f16_int16_prefill holds, many activation rows: the
// activations quantized as for the few-row kernels (int16 per 32 values) once per chunk of up
// to 1024 rows, then every task of 64 weight rows runs the int16 panels on the whole chunk.
void matmul_int16_panels(const Matrix& w, const float* x, int64_t n, float* y, Context& ctx,
                         uint8_t* base, const ScratchLayout& layout) {
  const bool q8 = w.type == GgmlType::Q8_0;
  const auto rows_fn = q8 ? detail::matmul_q8_0_int16_rows : detail::matmul_f16_int16_rows;
  const int x_max = q8 ? detail::kQMax : detail::kF16Int16XMax;
  const int64_t cols = w.cols, nb = cols / detail::kQBlock;
  const int64_t xc = std::min(n, kPrefillChunkRows);
  const size_t v_bytes = align_up(static_cast<size_t>(xc * cols) * sizeof(int16_t));
  const size_t d_bytes = align_up(static_cast<size_t>(xc * nb) * sizeof(float));
  uint8_t* buf = ctx.int8_activations(v_bytes + d_bytes);
  auto* xv = reinterpret_cast<int16_t*>(buf);
  auto* xd = reinterpret_cast<float*>(buf + v_bytes);
  chunked_prefill(
      w.rows, n, ctx.pool(),
      [&](int64_t x0, int64_t i, int64_t rows) {
        detail::quantize_rows(x + (x0 + i) * cols, rows, cols, xv + i * cols, nullptr, nullptr,
                              xd + i * nb, nullptr, x_max);
      },
      [&](int64_t x0, int64_t nx, int64_t r0, int64_t r1, int thread) {
        rows_fn(w.data, w.row_stride, cols, r0, r1, xv, xd, nx, y + x0 * w.rows, w.rows,
                thread_scratch(base, layout, thread));
      });
}

}  // namespace

void matmul(const Matrix& w, const float* x, int64_t n, float* y, Context& ctx,
            FloatMatmul float_matmul) {
  if (n <= 0 || w.rows <= 0) return;
  const TypeInfo info = type_info(w.type);
  if (w.cols % info.block_elems != 0) throw Error("matmul: cols not a multiple of the block size");
  if (n > ctx.max_rows() || w.cols > ctx.max_cols()) {
    throw Error("matmul: " + std::to_string(n) + "x" + std::to_string(w.cols) +
                " activations exceed Context::reserve(" + std::to_string(ctx.max_rows()) + ", " +
                std::to_string(ctx.max_cols()) + ")");
  }
  const ScratchLayout layout(ctx.max_rows(), ctx.max_cols(), ctx.n_threads());
  auto* base = static_cast<uint8_t*>(ctx.scratch(layout.total));
  ThreadPool& pool = ctx.pool();
  const int64_t cols = w.cols;
  const int64_t n_row_blocks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
  // Many activation rows: quantized weights too take the f32 panel kernel (decoded once per
  // panel, reused by every row), which beat the integer tiles there; no activation rounding,
  // except Q4_K and Q6_K on x86 AVX2 and up: their int8 kernels round activations per 256
  // values (detail::kquant_int8_prefill); and Q8_0 on AVX3_DL, whose int16 panels round them
  // as the few-row kernels do (detail::q8_0_int16_prefill).
  const bool panels = n >= detail::kPanelMinRows;
  if (panels && cols <= detail::kKQuantInt8MaxCols && detail::kquant_int8_prefill(w.type)) {
    return matmul_kquant_int8(w, x, n, y, ctx, base, layout);
  }
  if (panels && w.type == GgmlType::Q8_0 && detail::q8_0_int16_prefill()) {
    return matmul_int16_panels(w, x, n, y, ctx, base, layout);
  }
  if (panels && float_matmul == FloatMatmul::Int16 && w.type == GgmlType::F16 &&
      cols % detail::kQBlock == 0 && detail::f16_int16_prefill()) {
    return matmul_int16_panels(w, x, n, y, ctx, base, layout);
  }
  const bool int_path = detail::has_int_path(w.type) && cols % detail::kQBlock == 0 && !panels;

  if (int_path) {
    const bool int8 = n == 1 && detail::kquant_int8_gemv(w.type);
    const bool q4k = w.type == GgmlType::Q4_K;
    const detail::QuantizedX q = quantize_activations(x, n, cols, base, layout, pool, int8,
                                                      /*int16=*/!int8, q4k, /*per32=*/!q4k);
    const int64_t nb = cols / detail::kQBlock;
    const int64_t xc = x_chunk_rows(cols, sizeof(int16_t));
    const int64_t n_x_chunks = (n + xc - 1) / xc;
    pool.run(n_row_blocks * n_x_chunks, [&](int64_t task, int thread) {
      const int64_t c = task / n_row_blocks, rb = task % n_row_blocks;
      const int64_t x0 = c * xc, nx = std::min(xc, n - x0);
      const int64_t r0 = rb * kRowsPerTask, r1 = std::min(w.rows, r0 + kRowsPerTask);
      detail::QuantizedX qx = q;  // its int8 row exists for n == 1 only, i.e. x0 == 0
      qx.v += x0 * cols;
      qx.hi += x0 * cols;
      qx.lo += x0 * cols;
      qx.d += x0 * nb;
      qx.s += x0 * nb;
      detail::matmul_int_rows(w.type, w.data, w.row_stride, w.rows, cols, r0, r1, qx, nx, y + x0 * w.rows,
                              w.rows, thread_scratch(base, layout, thread));
    });
    return;
  }
  if (!detail::has_float_path(w.type) && !info.supported) {
    throw Error("matmul: unsupported weight type " + std::string(info.name));
  }
  // F32/F16/BF16, the dequantize-a-row fallback for the remaining block types, and every type
  // with many rows. The many-row kernel packs a 64-row weight panel per task and reuses it for
  // every x row of the task, so it takes wide tasks and x in large chunks (its x reads are a
  // few KB per k-block of a tile, cheap even from L3).
  const int64_t xc = panels ? std::min<int64_t>(n, 1024) : x_chunk_rows(cols, sizeof(float));
  const int64_t n_x_chunks = (n + xc - 1) / xc;
  const int64_t float_rows = panels ? detail::kFloatTaskRows : kRowsPerTask;
  const int64_t n_float_blocks = (w.rows + float_rows - 1) / float_rows;
  pool.run(n_float_blocks * n_x_chunks, [&](int64_t task, int thread) {
    const int64_t c = task / n_float_blocks, rb = task % n_float_blocks;
    const int64_t x0 = c * xc, nx = std::min(xc, n - x0);
    const int64_t r0 = rb * float_rows, r1 = std::min(w.rows, r0 + float_rows);
    detail::matmul_float_rows(w.type, w.data, w.row_stride, w.rows, cols, r0, r1, x + x0 * cols, nx,
                              y + x0 * w.rows, w.rows, thread_scratch(base, layout, thread));
  });
}

void matmul_ref(const Matrix& w, const float* x, int64_t n, float* y) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize_row_ref(w.type, w.data + r * w.row_stride, row.data(), w.cols);
    for (int64_t i = 0; i < n; ++i) {
      double s = 0.0;
      for (int64_t k = 0; k < w.cols; ++k) s += double{row[k]} * double{x[i * w.cols + k]};
      y[i * w.rows + r] = static_cast<float>(s);
    }
  }
}

void get_rows(const Matrix& w, const int32_t* ids, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= w.rows) {
      throw Error("get_rows: id " + std::to_string(ids[i]) + " out of range");
    }
    const uint8_t* src = w.data + static_cast<int64_t>(ids[i]) * w.row_stride;
    if (w.type == GgmlType::F32) {
      std::memcpy(out + i * w.cols, src, static_cast<size_t>(w.cols) * sizeof(float));
    } else {
      dequantize_row_ref(w.type, src, out + i * w.cols, w.cols);
    }
  }
}

// ---- normalisation and element-wise ops ----

void rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t dim,
              float eps) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* xr = x + r * dim;
    const float ms = detail::sum_sq_f32(xr, dim) / static_cast<float>(dim);
    detail::mul_scale_f32(xr, weight, 1.0f / std::sqrt(ms + eps), y + r * dim, dim);
  }
}

void layer_norm(const float* x, const float* weight, const float* bias, float* y, int64_t n_rows,
                int64_t dim, float eps) {
  for (int64_t r = 0; r < n_rows; ++r)
    detail::layer_norm_row_f32(x + r * dim, weight, bias, y + r * dim, dim, eps);
}

void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t token_stride,
          const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* c = cos + t * half;
    const float* s = sin + t * half;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + t * token_stride + h * head_dim;
      for (int64_t d = 0; d < half; ++d) {
        const float a = v[d], b = v[d + half];
        v[d] = a * c[d] - b * s[d];
        v[d + half] = b * c[d] + a * s[d];
      }
    }
  }
}

void silu_mul(float* gate, const float* up, int64_t n) { detail::silu_mul_f32(gate, up, n); }
void gelu_tanh(float* x, int64_t n) { detail::gelu_tanh_f32(x, n); }

void gelu_erf(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}

void add(float* y, const float* x, int64_t n) { detail::add_f32(y, x, n); }

void add_bias(float* y, const float* bias, int64_t n_rows, int64_t dim) {
  for (int64_t r = 0; r < n_rows; ++r) detail::add_f32(y + r * dim, bias, dim);
}

// ---- the same, split across a context's threads ----
//
// Element-wise work and per-row norms are a few percent of a one-thread vision encode but run
// on one thread while the matmuls use all: at 2 threads twice that share, at 8 (RK3588) most of
// what the matmuls saved. Each call splits its range into contiguous chunks; the values are
// those of the one-thread functions above (the same per-element or per-row arithmetic).

namespace {

// Elements (or rows x dim) per chunk from which a call is split: below, one chunk runs inline
// (a decode step's rows never wake the pool).
constexpr int64_t kMinChunkElems = 16384;

// fn(begin, end) over [0, n) in chunks of at least min_chunk (rounded to 64 elements, whole
// cache lines of floats), at most 4 per thread.
template <class Fn>
void for_chunks(Context& ctx, int64_t n, int64_t min_chunk, Fn&& fn) {
  const int64_t chunks = std::clamp<int64_t>(n / std::max<int64_t>(1, min_chunk), 1,
                                             4 * int64_t{ctx.n_threads()});
  if (chunks <= 1 || ctx.n_threads() == 1) return fn(int64_t{0}, n);
  const int64_t per = (n + chunks - 1) / chunks;
  const int64_t step = min_chunk >= 64 ? (per + 63) / 64 * 64 : per;
  ctx.pool().run((n + step - 1) / step, [&](int64_t c, int) {
    fn(c * step, std::min(n, (c + 1) * step));
  });
}

int64_t min_rows(int64_t dim) { return std::max<int64_t>(1, kMinChunkElems / std::max<int64_t>(1, dim)); }

}  // namespace

void rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t dim, float eps,
              Context& ctx) {
  for_chunks(ctx, n_rows, min_rows(dim), [&](int64_t r0, int64_t r1) {
    rms_norm(x + r0 * dim, weight, y + r0 * dim, r1 - r0, dim, eps);
  });
}

void layer_norm(const float* x, const float* weight, const float* bias, float* y, int64_t n_rows,
                int64_t dim, float eps, Context& ctx) {
  for_chunks(ctx, n_rows, min_rows(dim), [&](int64_t r0, int64_t r1) {
    layer_norm(x + r0 * dim, weight, bias, y + r0 * dim, r1 - r0, dim, eps);
  });
}

void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t token_stride,
          const float* cos, const float* sin, Context& ctx) {
  const int64_t half = head_dim / 2;
  for_chunks(ctx, n_tokens, min_rows(n_heads * head_dim), [&](int64_t t0, int64_t t1) {
    rope(x + t0 * token_stride, t1 - t0, n_heads, head_dim, token_stride, cos + t0 * half,
         sin + t0 * half);
  });
}

void silu_mul(float* gate, const float* up, int64_t n, Context& ctx) {
  for_chunks(ctx, n, kMinChunkElems, [&](int64_t b, int64_t e) { silu_mul(gate + b, up + b, e - b); });
}

void gelu_tanh(float* x, int64_t n, Context& ctx) {
  for_chunks(ctx, n, kMinChunkElems, [&](int64_t b, int64_t e) { gelu_tanh(x + b, e - b); });
}

void gelu_erf(float* x, int64_t n, Context& ctx) {
  for_chunks(ctx, n, kMinChunkElems, [&](int64_t b, int64_t e) { gelu_erf(x + b, e - b); });
}

void add(float* y, const float* x, int64_t n, Context& ctx) {
  for_chunks(ctx, n, kMinChunkElems, [&](int64_t b, int64_t e) { add(y + b, x + b, e - b); });
}

void add_bias(float* y, const float* bias, int64_t n_rows, int64_t dim, Context& ctx) {
  for_chunks(ctx, n_rows, min_rows(dim), [&](int64_t r0, int64_t r1) {
    add_bias(y + r0 * dim, bias, r1 - r0, dim);
  });
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  const float m = detail::max_f32(x, n);
  const float sum = detail::exp_sub_sum_f32(x, m, n);
  detail::scale_f32(x, 1.0f / sum, n);
}

// ---- attention ----

namespace {

constexpr int64_t kKeyBlock = 128;   // scores kept on the stack per step of the online softmax
constexpr int64_t kQueryBlock = 16;  // queries per task in prefill

// Keys and values are f32 or f16 rows, read in place: the f16 kernels convert in registers.
float dot_row(const float* q, const float* k, int64_t n) { return detail::dot_f32(q, k, n); }
float dot_row(const float* q, const uint16_t* k, int64_t n) { return detail::dot_f32_f16(q, k, n); }
void axpy_row(float a, const float* v, float* y, int64_t n) { detail::axpy_f32(a, v, y, n); }
void axpy_row(float a, const uint16_t* v, float* y, int64_t n) { detail::axpy_f32_f16(a, v, y, n); }

// A sanity bound on shapes (Qwen3-VL heads have 64 or 128 dimensions).
constexpr int64_t kMaxHeadDim = 1024;

// The query heads of one KV group (one query row each) against keys [0, end): online softmax
// over blocks of keys, so memory is O(1) in n_kv. Each key and value row is used by every head of
// the group while it is in L1: at decode the KV cache is the largest read after the weights
// (112 KiB per token of context for Qwen3-VL 2B), and a pass per head read it once per head.
// Each head's arithmetic is the same, in the same order, as alone. The running outputs are kept
// unnormalised in `out` and rescaled when a head's max grows.
constexpr int64_t kMaxGroup = 16;

template <class T>
void attend_group(const float* const* q, float* const* out, int64_t group, const T* k, const T* v,
                  int64_t end, int64_t head_dim, float scale) {
  float m[kMaxGroup], l[kMaxGroup];
  float s[kMaxGroup][kKeyBlock];
  for (int64_t h = 0; h < group; ++h) {
    std::fill(out[h], out[h] + head_dim, 0.0f);
    m[h] = -INFINITY;
    l[h] = 0.0f;
  }
  for (int64_t j0 = 0; j0 < end; j0 += kKeyBlock) {
    const int64_t nj = std::min(kKeyBlock, end - j0);
    for (int64_t j = 0; j < nj; ++j) {
      const T* kj = k + (j0 + j) * head_dim;
      for (int64_t h = 0; h < group; ++h) s[h][j] = dot_row(q[h], kj, head_dim) * scale;
    }
    for (int64_t h = 0; h < group; ++h) {
      const float bm = detail::max_f32(s[h], nj);
      if (bm > m[h]) {
        const float r = std::exp(m[h] - bm);  // 0 on the first block (m = -inf)
        if (l[h] > 0.0f) detail::scale_f32(out[h], r, head_dim);
        l[h] *= r;
        m[h] = bm;
      }
      l[h] += detail::exp_sub_sum_f32(s[h], m[h], nj);
    }
    for (int64_t j = 0; j < nj; ++j) {
      const T* vj = v + (j0 + j) * head_dim;
      for (int64_t h = 0; h < group; ++h) axpy_row(s[h][j], vj, out[h], head_dim);
    }
  }
  for (int64_t h = 0; h < group; ++h)
    if (l[h] > 0.0f) detail::scale_f32(out[h], 1.0f / l[h], head_dim);
}

// Non-causal attention with many queries and keys (the vision encoder: thousands of patches
// per sequence) as two matmuls per (head, query block) on the f32 panel tiles, which run near
// FMA peak where attend_group's dot/axpy loops are bound by loads:
//   S = (scale * Q_blk) K^T   [nq][n_kv],  P = softmax rows of S (unnormalised),
//   O = P V                   written straight into `out`, then scaled by 1 / row sum.
// Both right-hand sides are read in place as panels (detail::matmul_f32_kmajor): K^T, made
// once per KV head, and V as it is. Packing them per (head, block) task instead, as the weight
// panels are, cost about as much as the products (perf, 2B-shaped vision encoder: the packing
// was 1.15% of all samples against 2% for the attention's tiles). One pool run covers every
// (head, block) pair. Scores stay bounded at kAttnBlock x n_kv floats per thread.
constexpr int64_t kAttnMinQ = 64, kAttnMinKv = 64;
constexpr int64_t kAttnBlock = 64;       // about this many query rows per task
// Query blocks are whole register tiles of the panels: no 1-row tail per task.
constexpr int64_t kAttnRowMultiple = detail::kFloatTileRows;

void attention_blocked(const AttentionShape& s, const float* q, const float* k, const float* v,
                       float* out, Context& ctx) {
  const int64_t hd = s.head_dim, n_kv = s.n_kv, group = s.n_head / s.n_kv_head;
  const int64_t n_blocks0 = (s.n_q + kAttnBlock - 1) / kAttnBlock;
  const int64_t blk0 = (s.n_q + n_blocks0 - 1) / n_blocks0;
  const int64_t blk = (blk0 + kAttnRowMultiple - 1) / kAttnRowMultiple * kAttnRowMultiple;
  const int64_t n_blocks = (s.n_q + blk - 1) / blk;
  const int n_threads = ctx.n_threads();
  const auto pad = [](size_t n) { return (n + 15) / 16 * 16; };  // keeps regions 64-byte aligned
  const size_t kt_floats = pad(static_cast<size_t>(hd * n_kv));
  const size_t pad_floats = pad(static_cast<size_t>(detail::kFloatPanel * std::max(hd, n_kv)));
  const size_t qb_floats = pad(static_cast<size_t>(blk * hd));
  const size_t sb_floats = pad(static_cast<size_t>(blk * n_kv));
  const size_t inv_floats = pad(static_cast<size_t>(blk));
  const size_t per_thread = pad_floats + qb_floats + sb_floats + inv_floats;
  float* ws = ctx.workspace(kt_floats * s.n_kv_head + per_thread * n_threads);
  float* kt_all = ws;
  float* thread_base = ws + kt_floats * s.n_kv_head;

  // K^T per KV head ([hd][n_kv]), shared by its query heads.
  const int64_t n_kv_tiles = (n_kv + 63) / 64;
  ctx.pool().run(s.n_kv_head * n_kv_tiles, [&](int64_t task, int) {
    const int64_t kvh = task / n_kv_tiles, j0 = task % n_kv_tiles * 64;
    const int64_t j1 = std::min(n_kv, j0 + 64);
    const float* kh = k + kvh * s.kv_head_stride;
    float* kt = kt_all + kvh * kt_floats;
    for (int64_t d = 0; d < hd; ++d)
      for (int64_t j = j0; j < j1; ++j) kt[d * n_kv + j] = kh[j * hd + d];
  });

  ctx.pool().run(n_blocks * s.n_head, [&](int64_t task, int thread) {
    const int64_t h = task % s.n_head, b = task / s.n_head;
    const int64_t kvh = h / group;
    const int64_t i0 = b * blk, nq = std::min(blk, s.n_q - i0);
    float* t = thread_base + per_thread * static_cast<size_t>(thread);
    float* qb = t + pad_floats;
    float* sb = qb + qb_floats;
    float* inv = sb + sb_floats;
    // Gather the block's queries contiguously, with the softmax scale folded in so the scores
    // come out scaled.
    for (int64_t i = 0; i < nq; ++i) {
      const float* src = q + (i0 + i) * s.q_stride + h * hd;
      for (int64_t d = 0; d < hd; ++d) qb[i * hd + d] = src[d] * s.scale;
    }
    detail::matmul_f32_kmajor(kt_all + kvh * kt_floats, n_kv, n_kv, hd, qb, hd, nq, sb, n_kv, t);
    for (int64_t i = 0; i < nq; ++i) {
      float* row = sb + i * n_kv;
      const float m = detail::max_f32(row, n_kv);
      inv[i] = 1.0f / detail::exp_sub_sum_f32(row, m, n_kv);  // the max term is 1: sum >= 1
    }
    float* o = out + i0 * s.out_stride + h * hd;
    detail::matmul_f32_kmajor(v + kvh * s.kv_head_stride, hd, hd, n_kv, sb, n_kv, nq, o,
                              s.out_stride, t);
    for (int64_t i = 0; i < nq; ++i) detail::scale_f32(o + i * s.out_stride, inv[i], hd);
  });
}

// Causal attention with many queries (prefill): the blocked kernel of attention.cpp. Task =
// (query tile, KV head): a tile is kFlashRows to kFlashMaxRows rows of (query, query head of
// the KV head's group), so the group's heads share every key/value tile. Keys past the tile's
// last query are never visited, and only the tile that crosses the diagonal is masked.
//
// From 4 causal queries on the tiles beat the row kernel (bench_ops AttentionFewQueries/F16 vs
// .../rows at depth 4096, 1 thread, CPU time: 4.8 vs 7.8 ms at 4 queries, about even at 2-3,
// 1.4x slower at 1, where a tile's rows are mostly padding).
constexpr int64_t kFlashMinQ = 4;
//
// A tile's rows are taken 64 at a time against each key tile (one register tile's width), so
// more rows per tile only widen each key/value tile from f16 for more of them: up to
// kFlashMaxRows while there are at least kFlashTasksPerThread tasks a thread. (bench_ops
// AttentionPrefill/F16/256/4096, 2 threads, Zen 4: 64 rows a tile spent 13% of the attention's
// time widening keys and values; with up to 256, 2B-shaped Q8_0 prefill of a 4096-token prompt
// ran 87.2-88.2 against 83.3-86.1 tokens/s, alternated runs, `reel bench -p 512,4096`.)
constexpr int64_t kFlashRows = 64;  // rows of a tile at least: 32 queries x 2 heads for Qwen3-VL 2B
constexpr int64_t kFlashMaxRows = 256;
constexpr int64_t kFlashTasksPerThread = 4;

int64_t flash_tile_queries(const AttentionShape& s, int64_t group, int n_threads) {
  int64_t rows = kFlashMaxRows;
  auto tasks = [&](int64_t r) {
    const int64_t tile_q = std::max<int64_t>(1, r / group);
    return (s.n_q + tile_q - 1) / tile_q * s.n_kv_head;
  };
  while (rows > kFlashRows && tasks(rows) < kFlashTasksPerThread * n_threads) rows /= 2;
  return std::max<int64_t>(1, rows / group);
}

void attention_flash(const AttentionShape& s, const float* q, const void* k, const void* v,
                     float* out, Context& ctx) {
  if (s.n_kv > INT32_MAX) throw InternalError("attention: more than 2^31 keys");
  const int64_t group = s.n_head / s.n_kv_head;
  const int64_t tile_q = flash_tile_queries(s, group, ctx.n_threads());
  const int64_t n_tiles = (s.n_q + tile_q - 1) / tile_q;
  const size_t per_thread = detail::flash_scratch_floats(tile_q * group, s.head_dim);
  // Sized by the tile shape only (not by n_kv, at most kFlashMaxRows rows): grows at most a
  // few times, to the largest tile, and is reused after; decode takes the row kernel.
  float* ws = ctx.workspace(per_thread * static_cast<size_t>(ctx.n_threads()));
  const bool f16 = s.kv_type == GgmlType::F16;
  const int64_t elem = f16 ? 2 : 4;
  ctx.pool().run(n_tiles * s.n_kv_head, [&](int64_t task, int thread) {
    // Later tiles see more keys: hand them out first, so short tasks fill in at the end.
    const int64_t tile = n_tiles - 1 - task / s.n_kv_head, kvh = task % s.n_kv_head;
    const int64_t i0 = tile * tile_q;
    detail::FlashTile t;
    t.q = q + i0 * s.q_stride + kvh * group * s.head_dim;
    t.q_stride = s.q_stride;
    t.k = static_cast<const uint8_t*>(k) + kvh * s.kv_head_stride * elem;
    t.v = static_cast<const uint8_t*>(v) + kvh * s.kv_head_stride * elem;
    t.f16 = f16;
    t.out = out + i0 * s.out_stride + kvh * group * s.head_dim;
    t.out_stride = s.out_stride;
    t.n_q = std::min(tile_q, s.n_q - i0);
    t.group = group;
    t.head_dim = s.head_dim;
    t.n_kv = s.n_kv;
    t.first_end = s.q_pos0 + i0 + 1;
    t.causal = s.causal;
    t.scale = s.scale;
    t.scratch = ws + per_thread * static_cast<size_t>(thread);
    detail::flash_attention_tile(t);
  });
}

// One query row at a time, the heads of a KV group together (attend_group). Task = (query
// block, KV head, part of the group): decode (n_q = 1) parallelises over KV heads, prefill over
// both. Groups wider than kMaxGroup are split into parts.
void attention_rows(const AttentionShape& s, const float* q, const void* k, const void* v,
                    float* out, Context& ctx) {
  const int64_t group = s.n_head / s.n_kv_head;
  const int64_t parts = (group + kMaxGroup - 1) / kMaxGroup;
  const int64_t part = (group + parts - 1) / parts;
  const int64_t n_qb = (s.n_q + kQueryBlock - 1) / kQueryBlock;
  const int64_t units = s.n_kv_head * parts;
  ctx.pool().run(n_qb * units, [&](int64_t task, int) {
    const int64_t unit = task % units, qb = task / units;
    const int64_t kvh = unit / parts;
    const int64_t h0 = kvh * group + (unit % parts) * part;
    const int64_t n_h = std::min(part, (kvh + 1) * group - h0);
    const int64_t off = kvh * s.kv_head_stride;
    const int64_t i1 = std::min(s.n_q, (qb + 1) * kQueryBlock);
    const float* qh[kMaxGroup];
    float* oh[kMaxGroup];
    // This KV head's keys and values, in the cache's element type.
    const bool f16 = s.kv_type == GgmlType::F16;
    const void* kh = static_cast<const uint8_t*>(k) + off * (f16 ? 2 : 4);
    const void* vh = static_cast<const uint8_t*>(v) + off * (f16 ? 2 : 4);
    for (int64_t i = qb * kQueryBlock; i < i1; ++i) {
      const int64_t end = s.causal ? std::clamp<int64_t>(s.q_pos0 + i + 1, 0, s.n_kv) : s.n_kv;
      for (int64_t h = 0; h < n_h; ++h) {
        qh[h] = q + i * s.q_stride + (h0 + h) * s.head_dim;
        oh[h] = out + i * s.out_stride + (h0 + h) * s.head_dim;
      }
      if (detail::attend_decode_group(qh, oh, n_h, kh, vh, f16, end, s.head_dim, s.scale)) continue;
      if (f16) {
        attend_group(qh, oh, n_h, static_cast<const uint16_t*>(kh),
                     static_cast<const uint16_t*>(vh), end, s.head_dim, s.scale);
      } else {
        attend_group(qh, oh, n_h, static_cast<const float*>(kh), static_cast<const float*>(vh), end,
                     s.head_dim, s.scale);
      }
    }
  });
}

}  // namespace

void attention(const AttentionShape& s, const float* q, const void* k, const void* v, float* out,
               Context& ctx, AttentionKernel kernel) {
  if (s.n_q <= 0 || s.n_head <= 0) return;
  if (s.n_kv_head <= 0 || s.n_head % s.n_kv_head != 0) {
    throw InternalError("attention: n_head must be a multiple of n_kv_head");
  }
  if (s.kv_type != GgmlType::F32 && s.kv_type != GgmlType::F16)
    throw InternalError("attention: keys and values must be F32 or F16");
  if (s.head_dim > kMaxHeadDim) throw InternalError("attention: head_dim above 1024");
  if (kernel == AttentionKernel::Auto) {
    if (!s.causal && s.n_q >= kAttnMinQ && s.n_kv >= kAttnMinKv && s.kv_type == GgmlType::F32) {
      attention_blocked(s, q, static_cast<const float*>(k), static_cast<const float*>(v), out, ctx);
      return;
    }
    kernel = s.causal && s.n_q >= kFlashMinQ ? AttentionKernel::Tiles : AttentionKernel::Rows;
  }
  if (kernel == AttentionKernel::Tiles) {
    attention_flash(s, q, k, v, out, ctx);
    return;
  }
  attention_rows(s, q, k, v, out, ctx);
}

void f32_to_f16(const float* x, uint16_t* y, int64_t n) { detail::f32_to_f16_row(x, y, n); }

}  // namespace reel::ops
