// One conversation's state in the engine: its decoder state (the KV cache, and a hybrid model's
// recurrent state) and, per cached position, an identity (the token id, or the medium and row of
// a visual token) and the rotary position that follows it. A new prompt that starts the same way
// reuses the cached prefix: the longest common prefix of identities is kept and only the rest is
// computed.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/kv_cache.h"
#include "model/text_decoder.h"
#include "pipeline/model.h"
#include "pipeline/prompt_layout.h"

namespace reel {

struct SequenceOptions {
  int n_ctx = 4096;  // 0: the model's training context
  KvType kv_type = KvType::F16;
};

// Throws reel::Error when a full context's state (kv_bytes: the KV cache and any recurrent
// state) would take more than 80% of ram_bytes (the weights, activations and the rest of the
// system need the remainder).
void check_kv_memory(int n_ctx, double kv_bytes, double ram_bytes);

// An identity for visual rows that equals no other in this process (never 0).
uint64_t new_block_identity();

// The identity of each prompt token for prefix matching: text tokens by id, visual tokens by
// their block's identity and row (never equal to a text token's).
std::vector<uint64_t> prompt_keys(std::span<const int32_t> ids, std::span<const VisualBlock> blocks,
                                  int32_t image_pad, int32_t video_pad);

class Sequence {
 public:
  // Throws reel::Error when the context exceeds the model's or this machine's memory.
  Sequence(const Model& model, SequenceOptions options);

  DecoderState& state() { return *state_; }
  int n_past() const { return state_->n_past(); }
  int n_ctx() const { return n_ctx_; }
  int room() const { return n_ctx_ - n_past(); }
  // Memory the sequence's state holds now.
  size_t bytes() const { return state_->bytes(); }
  // Rotary position of the next text token.
  int next_pos() const { return next_after_.empty() ? 0 : next_after_.back(); }
  // Cached positions whose identities equal the start of `keys`.
  int common_prefix(std::span<const uint64_t> keys) const;
  // How many of those (at most max) a request can keep: all of them with a KV cache alone; with
  // a recurrent state (hybrid models), which cannot be rewound, the longest of them that ends at
  // a checkpoint or at the state's end (else none).
  int reusable_prefix(std::span<const uint64_t> keys, int max) const;
  // Keeps the first n positions, or fewer: as many as the state can go back to (a recurrent
  // state's last checkpoint at or before n, else the start).
  void truncate(int n);
  // Records positions appended by a forward pass (their identities and following positions).
  void record(std::span<const uint64_t> keys, std::span<const Pos3> pos);
  void record_one(uint64_t key, const Pos3& pos);

 private:
  int n_ctx_ = 0;
  std::unique_ptr<DecoderState> state_;
  std::vector<uint64_t> keys_;
  std::vector<int32_t> next_after_;
};

}  // namespace reel
