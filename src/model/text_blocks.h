// Pieces the Qwen text decoders (Qwen3-VL's and Qwen3.5's) compute alike: the token embedding
// of a batch, interleaved MRoPE's angle tables, the SwiGLU feed-forward block with its
// residual, and the output head over the rows whose logits are wanted. Each model keeps its own
// layers and order; these are the steps written once.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "ops/ops.h"

namespace reel {

// Three rotary coordinates per token (time, height, width). Text tokens use t = h = w.
struct Pos3 {
  int32_t t = 0, h = 0, w = 0;
};

// What one forward call consumes: n tokens (rows), each appended after its sequence's cache.
struct TextBatch {
  int n = 0;
  const int32_t* ids = nullptr;  // token ids, or
  const float* embd = nullptr;   // [n][n_embd] input rows where ids is null or ids[i] < 0
  const Pos3* pos = nullptr;     // rotary positions; null = the sequence's n_past + i on all axes
  // DeepStack: for each of config.n_deepstack layers, [n][n_embd] rows added after that
  // layer at tokens with visual[i] != 0. Null when the batch holds no visual tokens.
  const float* deepstack = nullptr;
  const uint8_t* visual = nullptr;
};

// Interleaved MRoPE as transformers applies it over the first rope_dim dimensions of a head:
// frequency pair j takes the h angle when j % 3 == 1 and j < 3*sections[1], the w angle when
// j % 3 == 2 and j < 3*sections[2], and the t angle otherwise; inv_freq in float32 as the
// reference computes it.
class InterleavedMRope {
 public:
  InterleavedMRope() = default;
  InterleavedMRope(int rope_dim, float theta, const std::array<int, 4>& sections);
  int pairs() const { return static_cast<int>(inv_freq_.size()); }
  // cos and sin of every pair's angle for n tokens at positions pos ([n][pairs] each).
  void tables(const Pos3* pos, int n, float* cos, float* sin) const;

 private:
  std::vector<float> inv_freq_;
  std::vector<uint8_t> axis_;  // per pair: 0 = t, 1 = h, 2 = w
};

// x[i] = the embedding row of b.ids[i], or b.embd's row where there is no id (visual tokens).
// Throws reel::Error for an id outside the vocabulary.
void embed_batch(const ops::Matrix& tok_embd, int n_vocab, const TextBatch& b, float* x);

// x += W_down (silu(W_gate xn) * (W_up xn)), xn = RMSNorm(x) * norm; n rows of width D, F the
// intermediate size. xn, gate and up are scratch ([n][D], [n][F], [n][F]).
struct SwiGlu {
  const float* norm = nullptr;
  float eps = 0;
  ops::Matrix gate, up, down;
};
void swiglu_block(const SwiGlu& w, float* x, float* xn, float* gate, float* up, int n, int D, int F,
                  ops::Context& ctx);

// The output head: logits = W_out (RMSNorm(x) * norm) for n rows of width D (xn: [n][D] scratch).
struct OutputHead {
  const float* norm = nullptr;
  float eps = 0;
  ops::Matrix weight;
};
void output_head(const OutputHead& head, const float* x, float* xn, int n, int64_t D, float* logits,
                 ops::Context& ctx);

// The logits a batch wants. x holds the batch's rows, consecutive per sequence in the order of
// seqs; each sequence wants its last n_logits of its n rows. Those rows are gathered to the
// front of x (in place: a row only moves towards the front), then the head writes their logits
// ([sum of n_logits][n_vocab]) when logits is non-null. Seq: any span type with n and n_logits.
template <class Seq>
void output_logits(std::span<const Seq> seqs, const OutputHead& head, float* x, float* xn,
                   int64_t D, float* logits, ops::Context& ctx) {
  int row0 = 0, out = 0;
  for (const Seq& s : seqs) {
    const int first = row0 + s.n - s.n_logits;
    if (out != first)  // out <= first: copying forward is safe
      std::memmove(x + out * D, x + first * D, s.n_logits * D * sizeof(float));
    out += s.n_logits;
    row0 += s.n;
  }
  if (out > 0 && logits) output_head(head, x, xn, out, D, logits, ctx);
}

// The checks every batch passes before a forward call: each span well formed (a state, n >= 1,
// 0 <= n_logits <= n) and fitting its cache (ContextFull otherwise), no state twice, and the
// spans covering the batch's n_rows. cache_of(span) gives the span's cache (room(), n_ctx()).
template <class Seq, class CacheOf>
void check_spans(std::span<const Seq> seqs, int n_rows, CacheOf cache_of) {
  int rows = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const Seq& s = seqs[i];
    if (!s.state || s.n < 1 || s.n_logits < 0 || s.n_logits > s.n)
      throw InternalError("bad sequence span in a batch");
    const auto& kv = cache_of(s);
    if (s.n > kv.room())
      throw ContextFull("the context is full (" + std::to_string(kv.n_ctx()) + " tokens)");
    for (size_t j = 0; j < i; ++j)
      if (seqs[j].state == s.state) throw InternalError("a sequence appears twice in one batch");
    rows += s.n;
  }
  if (rows != n_rows) throw InternalError("the sequences of a batch do not cover its rows");
}

}  // namespace reel
