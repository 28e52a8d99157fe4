// The Qwen3-VL text decoder (the "qwen3vl" GGUF architecture): token embedding, Qwen3 blocks
// (RMSNorm, per-head q/k RMSNorm, grouped-query attention over a KV cache, interleaved MRoPE,
// SwiGLU), final norm and the output projection. Weights are views into the mapped GGUF in
// their stored type; keys and values live in each sequence's KvCache, activations in a TextScratch.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/kv_cache.h"
#include "model/text_blocks.h"
#include "model/text_decoder.h"
#include "ops/ops.h"

namespace reel::gguf {
class File;
}

namespace reel {

struct TextConfig {
  int n_layer = 0;
  int n_embd = 0;  // hidden size D
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;  // key/value length
  int n_ff = 0;      // SwiGLU intermediate size
  int n_vocab = 0;   // rows of the embedding / output matrices
  int n_ctx_train = 0;
  int n_deepstack = 0;  // DeepStack layers fed from the vision encoder
  float rope_theta = 0;
  float rms_eps = 0;
  std::array<int, 4> mrope_sections{};  // (t, h, w, unused) frequency-pair counts
  bool tied_output = false;             // output matrix is the token embedding
};

struct LayerWeights {
  const float* attn_norm = nullptr;
  const float* q_norm = nullptr;
  const float* k_norm = nullptr;
  const float* ffn_norm = nullptr;
  ops::Matrix wq, wk, wv, wo, w_gate, w_up, w_down;
};

class Qwen3VLText;

// The activation arena of a forward pass over up to n_batch tokens. Sized once; the forward
// pass and the token loop never allocate. One per executor, shared by every sequence it runs.
class TextScratch : public DecoderScratch {
 public:
  TextScratch(const TextConfig& config, int n_batch);
  int n_batch() const { return n_batch_; }

 private:
  friend class Qwen3VLText;
  int n_batch_ = 0;
  std::vector<float> x_, xn_, q_, k_new_, v_new_, attn_, gate_, up_, rope_cos_, rope_sin_;
  std::vector<Pos3> pos_;
};

// A Qwen3-VL sequence's state: its KV cache, which can be cut back anywhere.
class KvState : public DecoderState {
 public:
  KvState(const TextConfig& config, int n_ctx, KvType type) : kv(config, n_ctx, type) {}
  int n_past() const override { return kv.n_past(); }
  int rewind_point(int n) const override { return std::clamp(n, 0, kv.n_past()); }
  void truncate(int n) override { kv.truncate(n); }
  size_t bytes() const override { return kv.bytes(); }
  KvCache kv;
};

class Qwen3VLText : public TextDecoder {
 public:
  // Binds and checks every tensor of a "qwen3vl" text GGUF. Throws reel::Error naming the
  // file and the tensor or key at fault.
  static std::unique_ptr<Qwen3VLText> load(const gguf::File& file);

  const TextConfig& config() const { return cfg_; }
  const TextConfig& text_config() const override { return cfg_; }

  // TextDecoder: states are KvStates, the scratch a TextScratch.
  std::unique_ptr<DecoderState> new_state(int n_ctx, KvType kv_type) const override;
  size_t state_bytes(int n_ctx, KvType kv_type) const override;
  size_t bytes_per_position(KvType kv_type) const override;
  std::unique_ptr<DecoderScratch> new_scratch(int n_batch) const override;
  int widest_row() const override;
  void forward(std::span<const DecodeSpan> seqs, const TextBatch& batch, DecoderScratch& scratch,
               float* logits, ops::Context& ctx) const override;

  // Runs a batch holding rows of several sequences (consecutive rows per sequence, in the
  // order of `seqs`; each span's state a KvState), reading each weight once for all of them. Every
  // sequence's keys and values are appended to its own cache and its tokens attend only to it, so a
  // sequence's results do not depend on what else is in the batch. Writes the wanted logits rows,
  // sequence by sequence, to logits ([sum of n_logits][n_vocab]). A cancellation (between layers)
  // leaves every cache as it was.
  void forward(std::span<const DecodeSpan> seqs, const TextBatch& batch, TextScratch& scratch,
               float* logits, ops::Context& ctx) const;
  // One sequence: the whole batch appended to state's cache, logits of its last n_logits rows.
  void forward(KvState& state, const TextBatch& batch, TextScratch& scratch, float* logits,
               int n_logits, ops::Context& ctx) const;

  // Bytes of weights read to produce one token (every matrix once, plus one embedding row).
  size_t weight_bytes_per_token() const override;
  const ops::Matrix& token_embedding() const { return tok_embd_; }

 private:
  void check(std::span<const DecodeSpan> seqs, const TextBatch& b,
             const TextScratch& scratch) const;
  void embed(const TextBatch& b, TextScratch& st) const;
  void attention_block(std::span<const DecodeSpan> seqs, TextScratch& st, int layer, int n,
                       ops::Context& ctx) const;
  void attend(const DecodeSpan& seq, int row0, TextScratch& st, int layer, ops::Context& ctx) const;
  void ffn_block(TextScratch& st, int layer, int n, ops::Context& ctx) const;
  void rope_tables(std::span<const DecodeSpan> seqs, const TextBatch& b, TextScratch& st) const;

  TextConfig cfg_;
  ops::Matrix tok_embd_, output_;
  const float* output_norm_ = nullptr;
  std::vector<LayerWeights> layers_;
  InterleavedMRope rope_;  // over the whole head
};

}  // namespace reel
