// Qwen3.5 text decoder (Gated DeltaNet + gated full attention) against transformers: logits at
// every position for whole-prompt prefill, token-by-token decode and prefill in pieces (the
// recurrent and conv states carried across calls), and 64 greedy tokens. Fixtures written by
// tools/reference/make_qwen35_fixtures.py (format: tools/reference/README.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "../gguf/gguf_builder.h"
#include "common/error.h"
#include "fixtures.h"
#include "gguf/gguf.h"
#include "model/qwen35_text.h"
#include "ops/ops.h"

namespace reel {
namespace {

using nlohmann::json;

using test::load_reference;
using Loaded = test::Loaded<Qwen35Text>;
Loaded load_model(const std::string& gguf_name) {
  return test::load_model<Qwen35Text>(gguf_name);
}

// One sequence (f32 KV cache: the logits are compared to 1e-3), with names for its KV cache and
// recurrent state.
struct Sequence {
  Sequence(const Qwen35Config& c, int n_ctx) : hybrid(c, n_ctx, KvType::F32) {}
  HybridState hybrid;
  KvCache& kv = hybrid.kv;
  DeltaNetState& state = hybrid.recurrent;
};

// All-position logits of a prompt ([n][n_vocab]), fed in calls of n_batch tokens.
std::vector<float> run_prompt(const Qwen35Text& m, const std::vector<int32_t>& ids,
                              ops::Context& ctx, int n_batch) {
  const int n = static_cast<int>(ids.size());
  const int V = m.config().text.n_vocab;
  Sequence seq(m.config(), n + 1);
  Qwen35Scratch scratch(m.config(), n_batch);
  std::vector<float> logits(size_t(n) * V);
  for (int i = 0; i < n; i += n_batch) {
    TextBatch b;
    b.n = std::min(n_batch, n - i);
    b.ids = ids.data() + i;
    m.forward(seq.hybrid, b, scratch, logits.data() + size_t(i) * V, b.n, ctx);
  }
  EXPECT_EQ(seq.state.n_past(), n);
  EXPECT_EQ(seq.kv.n_past(), n);
  return logits;
}

double log_sum_exp(const float* x, int n) {
  const float mx = *std::max_element(x, x + n);
  double s = 0;
  for (int i = 0; i < n; ++i) s += std::exp(double(x[i]) - mx);
  return mx + std::log(s);
}

bool float_weights(const std::string& name) {
  return name.find("f32") != std::string::npos || name.find("f16") != std::string::npos;
}

// Compares every position of every case. Float weights (F32, F16 files: the reference ran on
// the same values in float32): what differs is the order of summation (SIMD dot products vs
// BLAS, the chunked delta rule's chunk boundaries vs transformers' 64-token chunks from the
// prompt start, the recurrence vs the chunked form, exp/log1p of different libms), measured at
// most 1.6e-4 on logits of order 1-10 (mean ~3e-6); 1e-3, the bound the Qwen3-VL parity tests
// use, leaves a factor of six (mapping value heads to key heads in HF's grouped order instead of
// the file's tiled order fails it on q35-a).
// Quantized weights: activations are quantized to 8 bits per block in the fast kernels (~1/254
// relative per product): a mean error measured at 6e-4 (decode), bounded by 0.02, and top-1
// agreement where the top-1/top-2 gap exceeds 0.05, as for Qwen3-VL's q8_0 fixtures.
void check_logits(const std::string& name, int n_batch) {
  const json ref = load_reference(name);
  ASSERT_FALSE(ref.is_null());
  Loaded l = load_model(ref["model"].get<std::string>());
  const int V = l.model->config().text.n_vocab;
  ops::Context ctx(2);
  ctx.reserve(160, 4096);
  const auto& cols = ref["columns"];
  const bool exact = float_weights(name);
  int checked = 0, agree = 0;
  double abs_sum = 0, worst = 0;
  long abs_n = 0;
  ASSERT_GE(ref["cases"].size(), 5u);
  bool saw_long = false;
  for (const auto& c : ref["cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    saw_long |= ids.size() > 64;  // more than one chunk of the chunked delta rule
    const int nb = n_batch > 0 ? n_batch : static_cast<int>(ids.size());
    const auto logits = run_prompt(*l.model, ids, ctx, nb);
    for (size_t pos = 0; pos < ids.size(); ++pos) {
      const float* row = logits.data() + pos * V;
      double max_diff = 0;
      for (size_t k = 0; k < cols.size(); ++k) {
        const double d = std::abs(row[cols[k].get<int>()] - c["logits"][pos][k].get<double>());
        max_diff = std::max(max_diff, d);
        abs_sum += d;
        ++abs_n;
      }
      worst = std::max(worst, max_diff);
      const auto& s = c["stats"][pos];
      const int argmax = static_cast<int>(std::max_element(row, row + V) - row);
      const double gap = s["top2_gap"].get<double>();
      if (exact) {
        EXPECT_LE(max_diff, 1e-3) << c["name"] << " position " << pos;
        EXPECT_NEAR(log_sum_exp(row, V), s["lse"].get<double>(), 1e-3) << "full-row logsumexp";
        if (gap > 1e-3) {
          EXPECT_EQ(argmax, s["argmax"].get<int>()) << c["name"] << " " << pos;
        }
      } else if (gap > 0.05) {
        ++checked;
        agree += argmax == s["argmax"].get<int>();
      }
    }
  }
  EXPECT_TRUE(saw_long) << "no case spans more than one delta-rule chunk";
  std::printf("%s, %d tokens per call: logits max |diff| %.2e, mean %.2e\n", name.c_str(), n_batch,
              worst, abs_n ? abs_sum / abs_n : 0.0);
  if (!exact) {
    ASSERT_GT(abs_n, 0);
    EXPECT_LE(abs_sum / abs_n, 0.02) << "mean abs logit difference";
    ASSERT_GT(checked, 20) << "too few decisive positions for the top-1 check to mean anything";
    EXPECT_GE(double(agree) / checked, 0.98) << agree << " of " << checked;
  }
}

class Qwen35Parity : public ::testing::TestWithParam<const char*> {};

// The whole prompt in one call: the chunked delta rule over the full prompt.
TEST_P(Qwen35Parity, WholePromptPrefillMatchesTransformers) {
  check_logits(GetParam(), 0);
}

// One token per call: the recurrent delta rule and the conv window carried token to token.
TEST_P(Qwen35Parity, TokenByTokenDecodeMatchesTransformers) {
  check_logits(GetParam(), 1);
}

// Prefill in pieces of 7 and of 37 tokens: states carried across calls, chunks that start
// anywhere in the prompt, and calls whose conv window spans the previous call's tokens.
TEST_P(Qwen35Parity, PrefillInPiecesMatchesTransformers) {
  check_logits(GetParam(), 7);
  check_logits(GetParam(), 37);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Qwen35Parity,
                         ::testing::Values("q35-a-f32", "q35-a-q8_0", "q35-b-f16"),
                         test::param_name);

// 64 greedy tokens identical to transformers' greedy generation (its decode is the recurrent
// form with a KV cache, as Reel's).
class Qwen35Greedy : public ::testing::TestWithParam<const char*> {};

TEST_P(Qwen35Greedy, SixtyFourTokensIdentical) {
  const json ref = load_reference(GetParam());
  ASSERT_FALSE(ref.is_null());
  Loaded l = load_model(ref["model"].get<std::string>());
  const int V = l.model->config().text.n_vocab;
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
    Sequence seq(l.model->config(), int(ids.size() + want.size()) + 1);
    Qwen35Scratch scratch(l.model->config(), n_batch);
    EXPECT_EQ(test::greedy_tokens(*l.model, seq.hybrid, scratch, ids, want.size(), n_batch, V, ctx),
              want)
        << c["name"];
  }
  EXPECT_GT(cases_with_greedy, 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Qwen35Greedy, ::testing::Values("q35-a-f32", "q35-b-f16"),
                         test::param_name);

TEST(Qwen35Load, ReadsTheConvertersLayout) {
  Loaded a = load_model("q35-a-f32.gguf");
  const Qwen35Config& c = a.model->config();
  EXPECT_EQ(c.text.n_layer, 4);
  EXPECT_EQ(c.full_attention, (std::vector<uint8_t>{0, 0, 0, 1}));
  EXPECT_EQ(c.n_full, 1);
  EXPECT_EQ(c.n_linear, 3);
  EXPECT_EQ(c.text.head_dim, 64);
  EXPECT_EQ(c.rope_dim, 16);
  EXPECT_EQ(c.n_k_heads, 2);
  EXPECT_EQ(c.n_v_heads, 4);
  EXPECT_EQ(c.k_head_dim, 16);
  EXPECT_EQ(c.v_head_dim, 16);
  EXPECT_EQ(c.conv_kernel, 4);
  EXPECT_TRUE(c.text.tied_output);
  EXPECT_EQ(c.kv_config().n_layer, 1);  // keys and values only for the full-attention layer

  Loaded b = load_model("q35-b-f16.gguf");
  EXPECT_EQ(b.model->config().full_attention, (std::vector<uint8_t>{0, 0, 1, 0, 0, 1}));
  EXPECT_FALSE(b.model->config().text.tied_output);
  EXPECT_EQ(b.model->config().v_head_dim, 32);
}

std::string load_error(const char* arch) {
  gguf::testing::Builder g;
  g.header(0, 1).kv_str("general.architecture", arch);
  auto f = gguf::File::from_memory(g.bytes().data(), g.bytes().size(), "model.gguf");
  try {
    Qwen35Text::load(*f);
  } catch (const Unsupported& e) {
    return e.what();
  }
  return "no Unsupported error";
}

TEST(Qwen35Load, MoeAndUnknownArchitecturesAreRefusedWithOneLine) {
  const std::string moe = load_error("qwen35moe");
  EXPECT_NE(moe.find("qwen35moe"), std::string::npos) << moe;
  EXPECT_NE(moe.find("not supported yet"), std::string::npos) << moe;
  const std::string other = load_error("mamba2");
  EXPECT_NE(other.find("'mamba2'"), std::string::npos) << other;
  EXPECT_EQ(other.find('\n'), std::string::npos);
}

TEST(Qwen35Load, AQwen3VlFileIsNotTakenForQwen35) {
  auto f = gguf::File::open(std::string(REEL_FIXTURE_DIR "/models/") + "tiny-a-f32.gguf");
  EXPECT_THROW(Qwen35Text::load(*f), Unsupported);  // a qwen3vl file is not a qwen35 one
}

// A cancelled or failed call leaves the sequence as it was: the next call gives the logits it
// would have given without the failure.
TEST(Qwen35State, CancelledCallLeavesNoTrace) {
  Loaded l = load_model("q35-a-f32.gguf");
  const auto& cfg = l.model->config();
  const int V = cfg.text.n_vocab;
  ops::Context ctx(1);
  ctx.reserve(64, 4096);
  const std::vector<int32_t> ids = {9707, 11, 1879, 0, 576, 3974, 13876};
  Sequence a(cfg, 32), b(cfg, 32);
  Qwen35Scratch scratch(cfg, 8);
  TextBatch first{};
  first.n = 4;
  first.ids = ids.data();
  l.model->forward(a.hybrid, first, scratch, nullptr, 0, ctx);
  l.model->forward(b.hybrid, first, scratch, nullptr, 0, ctx);
  TextBatch rest{};
  rest.n = 3;
  rest.ids = ids.data() + 4;
  std::atomic<bool> cancel{true};
  ctx.set_cancel_flag(&cancel);
  EXPECT_THROW(l.model->forward(b.hybrid, rest, scratch, nullptr, 0, ctx), Cancelled);
  ctx.set_cancel_flag(nullptr);
  EXPECT_EQ(b.state.n_past(), 4);
  EXPECT_EQ(b.kv.n_past(), 4);
  std::vector<float> la(3 * V), lb(3 * V);
  l.model->forward(a.hybrid, rest, scratch, la.data(), 3, ctx);
  l.model->forward(b.hybrid, rest, scratch, lb.data(), 3, ctx);
  EXPECT_EQ(la, lb);
  // Clearing starts the sequence over; rewinding to the middle is refused (needs snapshots).
  EXPECT_THROW(a.state.truncate(3), Unsupported);
  a.state.truncate(0);
  a.kv.truncate(0);
  std::vector<float> again(3 * V);
  l.model->forward(a.hybrid, first, scratch, nullptr, 0, ctx);
  l.model->forward(a.hybrid, rest, scratch, again.data(), 3, ctx);
  EXPECT_EQ(again, lb);
}

void feed(const Qwen35Text& m, Sequence& seq, const int32_t* ids, int n, Qwen35Scratch& scratch,
          ops::Context& ctx) {
  TextBatch b{};
  b.n = n;
  b.ids = ids;
  m.forward(seq.hybrid, b, scratch, nullptr, 0, ctx);
}

// Largest |batched - alone| over two steps in which three sequences at different positions share
// one forward pass: step 1 has two of them decoding one token and the third prefilling 70 (more
// than one 64-token chunk of the chunked delta rule), step 2 all three decoding. Alone: the same
// spans, one sequence per call. Also counts the logits compared.
struct BatchDiff {
  double max_diff = 0, max_abs = 0;
  size_t compared = 0;
};

BatchDiff batched_against_alone(const std::string& model_name) {
  Loaded l = load_model(model_name);
  const Qwen35Text& m = *l.model;
  const Qwen35Config& cfg = m.config();
  const int V = cfg.text.n_vocab;
  ops::Context ctx(2);
  ctx.reserve(160, 4096);
  std::vector<std::vector<int32_t>> ids(3);
  for (int s = 0; s < 3; ++s)
    for (int i = 0; i < 90; ++i) ids[s].push_back(100 + (s * 7919 + i * 104729) % 5000);
  const int prefix[3] = {9, 23, 4};  // different positions (and recurrent states)
  const int step1[3] = {1, 1, 70};
  std::vector<std::unique_ptr<Sequence>> alone, together;
  Qwen35Scratch scratch(cfg, 80);
  for (int s = 0; s < 3; ++s) {
    alone.push_back(std::make_unique<Sequence>(cfg, 128));
    together.push_back(std::make_unique<Sequence>(cfg, 128));
    feed(m, *alone[s], ids[s].data(), prefix[s], scratch, ctx);
    feed(m, *together[s], ids[s].data(), prefix[s], scratch, ctx);
  }
  BatchDiff d;
  int offset[3] = {prefix[0], prefix[1], prefix[2]};
  for (const int* step : {step1, (const int*)nullptr}) {
    int n[3], n_logits[3], rows = 0, n_out = 0;
    std::vector<int32_t> batch_ids;
    for (int s = 0; s < 3; ++s) {
      n[s] = step ? step[s] : 1;
      n_logits[s] = s == 2 ? n[s] : 1;  // the prefill wants every position, the decoders one
      batch_ids.insert(batch_ids.end(), ids[s].begin() + offset[s],
                       ids[s].begin() + offset[s] + n[s]);
      rows += n[s];
      n_out += n_logits[s];
    }
    std::vector<float> want(size_t(n_out) * V), got(size_t(n_out) * V);
    size_t out = 0;
    for (int s = 0; s < 3; ++s) {
      TextBatch b{};
      b.n = n[s];
      b.ids = ids[s].data() + offset[s];
      m.forward(alone[s]->hybrid, b, scratch, want.data() + out * V, n_logits[s], ctx);
      out += n_logits[s];
    }
    const DecodeSpan seqs[3] = {{&together[0]->hybrid, n[0], n_logits[0]},
                                {&together[1]->hybrid, n[1], n_logits[1]},
                                {&together[2]->hybrid, n[2], n_logits[2]}};
    TextBatch b{};
    b.n = rows;
    b.ids = batch_ids.data();
    m.forward(std::span<const DecodeSpan>(seqs), b, scratch, got.data(), ctx);
    for (size_t k = 0; k < want.size(); ++k) {
      d.max_diff = std::max(d.max_diff, double(std::abs(got[k] - want[k])));
      d.max_abs = std::max(d.max_abs, double(std::abs(want[k])));
    }
    d.compared += want.size();
    for (int s = 0; s < 3; ++s) {
      offset[s] += n[s];
      EXPECT_EQ(together[s]->kv.n_past(), offset[s]);
      EXPECT_EQ(together[s]->state.n_past(), offset[s]);
    }
  }
  return d;
}

// Rows of three sequences in one pass give what each gives alone. The recurrent part (conv,
// delta rule) and attention run per sequence on its own rows and state, so any routing mistake
// (a sequence's rows mixed with another's state, positions or cache) moves logits by O(1).
// What may differ is the matmul: it picks its kernel by the batch's row count (see
// src/ops/matmul.cpp), and a decode row alone (one row: GEMV) lands in a 72-row batch (f32
// panels). F32 weights: the same products summed in another order, ~1e-6 relative; bound 1e-4
// of the largest logit, as the Qwen3-VL scheduler test. Q8_0: the lone decode row meets
// activations quantized to int16 per block (kernels.h: ~1e-4 relative) where the batch takes
// unquantized f32 panels; bound 1e-3 of the largest logit, as for Qwen3-VL's Q8_0 batches.
TEST(Qwen35Batch, SequencesInOnePassEqualEachAlone) {
  for (const char* name : {"q35-a-f32.gguf", "q35-a-q8_0.gguf"}) {
    const BatchDiff d = batched_against_alone(name);
    std::printf("%s: |batched - alone| <= %.3g over %zu logits (largest |logit| %.3g)\n", name,
                d.max_diff, d.compared, d.max_abs);
    const double bound = std::string(name).find("f32") != std::string::npos ? 1e-4 : 1e-3;
    EXPECT_GT(d.compared, 0u);
    EXPECT_LE(d.max_diff, bound * std::max(1.0, d.max_abs)) << name;
  }
}

TEST(Qwen35Batch, ASequenceTwiceOrUncoveredRowsAreRefused) {
  Loaded l = load_model("q35-a-f32.gguf");
  const auto& cfg = l.model->config();
  ops::Context ctx(1);
  ctx.reserve(64, 4096);
  Sequence a(cfg, 16), b(cfg, 16);
  Qwen35Scratch scratch(cfg, 8);
  const int32_t ids[2] = {9707, 11};
  TextBatch batch{};
  batch.n = 2;
  batch.ids = ids;
  const DecodeSpan twice[2] = {{&a.hybrid, 1, 0}, {&a.hybrid, 1, 0}};
  EXPECT_THROW(l.model->forward(std::span<const DecodeSpan>(twice), batch, scratch, nullptr, ctx),
               InternalError);
  const DecodeSpan short_of_rows[1] = {{&a.hybrid, 1, 0}};
  EXPECT_THROW(
      l.model->forward(std::span<const DecodeSpan>(short_of_rows), batch, scratch, nullptr, ctx),
      InternalError);
  EXPECT_EQ(a.kv.n_past(), 0);  // refused before anything ran
  EXPECT_EQ(a.state.n_past(), 0);
}

// Checkpoints reuse the buffers of the one they evict and of those a truncation drops: once
// kMaxCheckpoints exist, taking more allocates nothing (the snapshots' storage stays the same).
TEST(Qwen35State, CheckpointsReuseTheirBuffers) {
  Loaded l = load_model("q35-a-f32.gguf");
  const auto& cfg = l.model->config();
  ops::Context ctx(1);
  ctx.reserve(64, 4096);
  HybridState state(cfg, 64, KvType::F32);
  Qwen35Scratch scratch(cfg, 4);
  const int32_t ids[4] = {9707, 11, 1879, 0};
  const auto step = [&] {
    TextBatch b{};
    b.n = 2;
    b.ids = ids;
    l.model->forward(state, b, scratch, nullptr, 0, ctx);
    state.checkpoint();
  };
  const auto buffers = [&] {
    std::vector<const float*> p;
    for (const auto& c : state.checkpoints()) p.insert(p.end(), {c.conv.data(), c.ssm.data()});
    std::sort(p.begin(), p.end());
    return p;
  };
  for (int i = 0; i < HybridState::kMaxCheckpoints; ++i) step();
  const auto first = buffers();
  ASSERT_EQ(first.size(), size_t(2 * HybridState::kMaxCheckpoints));
  for (int i = 0; i < 3; ++i) step();
  EXPECT_EQ(buffers(), first);
  std::vector<int> positions;
  for (const auto& c : state.checkpoints()) positions.push_back(c.n_past);
  EXPECT_EQ(positions, (std::vector<int>{2, 10, 12, 14}));  // the first and the latest three
  // Back to the second checkpoint: the later two are dropped, then taken again.
  state.truncate(10);
  EXPECT_EQ(state.n_checkpoints(), 2);
  step();
  step();
  EXPECT_EQ(buffers(), first);
  EXPECT_EQ(state.n_checkpoints(), 4);
}

}  // namespace
}  // namespace reel
