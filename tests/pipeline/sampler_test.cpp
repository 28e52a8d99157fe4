#include "pipeline/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "common/error.h"

namespace reel {
namespace {

std::vector<float> logits_of(std::initializer_list<float> v) { return std::vector<float>(v); }

TEST(Sampler, GreedyPicksTheLargestLogit) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p, 5);
  auto l = logits_of({0.1f, 2.0f, -1.0f, 1.99f, 0.0f});
  EXPECT_EQ(s.sample(l.data(), {}), 1);
}

TEST(Sampler, TopKOneIsGreedyWhateverTheTemperature) {
  SamplingParams p;
  p.temperature = 5.0f;
  p.top_k = 1;
  p.top_p = 1.0f;
  Sampler s(p, 4);
  for (int i = 0; i < 50; ++i) {
    auto l = logits_of({0.0f, 0.5f, 3.0f, 2.9f});
    EXPECT_EQ(s.sample(l.data(), {}), 2);
  }
}

TEST(Sampler, SameSeedSameTokens) {
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.temperature = 1.0f;
  p.seed = 42;
  Sampler a(p, 8), b(p, 8);
  for (int i = 0; i < 100; ++i) {
    std::vector<float> l(8, 0.0f), m(8, 0.0f);
    EXPECT_EQ(a.sample(l.data(), {}), b.sample(m.data(), {}));
  }
}

// With logits log(0.5), log(0.3), log(0.2) and top-p 0.7, only the first two tokens survive,
// renormalised to 0.625 / 0.375. 20000 draws put the frequency within about 4 sigma
// (sigma = sqrt(0.625*0.375/20000) = 0.0034) of 0.625 with a 0.015 bound.
TEST(Sampler, TopPKeepsTheNucleusAndRenormalises) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 0.7f;
  Sampler s(p, 3);
  std::map<int, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    auto l = logits_of({std::log(0.5f), std::log(0.3f), std::log(0.2f)});
    counts[s.sample(l.data(), {})]++;
  }
  EXPECT_EQ(counts[2], 0);
  EXPECT_NEAR(counts[0] / double(n), 0.625, 0.015);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.5f;  // keeps p >= 0.5 * p_max: token 1 (0.3/0.5 = 0.6) stays, token 2 (0.4) goes
  Sampler s(p, 3);
  for (int i = 0; i < 2000; ++i) {
    auto l = logits_of({std::log(0.5f), std::log(0.3f), std::log(0.2f)});
    EXPECT_NE(s.sample(l.data(), {}), 2);
  }
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  SamplingParams p;
  p.temperature = 0;
  p.repeat_penalty = 2.0f;
  Sampler s(p, 3);
  auto l = logits_of({3.0f, 2.0f, -1.0f});
  const int32_t hist[] = {0, 2, 0};
  EXPECT_EQ(s.sample(l.data(), hist), 1);  // 3 -> 1.5 < 2
  EXPECT_FLOAT_EQ(l[0], 1.5f);             // penalised once although seen twice
  EXPECT_FLOAT_EQ(l[2], -2.0f);
}

TEST(Sampler, PresencePenaltySubtractsOnce) {
  SamplingParams p;
  p.temperature = 0;
  p.presence_penalty = 1.5f;
  Sampler s(p, 2);
  auto l = logits_of({1.0f, 0.0f});
  const int32_t hist[] = {0, 0, 0};
  EXPECT_EQ(s.sample(l.data(), hist), 1);
  EXPECT_FLOAT_EQ(l[0], -0.5f);
}

TEST(Sampler, FrequencyPenaltyCountsEveryOccurrence) {
  SamplingParams p;
  p.temperature = 0;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  Sampler s(p, 3);
  auto l = logits_of({2.0f, 1.0f, 0.5f});
  const int32_t hist[] = {0, 1, 0, 0};
  EXPECT_EQ(s.sample(l.data(), hist), 2);
  EXPECT_FLOAT_EQ(l[0], 2.0f - 0.25f - 3 * 0.5f);  // three occurrences
  EXPECT_FLOAT_EQ(l[1], 1.0f - 0.25f - 0.5f);
  EXPECT_FLOAT_EQ(l[2], 0.5f);
  // The counts do not leak into the next call.
  auto m = logits_of({2.0f, 1.0f, 0.5f});
  const int32_t one[] = {1};
  EXPECT_EQ(s.sample(m.data(), one), 0);
  EXPECT_FLOAT_EQ(m[0], 2.0f);
  EXPECT_FLOAT_EQ(m[1], 0.25f);
}

TEST(Sampler, RejectsNonFiniteParameters) {
  SamplingParams p;
  p.temperature = NAN;
  EXPECT_THROW(Sampler(p, 3), Error);
  SamplingParams q;
  q.repeat_penalty = 0;
  EXPECT_THROW(Sampler(q, 3), Error);
}

}  // namespace
}  // namespace reel
