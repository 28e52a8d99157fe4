#include "pipeline/sampler.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace reel {

int32_t argmax(const float* x, int n) {
  int32_t best = 0;
  for (int i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

Sampler::Sampler(const SamplingParams& params, int n_vocab)
    : p_(params), n_vocab_(n_vocab), rng_(params.seed) {
  // n_vocab comes from a loaded model, whose embedding has at least one row.
  if (n_vocab < 1) throw InternalError("sampler: empty vocabulary");
  if (!std::isfinite(p_.temperature) || !std::isfinite(p_.top_p) || !std::isfinite(p_.min_p) ||
      !(p_.repeat_penalty > 0) || !std::isfinite(p_.repeat_penalty) ||
      !std::isfinite(p_.presence_penalty) || !std::isfinite(p_.frequency_penalty))
    throw Error("sampling parameters must be finite (and the repeat penalty positive)");
  cand_.reserve(n_vocab);
  count_.assign(n_vocab, 0);
}

void Sampler::apply_penalties(float* logits, std::span<const int32_t> history) {
  if (p_.repeat_penalty == 1.0f && p_.presence_penalty == 0.0f && p_.frequency_penalty == 0.0f)
    return;
  for (int32_t id : history)
    if (id >= 0 && id < n_vocab_) ++count_[id];
  // Each distinct token once (its count is zeroed as it is applied, which also leaves count_
  // clean for the next call).
  for (int32_t id : history) {
    if (id < 0 || id >= n_vocab_ || count_[id] == 0) continue;
    float& l = logits[id];
    l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    l -= p_.presence_penalty + p_.frequency_penalty * static_cast<float>(count_[id]);
    count_[id] = 0;
  }
}

int32_t Sampler::sample(float* logits, std::span<const int32_t> history) {
  apply_penalties(logits, history);
  if (p_.temperature <= 0.0f) return argmax(logits, n_vocab_);

  cand_.clear();
  const float inv_t = 1.0f / p_.temperature;
  for (int i = 0; i < n_vocab_; ++i) cand_.push_back({logits[i] * inv_t, i});
  auto by_logit = [](const Candidate& a, const Candidate& b) { return a.logit > b.logit; };
  size_t keep = cand_.size();
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < keep) {
    keep = p_.top_k;
    std::partial_sort(cand_.begin(), cand_.begin() + keep, cand_.end(), by_logit);
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  cand_.resize(keep);

  // Softmax over the survivors (already sorted, largest first), then nucleus and min-p cuts.
  const float max_logit = cand_[0].logit;
  double total = 0;
  for (auto& c : cand_) total += (c.logit = std::exp(c.logit - max_logit));
  size_t n = cand_.size();
  if (p_.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < cand_.size(); ++i) {
      cum += cand_[i].logit / total;
      if (cum >= p_.top_p) {
        n = i + 1;
        break;
      }
    }
  }
  if (p_.min_p > 0.0f) {
    const float floor_p = p_.min_p * cand_[0].logit;  // cand_[0].logit == 1 (the max)
    size_t i = 1;
    while (i < n && cand_[i].logit >= floor_p) ++i;
    n = i;
  }
  double kept = 0;
  for (size_t i = 0; i < n; ++i) kept += cand_[i].logit;
  std::uniform_real_distribution<double> uni(0.0, kept);
  double r = uni(rng_);
  for (size_t i = 0; i < n; ++i) {
    r -= cand_[i].logit;
    if (r <= 0) return cand_[i].id;
  }
  return cand_[n - 1].id;
}

}  // namespace reel
