// The text decoder as the pipeline sees it: a small interface that every implementation (the
// CPU's Qwen3-VL and Qwen3.5 decoders today; other backends later) provides, so that the
// pipeline, the CLI and the server name no model class. A decoder is immutable and shared; what
// changes lives in a DecoderState (one per sequence: its KV cache, and a hybrid model's
// recurrent state) and a DecoderScratch (one per executor: the activations of a batch).
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "model/kv_cache.h"
#include "model/text_blocks.h"
#include "ops/ops.h"

namespace reel {

struct TextConfig;

// One sequence's memory of what it has read. Positions are appended by forward passes only.
class DecoderState {
 public:
  virtual ~DecoderState() = default;
  virtual int n_past() const = 0;
  // The furthest position at or before n (0 <= n <= n_past) that the state can go back to: n
  // itself for a KV cache; for a recurrent state, which cannot be rewound, its current end, a
  // checkpoint, or the start.
  virtual int rewind_point(int n) const = 0;
  // Keeps the first n positions; n must be its own rewind_point.
  virtual void truncate(int n) = 0;
  // Whether the state keeps checkpoints (then the scheduler stops prompt chunks where a prompt
  // may later diverge, and calls checkpoint() there).
  virtual bool wants_checkpoints() const { return false; }
  // Remembers the current position as one to come back to.
  virtual void checkpoint() {}
  // Memory the state holds now.
  virtual size_t bytes() const = 0;
};

// The activations of a forward pass over up to n_batch rows, sized once; the token loop never
// allocates. Each decoder makes and reads its own kind.
class DecoderScratch {
 public:
  virtual ~DecoderScratch() = default;
};

// One sequence's share of a batch: the next n rows appended to state, logits wanted for its last
// n_logits rows (0: none, 1: the next-token distribution, n: every position).
struct DecodeSpan {
  DecoderState* state = nullptr;
  int n = 0;
  int n_logits = 0;
};

class TextDecoder {
 public:
  virtual ~TextDecoder() = default;

  virtual const TextConfig& text_config() const = 0;
  // A state for a sequence of up to n_ctx positions. Throws reel::Error when it cannot be made.
  virtual std::unique_ptr<DecoderState> new_state(int n_ctx, KvType kv_type) const = 0;
  // Memory of a full state of n_ctx positions (the up-front check against RAM), and what each
  // position adds (the roofline at depth reads it once per generated token).
  virtual size_t state_bytes(int n_ctx, KvType kv_type) const = 0;
  virtual size_t bytes_per_position(KvType kv_type) const = 0;
  virtual std::unique_ptr<DecoderScratch> new_scratch(int n_batch) const = 0;
  // The widest activation row of a forward pass (for the context's per-thread buffers).
  virtual int widest_row() const = 0;

  // Runs a batch holding rows of several sequences (consecutive rows per sequence, in the order
  // of seqs). Each sequence's tokens attend only to its own state, so its results do not depend
  // on what else is in the batch. Writes the wanted logits rows, sequence by sequence, to logits
  // ([sum of n_logits][n_vocab]). On a throw (a bad span, a full context, a cancellation between
  // layers) no state has advanced: the spans are all checked before any work, and every state
  // advances together after the last layer.
  virtual void forward(std::span<const DecodeSpan> seqs, const TextBatch& batch,
                       DecoderScratch& scratch, float* logits, ops::Context& ctx) const = 0;

  // Bytes of weights read to produce one token (every matrix once, plus one embedding row).
  virtual size_t weight_bytes_per_token() const = 0;
};

}  // namespace reel
