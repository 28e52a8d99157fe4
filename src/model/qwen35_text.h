// The Qwen3.5 text decoder (the "qwen35" GGUF architecture, dense): token embedding, then a
// hybrid stack in which most layers are Gated DeltaNet (linear attention with a fixed-size
// recurrent state) and every full_attention_interval-th layer is gated full attention (per-head
// output gate, q/k RMSNorm, partial interleaved MRoPE) over a KV cache; SwiGLU after each;
// final norm and the output projection. Weights are views into the mapped GGUF.
//
// A sequence is a KvCache (the full-attention layers' keys and values, sized by kv_config())
// plus a DeltaNetState (each linear layer's convolution window and [k_dim][v_dim] state per
// value head, in float32). Both advance together, or not at all when a call fails.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/kv_cache.h"
#include "model/qwen3vl_text.h"
#include "model/text_decoder.h"
#include "ops/ops.h"

namespace reel::gguf {
class File;
}

namespace reel {

struct Qwen35Config {
  TextConfig text;   // n_layer counts every layer run (the MTP head excluded)
  int rope_dim = 0;  // rotary dimensions per head (rope.dimension_count), <= head_dim
  int full_attention_interval = 0;
  int conv_kernel = 0;                  // ssm.conv_kernel
  int n_k_heads = 0;                    // ssm.group_count
  int n_v_heads = 0;                    // ssm.time_step_rank
  int k_head_dim = 0;                   // ssm.state_size
  int v_head_dim = 0;                   // ssm.inner_size / n_v_heads
  std::vector<uint8_t> full_attention;  // per layer: 1 = full attention, 0 = Gated DeltaNet
  int n_full = 0, n_linear = 0;
  int conv_channels() const { return 2 * n_k_heads * k_head_dim + n_v_heads * v_head_dim; }
  // The shape a KvCache for this model takes: one layer per full-attention layer.
  TextConfig kv_config() const;
};

// One sequence's recurrent state: per linear layer, the last conv_kernel-1 convolution inputs
// and the delta-rule state of every value head. Two copies: a forward pass reads one and writes
// the other, and the roles swap only when the pass completes, so a failed or cancelled pass
// leaves the state as it was (like the KvCache's n_past).
class DeltaNetState {
 public:
  explicit DeltaNetState(const Qwen35Config& config);
  // Tokens the state has absorbed (equal to the KvCache's n_past while they are in step).
  int n_past() const { return n_past_; }
  // Back to the empty sequence. The state cannot be rewound to an earlier position (that needs
  // snapshots); n must be 0 or n_past().
  void truncate(int n);
  size_t bytes() const;
  // One copy of the state (what a checkpoint keeps), and the bytes it takes.
  struct Snapshot {
    int n_past = 0;
    std::vector<float> conv, ssm;
  };
  void save(Snapshot& out) const;
  void restore(const Snapshot& from);
  size_t snapshot_bytes() const { return (conv_[0].size() + ssm_[0].size()) * sizeof(float); }

 private:
  friend class Qwen35Text;
  float* conv(int side, int linear_layer) {
    return conv_[side].data() + linear_layer * conv_floats_;
  }
  float* ssm(int side, int linear_layer) { return ssm_[side].data() + linear_layer * ssm_floats_; }
  size_t conv_floats_ = 0, ssm_floats_ = 0;
  std::array<std::vector<float>, 2> conv_, ssm_;
  int cur_ = 0;
  int n_past_ = 0;
};

struct Qwen35Layer {
  const float* attn_norm = nullptr;
  const float* post_norm = nullptr;
  ops::Matrix w_gate, w_up, w_down;
  // full attention
  const float* q_norm = nullptr;
  const float* k_norm = nullptr;
  ops::Matrix wq_gate, wk, wv, wo;  // wq_gate rows: per head, head_dim query then head_dim gate
  // Gated DeltaNet
  ops::Matrix w_qkv, w_z, w_beta, w_alpha, w_out;
  const float* conv = nullptr;      // [channels][conv_kernel]
  const float* dt_bias = nullptr;   // [n_v_heads]
  const float* ssm_a = nullptr;     // [n_v_heads], -exp(A_log)
  const float* ssm_norm = nullptr;  // [v_head_dim]
};

class Qwen35Text;

// A Qwen3.5 sequence's state: the full-attention layers' KV cache and the recurrent state, in
// step. The recurrent state cannot be rewound, so it keeps copies of itself at checkpoints
// (where prompts may diverge: after a system prompt, a medium, a turn) and goes back to one of
// them, to the start, or stays where it is. At most kMaxCheckpoints are kept: the first (a
// shared system prompt's end) and the latest others.
class HybridState : public DecoderState {
 public:
  static constexpr int kMaxCheckpoints = 4;
  HybridState(const Qwen35Config& config, int n_ctx, KvType type)
      : kv(config.kv_config(), n_ctx, type), recurrent(config) {
    checkpoints_.reserve(kMaxCheckpoints);
    spare_.reserve(kMaxCheckpoints);
  }
  int n_past() const override { return kv.n_past(); }
  int rewind_point(int n) const override;
  void truncate(int n) override;
  bool wants_checkpoints() const override { return true; }
  void checkpoint() override;
  size_t bytes() const override;
  int n_checkpoints() const { return static_cast<int>(checkpoints_.size()); }
  // The kept snapshots, by ascending position (tests look at their buffers).
  const std::vector<DeltaNetState::Snapshot>& checkpoints() const { return checkpoints_; }
  KvCache kv;
  DeltaNetState recurrent;

