// Where forward passes run: the thread pool and every scratch buffer of a batch (activations,
// staged input rows, logits), sized once. One executor runs one batch at a time; a Scheduler
// drives it. The model it runs is shared and immutable; sequences own their KV caches.
#pragma once

#include <cstdint>
#include <vector>

#include "model/text_decoder.h"
#include "ops/ops.h"
#include "pipeline/model.h"

namespace reel {

struct ExecutorOptions {
  int n_threads = 0;  // 0: all cores
  int n_batch = 256;  // most tokens in one forward pass (prefill chunk plus decode rows)
};

class Executor {
 public:
  // Throws reel::Error on out-of-range options.
  Executor(const Model& model, ExecutorOptions options);

  ops::Context& ctx() { return ctx_; }
  int n_threads() const { return ctx_.n_threads(); }
  int n_batch() const { return n_batch_; }
  bool has_text() const { return scratch_ != nullptr; }
  // The text decoder's activations (made by it; only it reads them).
  DecoderScratch& scratch() { return *scratch_; }

  // Staging for one batch's inputs (n_batch rows each) and its logits rows.
  struct Staging {
    std::vector<int32_t> ids;
    std::vector<float> embd;       // [n_batch][D]
    std::vector<float> deepstack;  // [n_deepstack][n_batch][D]
    std::vector<uint8_t> visual;
    std::vector<Pos3> pos;
    std::vector<float> logits;  // [logit rows][n_vocab], grown by the scheduler when needed
  };
  Staging& staging() { return staging_; }

 private:
  ops::Context ctx_;
  int n_batch_ = 0;
  std::unique_ptr<DecoderScratch> scratch_;
  Staging staging_;
};

}  // namespace reel
