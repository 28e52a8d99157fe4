// The sequence-mixing ops of linear-attention layers (Qwen3.5's Gated DeltaNet): a depthwise
// causal convolution over time with a carried state, and the gated delta rule, as a recurrence
// (decode) and in a chunked parallel form (prefill). Plain float arrays in, plain float arrays
// out; portable C++ over the vector helpers of the ops layer.
#pragma once

#include <cstdint>

#include "ops/ops.h"

namespace reel::ops {

// y[t][c] = silu(sum_i w[c][i] * in[t - (kernel-1) + i][c]) for the n tokens of x, where the
// kernel-1 inputs before x come from state_in ([kernel-1][channels], oldest first; zeros for a
// fresh sequence). state_out receives the last kernel-1 inputs (it may be state_in).
//   x: [n][channels] with token stride x_stride; w: [channels][kernel]; y: [n][channels].
void causal_conv1d_silu(const float* x, int64_t n, int64_t channels, int64_t x_stride,
                        const float* w, int kernel, const float* state_in, float* state_out,
                        float* y);

// x = x / sqrt(sum(x^2) + eps) per row of dim (the FLA / transformers l2norm), times scale.
void l2_norm(float* x, int64_t n_rows, int64_t dim, float eps, float scale);

// x *= sigmoid(gate), elementwise.
void sigmoid_mul(float* x, const float* gate, int64_t n);

struct DeltaRuleShape {
  int64_t n_tokens = 0;
  int64_t n_k_heads = 0, n_v_heads = 0;  // n_v_heads a multiple of n_k_heads
  int64_t k_dim = 0, v_dim = 0;
  int64_t q_stride = 0, k_stride = 0, v_stride = 0;  // token strides (floats)
  int64_t gb_stride = 0;                             // token stride of g and beta
  int64_t out_stride = 0;
};

// How gated_delta_rule() computes: Auto takes the recurrence for one token and the chunked
// form for more; the others force one (tests compare them).
enum class DeltaRuleForm : uint8_t { Auto, Recurrent, Chunked };
inline constexpr int kDeltaRuleChunk = 64;

// The gated delta rule over n tokens, per value head j (which reads key head j % n_k_heads):
//   S <- exp(g_t) S;  S <- S + k_t (beta_t (v_t - S^T k_t))^T;  o_t = S^T q_t
// with S a [k_dim][v_dim] float32 state. q and k are expected l2-normalised, q also scaled.
//   q, k: [n][n_k_heads][k_dim]; v: [n][n_v_heads][v_dim]; g (log decay), beta: [n][n_v_heads];
//   state_in, state_out: [n_v_heads][k_dim][v_dim] (state_out may be state_in);
//   out: [n][n_v_heads][v_dim].
// The chunked form solves each chunk of kDeltaRuleChunk tokens with small triangular systems
// and matmuls (the WY/UT form), reading and writing the state once per chunk.
void gated_delta_rule(const DeltaRuleShape& s, const float* q, const float* k, const float* v,
                      const float* g, const float* beta, const float* state_in, float* state_out,
                      float* out, Context& ctx, DeltaRuleForm form = DeltaRuleForm::Auto);

}  // namespace reel::ops
