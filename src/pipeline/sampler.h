// Token sampling: penalties, temperature, top-k, top-p, min-p and a seeded random draw; or
// greedy (argmax) when the temperature is zero. Buffers are sized once per vocabulary.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace reel {

struct SamplingParams {
  // Defaults are Qwen3-VL Instruct's recommended settings (generation_config.json and the
  // Qwen3-VL README), except presence_penalty, which is a serving-side extra (0 here).
  float temperature = 0.7f;  // <= 0: greedy
  int top_k = 20;            // <= 0: off
  float top_p = 0.8f;        // >= 1: off
  float min_p = 0.0f;        // <= 0: off; keeps tokens with p >= min_p * p_max
  float repeat_penalty = 1.0f;   // transformers-style: divide positive, multiply negative logits
  float presence_penalty = 0.0f; // subtracted once from every token already generated
  float frequency_penalty = 0.0f; // subtracted once per occurrence (OpenAI's definition)
  uint64_t seed = 3407;
};

class Sampler {
 public:
  Sampler(const SamplingParams& params, int n_vocab);
  // Picks the next token from logits[n_vocab] (modified in place by the penalties); `history`
  // holds the tokens the penalties apply to (those generated in the current answer).
  int32_t sample(float* logits, std::span<const int32_t> history);
  void reseed(uint64_t seed) { rng_.seed(seed); }
  const SamplingParams& params() const { return p_; }

 private:
  void apply_penalties(float* logits, std::span<const int32_t> history);
  SamplingParams p_;
  int n_vocab_;
  std::mt19937_64 rng_;
  struct Candidate {
    float logit;
    int32_t id;
  };
  std::vector<Candidate> cand_;
  std::vector<int32_t> count_;  // occurrences in the history, zero between calls
};

int32_t argmax(const float* x, int n);

}  // namespace reel