 private:
  // Snapshots are several MB each on a real model: the evicted one and those a truncation drops
  // keep their buffers (in spare_) for the next checkpoint, so a long conversation stops
  // allocating once kMaxCheckpoints exist.
  DeltaNetState::Snapshot& next_snapshot();
  std::vector<DeltaNetState::Snapshot> checkpoints_;  // by ascending position
  std::vector<DeltaNetState::Snapshot> spare_;
};

// Activations of a forward pass over up to n_batch tokens, sized once.
class Qwen35Scratch : public DecoderScratch {
 public:
  Qwen35Scratch(const Qwen35Config& config, int n_batch);
  int n_batch() const { return n_batch_; }

 private:
  friend class Qwen35Text;
  int n_batch_ = 0;
  std::vector<float> x_, xn_, mixed_, conv_out_, z_, beta_, alpha_, core_, qg_, q_, gate_, k_, v_,
      attn_, ffn_gate_, ffn_up_, rope_cos_, rope_sin_;
  std::vector<Pos3> pos_;
};

class Qwen35Text : public TextDecoder {
 public:
  // Binds and checks every tensor of a "qwen35" text GGUF; throws reel::Error (Unsupported for
  // qwen35moe and other architectures) naming the file and the key or tensor at fault.
  static std::unique_ptr<Qwen35Text> load(const gguf::File& file);

  const Qwen35Config& config() const { return cfg_; }

  // TextDecoder: states are HybridStates, the scratch a Qwen35Scratch. The batch runs in one
  // pass: every projection, norm and FFN over all rows at once; per sequence only the causal
  // conv + delta rule (on its rows, with its recurrent state) and attention (its KV cache).
  const TextConfig& text_config() const override { return cfg_.text; }
  std::unique_ptr<DecoderState> new_state(int n_ctx, KvType kv_type) const override;
  size_t state_bytes(int n_ctx, KvType kv_type) const override;
  size_t bytes_per_position(KvType kv_type) const override;
  std::unique_ptr<DecoderScratch> new_scratch(int n_batch) const override;
  int widest_row() const override;
  void forward(std::span<const DecodeSpan> seqs, const TextBatch& batch, DecoderScratch& scratch,
               float* logits, ops::Context& ctx) const override;
  size_t weight_bytes_per_token() const override;

  // Runs a batch holding rows of several sequences (consecutive rows per sequence, in the order
  // of seqs; each span's state a HybridState); each sequence's rows see only its own state.
  // Positions: batch.pos, or each sequence's n_past + i on all three axes. Writes the wanted logits
  // rows, sequence by sequence ([sum of n_logits][n_vocab]). Nothing changes in any state when it
  // throws.
  void forward(std::span<const DecodeSpan> seqs, const TextBatch& batch, Qwen35Scratch& scratch,
               float* logits, ops::Context& ctx) const;
  // Appends batch.n tokens to one sequence (its KV cache and recurrent state, which must be in
  // step) and writes the logits of its last n_logits rows ([n_logits][n_vocab]). Positions:
  // batch.pos, or n_past + i on all three axes. Nothing changes in state when it throws (e.g.
  // cancelled).
  void forward(HybridState& state, const TextBatch& batch, Qwen35Scratch& scratch, float* logits,
               int n_logits, ops::Context& ctx) const;

  const ops::Matrix& token_embedding() const { return tok_embd_; }

 private:
  void check(std::span<const DecodeSpan> seqs, const TextBatch& b, const Qwen35Scratch& st) const;
  void embed(const TextBatch& b, Qwen35Scratch& st) const;
  void rope_tables(std::span<const DecodeSpan> seqs, const TextBatch& b, Qwen35Scratch& st) const;
  void linear_block(std::span<const DecodeSpan> seqs, int layer, int linear_index, int n,
                    Qwen35Scratch& st, ops::Context& ctx) const;
  void mix_linear(const DecodeSpan& seq, int row0, int layer, int linear_index, Qwen35Scratch& st,
                  ops::Context& ctx) const;
  void attention_block(std::span<const DecodeSpan> seqs, int layer, int full_index, int n,
                       Qwen35Scratch& st, ops::Context& ctx) const;
  void attend(const DecodeSpan& seq, int row0, int full_index, Qwen35Scratch& st,
              ops::Context& ctx) const;
  void ffn_block(int layer, int n, Qwen35Scratch& st, ops::Context& ctx) const;

  Qwen35Config cfg_;
  ops::Matrix tok_embd_, output_;
  const float* output_norm_ = nullptr;
  std::vector<Qwen35Layer> layers_;
  InterleavedMRope rope_;  // over the first rope_dim dimensions of a head
};

}  // namespace reel
