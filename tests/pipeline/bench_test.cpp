// `reel bench`'s measurements (run_bench): one prefill and one decode row per prompt length and
// parallel level, in order, with the depth each decode ran at; bad sizes refused.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "common/error.h"
#include "pipeline/bench.h"
#include "pipeline/executor.h"
#include "pipeline/model.h"

namespace reel {
namespace {

const std::string kModelQ8 = REEL_FIXTURE_DIR "/models/tiny-a-q8_0.gguf";

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
        SCOPED_TRACE(std::string(what) + " n_prompt=" + std::to_string(n) + " parallel=" +
                     std::to_string(p));
        EXPECT_EQ(m.what, what);
        EXPECT_EQ(m.n_prompt, n);
        EXPECT_EQ(m.parallel, p);
        EXPECT_EQ(m.depth, m.what == "decode" ? n : 0);
        EXPECT_TRUE(std::isfinite(m.tokens_per_s));
        EXPECT_GT(m.tokens_per_s, 0);
      }
  EXPECT_GT(r.bandwidth_gbs, 0);
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
}

}  // namespace
}  // namespace reel
