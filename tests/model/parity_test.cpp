// Logit parity of the text decoder against transformers (fixtures written by
// tools/reference/make_fixtures.py: see tools/reference/README.md for the format).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fixtures.h"
#include "gguf/gguf.h"
#include "model/qwen3vl_text.h"
#include "ops/ops.h"
#include "tokenizer/tokenizer.h"

namespace reel {
namespace {

using nlohmann::json;

using test::load_reference;
using Loaded = test::Loaded<Qwen3VLText>;
Loaded load_model(const std::string& gguf_name) {
  return test::load_model<Qwen3VLText>(gguf_name);
}

// All-position logits of a prompt: [n][n_vocab].
std::vector<float> run_prompt(const Qwen3VLText& m, const std::vector<int32_t>& ids,
                              ops::Context& ctx, int n_batch) {
  const int n = static_cast<int>(ids.size());
  const int V = m.config().n_vocab;
  // f32 keys and values: these logits are compared with the reference to 1e-3 or tighter.
  KvState kv(m.config(), n + 1, KvType::F32);
  TextScratch scratch(m.config(), n_batch);
  std::vector<float> logits(size_t(n) * V);
  for (int i = 0; i < n; i += n_batch) {
    TextBatch b;
    b.n = std::min(n_batch, n - i);
    b.ids = ids.data() + i;
    m.forward(kv, b, scratch, logits.data() + size_t(i) * V, b.n, ctx);
  }
  return logits;
}

double log_sum_exp(const float* x, int n) {
  const float mx = *std::max_element(x, x + n);
  double s = 0;
  for (int i = 0; i < n; ++i) s += std::exp(double(x[i]) - mx);
  return mx + std::log(s);
}

struct Tolerance {
  bool exact;  // weights used as stored in f32 arithmetic (F32, F16 files)
};

void check_case(const json& c, const json& columns, const std::vector<float>& logits, int V,
                Tolerance tol, int& top1_checked, int& top1_agree, double& abs_sum, long& abs_n) {
  const auto& ref = c["logits"];
  const auto& stats = c["stats"];
  const size_t n = c["ids"].size();
  ASSERT_EQ(ref.size(), n);
  for (size_t pos = 0; pos < n; ++pos) {
    const float* row = logits.data() + pos * V;
    double max_diff = 0;
    for (size_t k = 0; k < columns.size(); ++k) {
      const double d = std::abs(row[columns[k].get<int>()] - ref[pos][k].get<double>());
      max_diff = std::max(max_diff, d);
      abs_sum += d;
      ++abs_n;
    }
    const auto& s = stats[pos];
    const int my_argmax = static_cast<int>(std::max_element(row, row + V) - row);
    const double gap = s["top2_gap"].get<double>();
    if (tol.exact) {
      // Float32 weights and float32 arithmetic on both sides: what differs is only the order
      // of summation (SIMD vs BLAS), worth ~1e-6 relative on logits of order 1-10. 1e-3 is
      // the bound and leaves two orders of magnitude of margin.
      EXPECT_LE(max_diff, 1e-3) << c["name"] << " position " << pos;
      EXPECT_NEAR(log_sum_exp(row, V), s["lse"].get<double>(), 1e-3) << "full-row logsumexp";
      EXPECT_NEAR(*std::max_element(row, row + V), s["max"].get<double>(), 1e-3);
      if (gap > 1e-3) {
        EXPECT_EQ(my_argmax, s["argmax"].get<int>()) << c["name"] << " " << pos;
      }
    } else if (gap > 0.05) {
      ++top1_checked;
      top1_agree += my_argmax == s["argmax"].get<int>();
    }
  }
}

class Parity : public ::testing::TestWithParam<const char*> {};

TEST_P(Parity, LogitsMatchTransformersAtEveryPosition) {
  const std::string name = GetParam();
  const json ref = load_reference(name);
  ASSERT_FALSE(ref.is_null());
  Loaded l = load_model(ref["model"].get<std::string>());
  const int V = l.model->config().n_vocab;
  ops::Context ctx(2);
  ctx.reserve(64, 4096);
  const Tolerance tol{name.find("f32") != std::string::npos ||
                      name.find("f16") != std::string::npos};
  int checked = 0, agree = 0;
  double abs_sum = 0;
  long abs_n = 0;
  ASSERT_GE(ref["cases"].size(), 5u);
  for (const auto& c : ref["cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    // Prefill in chunks of 7 exercises the KV cache across calls as well as within one.
    const auto logits = run_prompt(*l.model, ids, ctx, 7);
    check_case(c, ref["columns"], logits, V, tol, checked, agree, abs_sum, abs_n);
  }
  if (!tol.exact) {
    // Quantized weights: the reference ran on the same dequantized weights, so what differs is
    // that the fast kernels quantize activations to 8 bits per block (relative error ~1/254
    // per product, partly cancelling over a dot product). On logits of order 1-10 that is a
    // mean error of a few 1e-3; 0.02 allows for it, and a top-1 flip needs the error to exceed
    // half the top-1/top-2 gap, which is why only gaps > 0.05 are counted.
    ASSERT_GT(abs_n, 0);
    EXPECT_LE(abs_sum / abs_n, 0.02) << "mean abs logit difference";
    ASSERT_GT(checked, 20) << "too few decisive positions for the top-1 check to mean anything";
    EXPECT_GE(double(agree) / checked, 0.98) << agree << " of " << checked;
  }
}

// The same logits computed one token at a time: the decode path (one activation row per
// matmul) has kernels of its own, and generation runs on it.
TEST_P(Parity, TokenByTokenDecodeMatchesToo) {
  const std::string name = GetParam();
  const json ref = load_reference(name);
  ASSERT_FALSE(ref.is_null());
  Loaded l = load_model(ref["model"].get<std::string>());
  const int V = l.model->config().n_vocab;
  ops::Context ctx(2);
  ctx.reserve(64, 4096);
  double abs_sum = 0, max_diff = 0;
  long abs_n = 0;
  const auto& cols = ref["columns"];
  for (const auto& c : ref["cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    const auto logits = run_prompt(*l.model, ids, ctx, 1);
    for (size_t p = 0; p < ids.size(); ++p)
      for (size_t k = 0; k < cols.size(); ++k) {
        const double d =
            std::abs(logits[p * V + cols[k].get<int>()] - c["logits"][p][k].get<double>());
        abs_sum += d;
        max_diff = std::max(max_diff, d);
        ++abs_n;
      }
  }
  // Float weights: f32 arithmetic on both sides (see above), 1e-3 everywhere. Quantized
  // weights: int16 activations (rounding error <= amax/32766 per block, ~1e-4 relative) keep
  // the mean well under the 0.02 bound.
  if (name.find("f32") != std::string::npos || name.find("f16") != std::string::npos)
    EXPECT_LE(max_diff, 1e-3);
  else
    EXPECT_LE(abs_sum / abs_n, 0.02);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Parity,
                         ::testing::Values("tiny-a-f32", "tiny-a-f16", "tiny-a-q8_0",
                                           "tiny-a-q4_k_m", "tiny-b-f32", "tiny-b-q8_0"),
                         test::param_name);

// 64 greedy tokens must be identical to transformers' greedy generation.
class Greedy : public ::testing::TestWithParam<const char*> {};

TEST_P(Greedy, SixtyFourTokensIdentical) {
  const json ref = load_reference(GetParam());
  ASSERT_FALSE(ref.is_null());
  Loaded l = load_model(ref["model"].get<std::string>());
  const int V = l.model->config().n_vocab;
  ops::Context ctx(2);
  ctx.reserve(64, 4096);
  int cases_with_greedy = 0;
  for (const auto& c : ref["cases"]) {
    if (!c.contains("greedy")) continue;
    ++cases_with_greedy;
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    const auto want = c["greedy"].get<std::vector<int32_t>>();
    ASSERT_EQ(want.size(), 64u);
    const int n_batch = 64;
    KvState kv(l.model->config(), int(ids.size() + want.size()) + 1, KvType::F32);
    TextScratch scratch(l.model->config(), n_batch);
    EXPECT_EQ(test::greedy_tokens(*l.model, kv, scratch, ids, want.size(), n_batch, V, ctx), want)
        << c["name"];
  }
  EXPECT_GT(cases_with_greedy, 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Greedy, ::testing::Values("tiny-a-f32", "tiny-b-f32"),
                         test::param_name);

}  // namespace
}  // namespace reel

namespace reel {
namespace {

// The prompts of the reference fixtures, tokenized by Reel from the fixture GGUF's own
// tokenizer metadata, give the ids transformers fed the model.
TEST(FixtureTokenization, ReelTokenizesThePromptsAsTransformers) {
  for (const char* name : {"tiny-a-f32", "tiny-b-f32"}) {
    const nlohmann::json ref = load_reference(name);
    ASSERT_FALSE(ref.is_null());
    auto file = gguf::File::open(std::string(REEL_FIXTURE_DIR "/models/") +
                                 ref["model"].get<std::string>());
    auto tok = Tokenizer::from_gguf(*file);
    for (const auto& c : ref["cases"])
      EXPECT_EQ(tok->encode(c["text"].get<std::string>(), true),
                c["ids"].get<std::vector<int32_t>>())
          << c["name"];
  }
}

}  // namespace
}  // namespace reel

namespace reel {
namespace {

// A batch is checked before anything runs: a sequence twice, spans that do not cover the rows,
// and a span past its cache's room are refused, and no cache moves.
TEST(Qwen3VLBatch, BadSpansAreRefusedBeforeAnythingRuns) {
  Loaded l = load_model("tiny-a-f32.gguf");
  ops::Context ctx(1);
  ctx.reserve(64, 4096);
  KvState a(l.model->config(), 16, KvType::F32), tiny(l.model->config(), 1, KvType::F32);
  TextScratch scratch(l.model->config(), 8);
  const int32_t ids[2] = {9707, 11};
  TextBatch batch{};
  batch.n = 2;
  batch.ids = ids;
  auto forward = [&](std::span<const DecodeSpan> seqs) {
    l.model->forward(seqs, batch, scratch, nullptr, ctx);
  };
  const DecodeSpan twice[2] = {{&a, 1, 0}, {&a, 1, 0}};
  EXPECT_THROW(forward(twice), InternalError);
  const DecodeSpan short_of_rows[1] = {{&a, 1, 0}};
  EXPECT_THROW(forward(short_of_rows), InternalError);
  const DecodeSpan too_many_logits[1] = {{&a, 2, 3}};
  EXPECT_THROW(forward(too_many_logits), InternalError);
  const DecodeSpan past_the_room[1] = {{&tiny, 2, 0}};
  EXPECT_THROW(forward(past_the_room), ContextFull);
  EXPECT_EQ(a.n_past(), 0);
  EXPECT_EQ(tiny.n_past(), 0);
  const DecodeSpan fine[1] = {{&a, 2, 1}};
  forward(fine);  // the same batch, well described, runs
  EXPECT_EQ(a.n_past(), 2);
}

}  // namespace
}  // namespace reel
