// The Qwen3-VL text decoder (the "qwen3vl" GGUF architecture): token embedding, Qwen3 blocks
// (RMSNorm, per-head q/k RMSNorm, grouped-query attention over a KV cache, interleaved MRoPE,
// SwiGLU), final norm and the output projection. Weights are views into the mapped GGUF in
// their stored type; all activation memory lives in a TextState sized at creation.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ops/ops.h"

namespace reel::gguf {
class File;
}

namespace reel {

struct TextConfig {
  int n_layer = 0;
  int n_embd = 0;      // hidden size D
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;    // key/value length
  int n_ff = 0;        // SwiGLU intermediate size
  int n_vocab = 0;     // rows of the embedding / output matrices
  int n_ctx_train = 0;
  int n_deepstack = 0; // DeepStack layers fed from the vision encoder
  float rope_theta = 0;
  float rms_eps = 0;
  std::array<int, 4> mrope_sections{};  // (t, h, w, unused) frequency-pair counts
  bool tied_output = false;             // output matrix is the token embedding
};

// Three rotary coordinates per token (time, height, width). Text tokens use t = h = w.
struct Pos3 {
  int32_t t = 0, h = 0, w = 0;
};

struct LayerWeights {
  const float* attn_norm = nullptr;
  const float* q_norm = nullptr;
  const float* k_norm = nullptr;
  const float* ffn_norm = nullptr;
  ops::Matrix wq, wk, wv, wo, w_gate, w_up, w_down;
};

class Qwen3VLText;

// One sequence's KV cache plus the activation arena of a forward pass. Sized once; the
// forward pass and the token loop never allocate.
class TextState {
 public:
  TextState(const Qwen3VLText& model, int n_ctx, int n_batch);
  int n_ctx() const { return n_ctx_; }
  int n_batch() const { return n_batch_; }
  int n_past() const { return n_past_; }
  // Forget everything after the first n tokens (n <= n_past).
  void truncate(int n);
  size_t kv_bytes() const { return (k_.size() + v_.size()) * sizeof(float); }

 private:
  friend class Qwen3VLText;
  int n_ctx_ = 0, n_batch_ = 0, n_past_ = 0;
  std::vector<float> k_, v_;  // [layer][kv_head][n_ctx][head_dim]
  std::vector<float> x_, xn_, q_, k_new_, v_new_, attn_, gate_, up_, rope_cos_, rope_sin_;
};

// What one forward call consumes: n tokens appended after the cache's n_past.
struct TextBatch {
  int n = 0;
  const int32_t* ids = nullptr;   // token ids, or
  const float* embd = nullptr;    // [n][n_embd] input rows where ids is null or ids[i] < 0
  const Pos3* pos = nullptr;      // rotary positions; null = n_past + i on all three axes
  // DeepStack: for each of config.n_deepstack layers, [n][n_embd] rows added after that
  // layer at tokens with visual[i] != 0. Null when the batch holds no visual tokens.
  const float* deepstack = nullptr;
  const uint8_t* visual = nullptr;
};

class Qwen3VLText {
 public:
  // Binds and checks every tensor of a "qwen3vl" text GGUF. Throws reel::Error naming the
  // file and the tensor or key at fault.
  static std::unique_ptr<Qwen3VLText> load(const gguf::File& file);

  const TextConfig& config() const { return cfg_; }

  // Runs the batch, appending its keys/values to the cache. If logits is non-null, writes
  // [n_logits][n_vocab] for the last n_logits tokens of the batch (n_logits <= batch.n).
  // batch.n must be <= state.n_batch() and fit in the context.
  void forward(TextState& state, const TextBatch& batch, float* logits, int n_logits,
               ops::Context& ctx) const;

  // Bytes of weights read to produce one token (every matrix once, plus one embedding row).
  size_t weight_bytes_per_token() const;
  const ops::Matrix& token_embedding() const { return tok_embd_; }

 private:
  void attention_block(TextState& st, int layer, int n, const Pos3* pos, ops::Context& ctx) const;
  void ffn_block(TextState& st, int layer, int n, ops::Context& ctx) const;
  void rope_tables(TextState& st, int n, const Pos3* pos) const;

  TextConfig cfg_;
  ops::Matrix tok_embd_, output_;
  const float* output_norm_ = nullptr;
  std::vector<LayerWeights> layers_;
  std::vector<float> inv_freq_;     // [head_dim/2]
  std::vector<uint8_t> rope_axis_;  // [head_dim/2]: 0 = t, 1 = h, 2 = w (interleaved MRoPE)
};

}  // namespace reel
