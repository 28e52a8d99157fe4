// The loop that runs requests on an executor: each step is one forward pass holding the next
// token of every request that is decoding plus, in what room is left of the batch, the next
// chunk of prompts still being read. Weights are read once per step for all sequences, a long
// prompt (a video) is read in chunks between the others' tokens instead of stalling them, and
// requests may join or leave between any two steps.
//
// A request presents the whole prompt of its conversation, from the first token; the part its
// sequence already holds (the longest common prefix of token ids and media identities) is
// reused, the rest computed. So a follow-up turn computes only its own tokens, a failed or
// cancelled turn needs no undo (the next prompt simply diverges where it did), and a new
// prompt that shares a prefix with a cached conversation starts from that prefix.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "pipeline/executor.h"
#include "pipeline/model.h"
#include "pipeline/prompt_layout.h"
#include "pipeline/sampler.h"
#include "pipeline/sequence.h"

namespace reel {

struct GenerationStats {
  int n_prompt = 0;  // prompt tokens computed for this request
  int n_reused = 0;  // prompt tokens taken from the sequence's cache
  int n_generated = 0;
  int n_decode_steps = 0;  // forward passes after the prompt's (the first token comes from that)
  double prefill_ms = 0;   // from admission to the first token's logits
  double decode_ms = 0;    // from there to the end
  bool hit_context_limit = false;
  double prefill_tps() const { return prefill_ms > 0 ? n_prompt * 1000.0 / prefill_ms : 0; }
  // Tokens per second of the decode passes: counting the first token (which the prefill made)
  // over their time overstated it by n/(n-1), a third at -n 4.
  double decode_tps() const { return decode_ms > 0 ? n_decode_steps * 1000.0 / decode_ms : 0; }
};

// Receives the answer in whole UTF-8 pieces; returns false to stop generating.
using TextSink = std::function<bool(std::string_view)>;
// Receives logits rows [n_rows][n_vocab] of consecutive prompt positions.
using LogitsSink = std::function<void(const float* rows, int n_rows)>;

struct Request {
  Sequence* seq = nullptr;   // one request at a time per sequence
  std::vector<TokenId> ids;  // the whole prompt, from the conversation's first token
  // The rows of its pad tokens, in order. Rows are read while the prompt is computed; after
  // the request only the ids and dimensions are used.
  std::vector<VisualBlock> blocks;
  SamplingParams sampling;
  int max_tokens = -1;  // < 0: until a stop token or a full context; 0: prompt only
  bool reuse_prefix = true;
  bool ignore_stop = false;  // generate max_tokens even past stop tokens (benchmarks)
  TextSink on_text;
  PrefillProgress on_prefill;                 // (computed, to compute) after each chunk
  LogitsSink on_logits;                       // every computed prompt position's logits (no reuse)
  const std::atomic<bool>* cancel = nullptr;  // checked before every step
};

struct RequestResult {
  GenerationStats stats;
  std::vector<TokenId> generated;  // the answer's ids (without the stop token)
  std::exception_ptr error;        // null on success
};

class Scheduler {
 public:
  using Id = uint64_t;
  Scheduler(const Model& model, Executor& executor);
  ~Scheduler();

  // Checks and admits a request. Throws reel::Error (ContextFull, bad media rows) without
  // admitting it.
  Id submit(Request request);
  // One forward pass over the admitted requests; finished requests leave with their results.
  void step();
  bool idle() const { return active_.empty(); }
  // Steps until every admitted request has finished.
  void run();
  bool finished(Id id) const;
  // The result of a finished request (once).
  RequestResult take(Id id);
  // Submits, steps until this request has finished (others progress too), and returns its
  // result; rethrows its error.
  RequestResult run_one(Request request);

  Executor& executor() { return exec_; }
  const Model& model() const { return model_; }

 private:
  struct Active;
  void stage_decode(Active& a, int row);
  int stage_prefill(Active& a, int row, int room);
  void after_forward(Active& a, const float* logits);
  void sample(Active& a, float* logits);
  void finish(Active& a);
  void fail(Active& a, std::exception_ptr e);
  void retire();
  std::vector<int> checkpoints(const Request& r, int from) const;

  const Model& model_;
  Executor& exec_;
  Id next_id_ = 1;
  std::vector<std::unique_ptr<Active>> active_;
  std::vector<std::pair<Id, RequestResult>> done_;
  std::vector<DecodeSpan> spans_;  // of the current step (reserved; no allocation per step)
  std::vector<Active*> in_batch_;
  std::vector<float> all_logits_;  // for requests that want every position's logits
  // Tokens around which prompts diverge (checkpoints of a recurrent state; -1: none).
  TokenId im_start_ = -1, vision_end_ = -1, timestamp_open_ = -1;
};

}  // namespace reel
