#include "model/text_blocks.h"

#include <cmath>
#include <cstring>
#include <string>

#include "common/error.h"

namespace reel {

InterleavedMRope::InterleavedMRope(int rope_dim, float theta, const std::array<int, 4>& sections) {
  const int half = rope_dim / 2;
  inv_freq_.resize(half);
  axis_.assign(half, 0);
  for (int j = 0; j < half; ++j) {
    const float exponent = static_cast<float>(2 * j) / static_cast<float>(rope_dim);
    inv_freq_[j] = 1.0f / std::pow(theta, exponent);
    if (j % 3 == 1 && j < 3 * sections[1]) axis_[j] = 1;
    if (j % 3 == 2 && j < 3 * sections[2]) axis_[j] = 2;
  }
}

void InterleavedMRope::tables(const Pos3* pos, int n, float* cos, float* sin) const {
  const int half = pairs();
  for (int i = 0; i < n; ++i) {
    const int32_t axes[3] = {pos[i].t, pos[i].h, pos[i].w};
    float* cs = cos + size_t(i) * half;
    float* sn = sin + size_t(i) * half;
    for (int j = 0; j < half; ++j) {
      const float angle = static_cast<float>(axes[axis_[j]]) * inv_freq_[j];
      cs[j] = std::cos(angle);
      sn[j] = std::sin(angle);
    }
  }
}

void embed_batch(const ops::Matrix& tok_embd, int n_vocab, const TextBatch& b, float* x) {
  const int64_t D = tok_embd.cols;
  for (int i = 0; i < b.n; ++i) {
    float* row = x + i * D;
    if (b.ids && b.ids[i] >= 0) {
      if (b.ids[i] >= n_vocab)
        throw Error("token id " + std::to_string(b.ids[i]) + " is outside the vocabulary");
      ops::get_rows(tok_embd, b.ids + i, 1, row);
    } else if (b.embd) {
      std::memcpy(row, b.embd + i * D, D * sizeof(float));
    } else {
      throw InternalError("batch token has neither an id nor an embedding");
    }
  }
}

void swiglu_block(const SwiGlu& w, float* x, float* xn, float* gate, float* up, int n, int D, int F,
                  ops::Context& ctx) {
  ops::rms_norm(x, w.norm, xn, n, D, w.eps, ctx);
  const ops::Matrix gate_up[2] = {w.gate, w.up};
  float* const gate_up_out[2] = {gate, up};
  ops::matmul_multi(gate_up, xn, n, gate_up_out, ctx);
  ops::silu_mul(gate, up, int64_t(n) * F, ctx);
  ops::matmul(w.down, gate, n, xn, ctx);
  ops::add(x, xn, int64_t(n) * D, ctx);
}

void output_head(const OutputHead& head, const float* x, float* xn, int n, int64_t D, float* logits,
                 ops::Context& ctx) {
  ops::rms_norm(x, head.norm, xn, n, D, head.eps, ctx);
  ops::matmul(head.weight, xn, n, logits, ctx);
}

}  // namespace reel
