#include "ops/delta_net.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.h"
#include "ops/kernels.h"

namespace reel::ops {

void causal_conv1d_silu(const float* x, int64_t n, int64_t channels, int64_t x_stride,
                        const float* w, int kernel, const float* state_in, float* state_out,
                        float* y) {
  const int64_t hist = kernel - 1;
  // Input row r of the extended sequence [state; x]: r < hist reads the state.
  auto in_row = [&](int64_t r) {
    return r < hist ? state_in + r * channels : x + (r - hist) * x_stride;
  };
  for (int64_t t = 0; t < n; ++t) {
    float* yt = y + t * channels;
    for (int64_t c = 0; c < channels; ++c) {
      const float* wc = w + c * kernel;
      float acc = 0.0f;
      for (int i = 0; i < kernel; ++i) acc += wc[i] * in_row(t + i)[c];
      yt[c] = acc / (1.0f + std::exp(-acc));
    }
  }
  if (hist == 0) return;
  // The new state: the last hist rows of [state; x], copied oldest first. Rows that come from
  // the old state move towards the front, so a shared buffer is safe in this order.
  for (int64_t r = 0; r < hist; ++r) {
    const int64_t src = n + r;  // row index in the extended sequence
    const float* from = in_row(src);
    if (from != state_out + r * channels)
      std::memmove(state_out + r * channels, from, channels * sizeof(float));
  }
}

void l2_norm(float* x, int64_t n_rows, int64_t dim, float eps, float scale) {
  for (int64_t r = 0; r < n_rows; ++r) {
    float* xr = x + r * dim;
    const float inv = 1.0f / std::sqrt(detail::sum_sq_f32(xr, dim) + eps);
    detail::scale_f32(xr, inv, dim);
    if (scale != 1.0f) detail::scale_f32(xr, scale, dim);
  }
}

void sigmoid_mul(float* x, const float* gate, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= 1.0f / (1.0f + std::exp(-gate[i]));
}

namespace {

// One value head, token by token (the decode path). The first decay reads S_in and writes S
// (no separate copy: decode streams the state once), later steps update S in place.
void delta_rule_recurrent(const DeltaRuleShape& s, int64_t vh, const float* q, const float* k,
                          const float* v, const float* g, const float* beta, const float* S_in,
                          float* S, float* out) {
  const int64_t kh = vh % s.n_k_heads, dk = s.k_dim, dv = s.v_dim;
  for (int64_t t = 0; t < s.n_tokens; ++t) {
    const float* qt = q + t * s.q_stride + kh * dk;
    const float* kt = k + t * s.k_stride + kh * dk;
    const float* vt = v + t * s.v_stride + vh * dv;
    float* ot = out + t * s.out_stride + vh * dv;
    const float decay = std::exp(g[t * s.gb_stride + vh]);
    if (t == 0 && S_in != S) {
      for (int64_t i = 0; i < dk * dv; ++i) S[i] = S_in[i] * decay;
    } else {
      detail::scale_f32(S, decay, dk * dv);
    }
    // ot holds S^T k first (what the state predicts for v), then the delta, then the output.
    std::fill(ot, ot + dv, 0.0f);
    for (int64_t r = 0; r < dk; ++r) detail::axpy_f32(kt[r], S + r * dv, ot, dv);
    const float b = beta[t * s.gb_stride + vh];
    for (int64_t d = 0; d < dv; ++d) ot[d] = (vt[d] - ot[d]) * b;
    for (int64_t r = 0; r < dk; ++r) detail::axpy_f32(kt[r], ot, S + r * dv, dv);
    std::fill(ot, ot + dv, 0.0f);
    for (int64_t r = 0; r < dk; ++r) detail::axpy_f32(qt[r], S + r * dv, ot, dv);
  }
}

size_t chunk_scratch_floats(const DeltaRuleShape& s) {
  const size_t L = kDeltaRuleChunk;
  return 2 * L * L + L * (s.k_dim + s.v_dim) + L;
}

// One value head in chunks of kDeltaRuleChunk tokens. Within a chunk of L tokens with
// cumulative log decays c_i (c_i = g_0 + ... + g_i):
//   M[i][j] = beta_i (k_i . k_j) exp(c_i - c_j) for j < i
//   U = (I + M)^-1 (beta v),  W = (I + M)^-1 (beta exp(c) k)       (forward substitution)
//   vn_i = U_i - S^T W_i                                            (the corrected values)
//   o_i = exp(c_i) S^T q_i + sum_{j<=i} (q_i . k_j) exp(c_i - c_j) vn_j
//   S <- exp(c_L-1) S + sum_j exp(c_L-1 - c_j) k_j vn_j^T
// which equals L steps of the recurrence (the same algebra as transformers' chunked form).
void delta_rule_chunked(const DeltaRuleShape& s, int64_t vh, const float* q, const float* k,
                        const float* v, const float* g, const float* beta, float* S, float* out,
                        float* scratch) {
  const int64_t kh = vh % s.n_k_heads, dk = s.k_dim, dv = s.v_dim;
  const int64_t C = kDeltaRuleChunk;
  float* M = scratch;       // [C][C]
  float* A = M + C * C;     // [C][C] decayed q.k
  float* U = A + C * C;     // [C][dv]  -> vn
  float* W = U + C * dv;    // [C][dk]
  float* cum = W + C * dk;  // [C]
  for (int64_t t0 = 0; t0 < s.n_tokens; t0 += C) {
    const int64_t L = std::min(C, s.n_tokens - t0);
    auto qrow = [&](int64_t i) { return q + (t0 + i) * s.q_stride + kh * dk; };
    auto krow = [&](int64_t i) { return k + (t0 + i) * s.k_stride + kh * dk; };
    auto vrow = [&](int64_t i) { return v + (t0 + i) * s.v_stride + vh * dv; };
    auto orow = [&](int64_t i) { return out + (t0 + i) * s.out_stride + vh * dv; };
    auto beta_at = [&](int64_t i) { return beta[(t0 + i) * s.gb_stride + vh]; };
    float acc = 0.0f;
    for (int64_t i = 0; i < L; ++i) cum[i] = acc += g[(t0 + i) * s.gb_stride + vh];

    for (int64_t i = 0; i < L; ++i) {
      const float* ki = krow(i);
      const float* qi = qrow(i);
      for (int64_t j = 0; j <= i; ++j) {
        const float decay = std::exp(cum[i] - cum[j]);
        const float* kj = krow(j);
        if (j < i) M[i * C + j] = beta_at(i) * detail::dot_f32(ki, kj, dk) * decay;
        A[i * C + j] = detail::dot_f32(qi, kj, dk) * decay;
      }
    }
    for (int64_t i = 0; i < L; ++i) {
      float* Ui = U + i * dv;
      float* Wi = W + i * dk;
      const float b = beta_at(i);
      const float* vi = vrow(i);
      const float* ki = krow(i);
      const float e = b * std::exp(cum[i]);
      for (int64_t d = 0; d < dv; ++d) Ui[d] = b * vi[d];
      for (int64_t r = 0; r < dk; ++r) Wi[r] = e * ki[r];
      for (int64_t j = 0; j < i; ++j) {
        detail::axpy_f32(-M[i * C + j], U + j * dv, Ui, dv);
        detail::axpy_f32(-M[i * C + j], W + j * dk, Wi, dk);
      }
    }
    // vn_i = U_i - S^T W_i, once every U_j is solved (the substitution reads them).
    for (int64_t i = 0; i < L; ++i)
      for (int64_t r = 0; r < dk; ++r) detail::axpy_f32(-W[i * dk + r], S + r * dv, U + i * dv, dv);
    for (int64_t i = 0; i < L; ++i) {
      float* oi = orow(i);
      const float* qi = qrow(i);
      std::fill(oi, oi + dv, 0.0f);
      for (int64_t r = 0; r < dk; ++r) detail::axpy_f32(qi[r], S + r * dv, oi, dv);
      detail::scale_f32(oi, std::exp(cum[i]), dv);
      for (int64_t j = 0; j <= i; ++j) detail::axpy_f32(A[i * C + j], U + j * dv, oi, dv);
    }
    const float last = cum[L - 1];
    detail::scale_f32(S, std::exp(last), dk * dv);
    for (int64_t j = 0; j < L; ++j) {
      const float e = std::exp(last - cum[j]);
      const float* kj = krow(j);
      for (int64_t r = 0; r < dk; ++r) detail::axpy_f32(e * kj[r], U + j * dv, S + r * dv, dv);
    }
  }
}

}  // namespace

void gated_delta_rule(const DeltaRuleShape& s, const float* q, const float* k, const float* v,
                      const float* g, const float* beta, const float* state_in, float* state_out,
                      float* out, Context& ctx, DeltaRuleForm form) {
  if (s.n_tokens < 1 || s.n_k_heads < 1 || s.n_v_heads % s.n_k_heads != 0 || s.k_dim < 1 ||
      s.v_dim < 1)
    throw InternalError("gated_delta_rule: bad shape");
  const size_t state_floats = size_t(s.n_v_heads) * s.k_dim * s.v_dim;
  const bool chunked =
      form == DeltaRuleForm::Chunked || (form == DeltaRuleForm::Auto && s.n_tokens > 1);
  if (chunked && state_out != state_in)
    std::memcpy(state_out, state_in, state_floats * sizeof(float));
  const size_t per_thread = chunked ? chunk_scratch_floats(s) : 0;
  float* scratch = chunked ? ctx.workspace(per_thread * ctx.n_threads()) : nullptr;
  ctx.pool().run(s.n_v_heads, [&](int64_t vh, int thread) {
    const size_t offset = size_t(vh) * s.k_dim * s.v_dim;
    float* S = state_out + offset;
    if (chunked)
      delta_rule_chunked(s, vh, q, k, v, g, beta, S, out, scratch + per_thread * thread);
    else
      delta_rule_recurrent(s, vh, q, k, v, g, beta, state_in + offset, S, out);
  });
}

}  // namespace reel::ops
