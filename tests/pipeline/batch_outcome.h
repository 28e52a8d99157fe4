// What the scheduler tests compare when sequences run side by side or alone: prompts of ordinary
// tokens, greedy requests with stop tokens ignored, the prompt logits a request computed, and
// the largest difference between two runs' logits. Shared by the Qwen3-VL (scheduler_test.cpp)
// and Qwen3.5 (qwen35_pipeline_test.cpp) scheduler tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include "pipeline/scheduler.h"

namespace reel::test {

// Ordinary tokens spread over the vocabulary, distinct per seed.
inline std::vector<TokenId> spread_prompt(int n, int seed) {
  std::vector<TokenId> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = 100 + (seed * 7919 + i * 104729) % 5000;
  return ids;
}

struct Outcome {
  std::vector<TokenId> generated;
  std::vector<float> logits;  // every computed prompt position
  GenerationStats stats;
};

// Greedy decoding of max_tokens tokens after ids, stop tokens ignored (the reference's generate()).
inline Request greedy_request(Sequence& seq, std::vector<TokenId> ids, int max_tokens) {
  Request r;
  r.seq = &seq;
  r.ids = std::move(ids);
  r.max_tokens = max_tokens;
  r.ignore_stop = true;
  r.sampling.temperature = 0;
  return r;
}

// Appends every logits row the request computes ([k][n_vocab] per call) to out.logits.
inline Request keep_logits(Request r, Outcome& out, size_t n_vocab) {
  r.on_logits = [&out, n_vocab](const float* rows, int k) {
    out.logits.insert(out.logits.end(), rows, rows + k * n_vocab);
  };
  return r;
}

// max |got - want| and max |want| over two runs' logits (of equal length).
struct LogitsDiff {
  double max_diff = 0, max_abs = 0;
};
inline LogitsDiff logits_diff(const std::vector<float>& got, const std::vector<float>& want) {
  LogitsDiff d;
  for (size_t k = 0; k < want.size() && k < got.size(); ++k) {
    d.max_diff = std::max(d.max_diff, double(std::abs(got[k] - want[k])));
    d.max_abs = std::max(d.max_abs, double(std::abs(want[k])));
  }
  return d;
}

}  // namespace reel::test
