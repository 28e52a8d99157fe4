// `reel bench`'s measurements (run_bench): one prefill and one decode row per prompt length and
// parallel level, in order, with the depth each decode ran at; with depths (-d), decode rows at
// exactly those depths instead; the roofline fraction; bad sizes refused.
#include "pipeline/bench.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "common/error.h"
#include "pipeline/executor.h"
#include "pipeline/model.h"

namespace reel {
namespace {

const std::string kModelQ8 = REEL_FIXTURE_DIR "/models/tiny-a-q8_0.gguf";

// The worked examples' machine and model: 10 GB/s, 1 GB of weights, 1 MB of KV per position,
// 64 decode steps.
BenchResult round_numbers() {
  BenchResult r;
  r.bandwidth_gbs = 10;
  r.weight_bytes_per_token = 1e9;
  r.kv_bytes_per_position = 1e6;
  r.n_decode = 64;
  return r;
}

TEST(Bench, OneRowPairPerPromptLengthAndParallelLevel) {
  const auto model = Model::load(kModelQ8, "");
  // A batch of 16 tokens: the 40-token prompt runs in three forward passes over a growing cache.
  Executor exec(*model, ExecutorOptions{2, 16});
  BenchOptions o;
  o.n_prompts = {5, 40};
  o.n_decode = 3;
  o.repetitions = 1;
  o.parallel = {1, 2};
  const BenchResult r = run_bench(*model, exec, o);
  ASSERT_EQ(r.rows.size(), 8u);
  size_t at = 0;
  for (int p : o.parallel)
    for (int n : o.n_prompts)
      for (const char* what : {"prefill", "decode"}) {
        const BenchMeasurement& m = r.rows[at++];
        SCOPED_TRACE(std::string(what) + " n_prompt=" + std::to_string(n) +
                     " parallel=" + std::to_string(p));
        EXPECT_EQ(m.what, what);
        EXPECT_EQ(m.n_prompt, n);
        EXPECT_EQ(m.parallel, p);
        EXPECT_EQ(m.depth, m.what == "decode" ? n : 0);
        EXPECT_TRUE(std::isfinite(m.tokens_per_s));
        EXPECT_GT(m.tokens_per_s, 0);
      }
  EXPECT_GT(r.bandwidth_gbs, 0);
}

// The decode roofline deeper in a context: weights once per step, each sequence's keys and
// values once. Worked by hand for round numbers: 1 GB of weights, 1 MB of KV per position,
// 10 GB/s, 64 decode steps after 4096 tokens (on average 4128 positions read).
TEST(Bench, RooflineAtDepthCountsEachSequencesKeysAndValues) {
  const BenchResult r = round_numbers();
  EXPECT_DOUBLE_EQ(r.roofline_tps(), 10.0);
  EXPECT_DOUBLE_EQ(r.roofline_tps_at(0, 1), 10e9 / (1e9 + 32e6));
  EXPECT_DOUBLE_EQ(r.roofline_tps_at(4096, 1), 10e9 / (1e9 + 4128e6));
  EXPECT_DOUBLE_EQ(r.roofline_tps_at(4096, 2), 2 * 10e9 / (1e9 + 2 * 4128e6));
  // The run fills the per-position size from the model: 2 (keys, values) x layers x KV heads x
  // head_dim x 2 bytes (f16) for the fixture.
  const auto model = Model::load(kModelQ8, "");
  Executor exec(*model, ExecutorOptions{1, 16});
  BenchOptions o;
  o.n_decode = 2;
  o.repetitions = 1;
  o.n_prompts = {4};
  const BenchResult got = run_bench(*model, exec, o);
  const TextConfig& c = model->text_config();
  EXPECT_EQ(got.kv_bytes_per_position, 2.0 * c.n_layer * c.n_head_kv * c.head_dim * 2);
  EXPECT_EQ(got.n_decode, 2);
}

// With -d the decode rows are the depths given, after the prefill rows, independent of the
// prompt lengths: a depth longer than every prompt (30 > 5) must get a context large enough.
TEST(Bench, DecodeRowsAtEachDepthGiven) {
  const auto model = Model::load(kModelQ8, "");
  Executor exec(*model, ExecutorOptions{2, 16});
  BenchOptions o;
  o.n_prompts = {5};
  o.depths = {0, 30, 7};
  o.n_decode = 3;
  o.repetitions = 1;
  o.parallel = {1, 2};
  EXPECT_EQ(bench_context_size(o), 31 + 3 + 1);
  const BenchResult r = run_bench(*model, exec, o);
  ASSERT_EQ(r.rows.size(), 8u);
  size_t at = 0;
  for (int p : o.parallel) {
    const BenchMeasurement& prefill = r.rows[at++];
    EXPECT_EQ(prefill.what, "prefill");
    EXPECT_EQ(prefill.n_prompt, 5);
    EXPECT_EQ(prefill.parallel, p);
    for (int d : o.depths) {
      const BenchMeasurement& m = r.rows[at++];
      SCOPED_TRACE("depth=" + std::to_string(d) + " parallel=" + std::to_string(p));
      EXPECT_EQ(m.what, "decode");
      EXPECT_EQ(m.depth, d);
      EXPECT_EQ(m.n_prompt, d);
      EXPECT_EQ(m.parallel, p);
      EXPECT_TRUE(std::isfinite(m.tokens_per_s));
      EXPECT_GT(m.tokens_per_s, 0);
      // Exactly the ratio, no rounding of its own (the same doubles divided).
      EXPECT_EQ(r.roofline_fraction(m), m.tokens_per_s / r.roofline_tps_at(d, p));
    }
  }
  EXPECT_GT(r.fma_gflops, 0);
}

// The context a run needs: the longest prompt, or the deepest depth plus the token decoded
// from it, then the generated tokens and one spare.
TEST(Bench, ContextSizeCoversPromptsAndDepths) {
  BenchOptions o;
  o.n_prompts = {512, 2048};
  o.n_decode = 64;
  EXPECT_EQ(bench_context_size(o), 2048 + 64 + 1);
  o.depths = {0, 4096};
  EXPECT_EQ(bench_context_size(o), 4097 + 64 + 1);
  o.depths = {0, 100};
  EXPECT_EQ(bench_context_size(o), 2048 + 64 + 1);
}

// Worked by hand: 10 GB/s over 1 GB of weights and 1 MB per position, 64 steps after 4096
// tokens: the bound is 10e9 / (1e9 + 4128e6) tokens/s, and 1.2 tokens/s is that fraction of it.
TEST(Bench, RooflineFractionIsTokensOverTheBoundAtThatDepth) {
  const BenchResult r = round_numbers();
  const BenchMeasurement m{"decode", 4096, 4096, 1, 1.2};
  EXPECT_DOUBLE_EQ(r.roofline_fraction(m), 1.2 * (1e9 + 4128e6) / 10e9);
  const BenchMeasurement two{"decode", 0, 0, 2, 3.0};
  EXPECT_DOUBLE_EQ(r.roofline_fraction(two), 3.0 * (1e9 + 2 * 32e6) / (2 * 10e9));
}

TEST(Bench, RefusesEmptyOrNonPositiveSizes) {
  const auto model = Model::load(kModelQ8, "");
  Executor exec(*model, ExecutorOptions{1, 16});
  BenchOptions o;
  o.n_prompts = {};
  EXPECT_THROW(run_bench(*model, exec, o), Error);
  o.n_prompts = {8, 0};
  EXPECT_THROW(run_bench(*model, exec, o), Error);
  o.n_prompts = {8};
  o.n_decode = 0;
  EXPECT_THROW(run_bench(*model, exec, o), Error);
  o.n_decode = 2;
  o.depths = {0, -1};
  EXPECT_THROW(run_bench(*model, exec, o), Error);
  o.depths = {0};
  o.parallel = {0};
  EXPECT_THROW(run_bench(*model, exec, o), Error);
}

}  // namespace
}  // namespace reel
