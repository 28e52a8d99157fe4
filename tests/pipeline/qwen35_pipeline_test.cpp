// Qwen3.5 text models through the pipeline: the loader picks the hybrid decoder, the scheduler
// runs several sequences (each with its recurrent state), and prefix reuse keeps a whole cached
// conversation or starts over (a recurrent state cannot be rewound). Greedy answers equal
// transformers' (tests/fixtures/reference/q35-*.json, see tools/reference/README.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "batch_outcome.h"
#include "common/error.h"
#include "pipeline/chat_template.h"
#include "pipeline/executor.h"
#include "pipeline/model.h"
#include "pipeline/scheduler.h"
#include "pipeline/sequence.h"
#include "pipeline/session.h"

namespace reel {
namespace {

const std::string kModels = REEL_FIXTURE_DIR "/models/";

nlohmann::json reference(const std::string& name) {
  std::ifstream in(REEL_FIXTURE_DIR "/reference/" + name + ".json");
  return nlohmann::json::parse(in);
}

const nlohmann::json& find_case(const nlohmann::json& ref, const char* name) {
  for (const auto& c : ref["cases"])
    if (c["name"] == name) return c;
  throw std::runtime_error(std::string("no case ") + name);
}

using test::greedy_request;
using test::Outcome;
using test::spread_prompt;

std::vector<TokenId> head(const std::vector<TokenId>& v, size_t n) {
  return {v.begin(), v.begin() + n};
}

TEST(Qwen35Pipeline, LoadsTheHybridDecoder) {
  const auto model = Model::load(kModels + "q35-a-f32.gguf", "");
  ASSERT_NE(model->hybrid(), nullptr);
  EXPECT_EQ(model->text_config().n_layer, 4);
  EXPECT_EQ(model->hybrid()->config().kv_config().n_layer, 1);
  EXPECT_THROW(model->text(), Unsupported);  // Qwen3-VL-only paths say so
  EXPECT_EQ(Model::load(kModels + "tiny-a-f32.gguf", "")->hybrid(), nullptr);
}

// The pipeline sees both kinds through TextDecoder: a hybrid state counts its recurrent part in
// its memory, a position costs only the full-attention layers' keys and values, and the state
// goes back only to the start or stays where it is.
TEST(Qwen35Pipeline, TheDecoderInterfaceDescribesTheHybridState) {
  const auto model = Model::load(kModels + "q35-a-f32.gguf", "");
  const TextDecoder& d = model->decoder();
  const Qwen35Config& c = model->hybrid()->config();
  const TextConfig kv = c.kv_config();
  EXPECT_EQ(d.bytes_per_position(KvType::F16),
            size_t(2) * c.n_full * kv.n_head_kv * kv.head_dim * 2);
  const size_t recurrent = DeltaNetState(c).bytes();
  EXPECT_GT(recurrent, 0u);
  // Two sides of the recurrent state (double-buffered) plus the checkpoints' copies.
  EXPECT_EQ(d.state_bytes(64, KvType::F16), KvCache::full_bytes(kv, 64, KvType::F16) +
                                                recurrent * (2 + HybridState::kMaxCheckpoints) / 2);
  const auto tiny = Model::load(kModels + "tiny-a-f32.gguf", "");
  EXPECT_GT(d.weight_bytes_per_token(), 0u);
  EXPECT_EQ(tiny->decoder().state_bytes(64, KvType::F16),
            KvCache::full_bytes(tiny->text_config(), 64, KvType::F16));

  Executor exec(*model, ExecutorOptions{1, 16});
  Scheduler sched(*model, exec);
  Sequence seq(*model, SequenceOptions{64, KvType::F16});
  sched.run_one(greedy_request(seq, {1, 2, 3, 4, 5}, 2));
  const int n = seq.n_past();
  ASSERT_GT(n, 5);
  EXPECT_EQ(seq.state().rewind_point(n), n);
  EXPECT_EQ(seq.state().rewind_point(n + 5), n);
  EXPECT_EQ(seq.state().rewind_point(3), 0);  // no checkpoint in a prompt without turns
  EXPECT_GE(seq.bytes(), recurrent);
  seq.truncate(3);  // cannot go back there: starts over
  EXPECT_EQ(seq.n_past(), 0);
}

TEST(Qwen35Pipeline, SequencesSideBySideGiveTransformersGreedyAnswers) {
  const auto ref = reference("q35-b-f16");
  const auto model = Model::load(kModels + "q35-b-f16.gguf", "");
  Executor exec(*model, ExecutorOptions{2, 32});
  Scheduler sched(*model, exec);
  const char* names[] = {"english", "code", "chat"};
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::vector<Scheduler::Id> ids;
  for (const char* name : names) {
    seqs.push_back(std::make_unique<Sequence>(*model, SequenceOptions{256, KvType::F32}));
    ids.push_back(sched.submit(
        greedy_request(*seqs.back(), find_case(ref, name)["ids"].get<std::vector<TokenId>>(), 64)));
  }
  sched.run();
  for (size_t i = 0; i < ids.size(); ++i) {
    const RequestResult r = sched.take(ids[i]);
    ASSERT_FALSE(r.error) << names[i];
    EXPECT_EQ(r.generated, find_case(ref, names[i])["greedy"].get<std::vector<TokenId>>())
        << names[i];
  }
}

TEST(Qwen35Pipeline, FollowUpReusesTheStateAndTheSamePromptFeedsOnlyItsLastToken) {
  const auto ref = reference("q35-a-f32");
  const auto& c = find_case(ref, "english");
  const auto prompt = c["ids"].get<std::vector<TokenId>>();
  const auto want = c["greedy"].get<std::vector<TokenId>>();
  const auto model = Model::load(kModels + "q35-a-f32.gguf", "");
  Executor exec(*model, ExecutorOptions{2, 16});
  Scheduler sched(*model, exec);
  Sequence seq(*model, SequenceOptions{256, KvType::F32});

  RequestResult first = sched.run_one(greedy_request(seq, prompt, 8));
  EXPECT_EQ(first.generated, head(want, 8));
  // The cache holds the prompt and the first 7 answer tokens (the 8th was never fed).
  const int held = static_cast<int>(prompt.size()) + 7;
  EXPECT_EQ(seq.n_past(), held);

  // A follow-up extending everything cached computes only the new token.
  auto longer = prompt;
  longer.insert(longer.end(), want.begin(), want.begin() + 8);
  RequestResult second = sched.run_one(greedy_request(seq, longer, 16));
  EXPECT_EQ(second.stats.n_reused, held);
  EXPECT_EQ(second.stats.n_prompt, 1);
  EXPECT_EQ(second.generated, std::vector<TokenId>(want.begin() + 8, want.begin() + 24));

  // The original prompt again: a recurrent state goes back only to its copies, and the
  // scheduler keeps one before every prompt's last token, so only that token is fed again (it
  // gives the first answer token's logits); the answer is the same. Without that copy the whole
  // prompt would be read again (n_reused 0).
  RequestResult third = sched.run_one(greedy_request(seq, prompt, 16));
  EXPECT_EQ(third.stats.n_reused, static_cast<int>(prompt.size()) - 1);
  EXPECT_EQ(third.stats.n_prompt, 1);
  EXPECT_EQ(third.generated, head(want, 16));
}

// As the Qwen3-VL scheduler test (scheduler_test.cpp, Interleaved): three Qwen3.5 sequences at
// different positions and prompt lengths share the scheduler's batches (the decoder runs them in
// one pass, each with its own recurrent state) and give what each gives alone: the same greedy
// tokens, and prompt logits within the bounds stated there, for the same reason (the matmul
// picks its kernel by the batch's row count; the per-sequence parts are the same computation).
TEST(Qwen35Pipeline, SequencesBatchedTogetherEqualEachAlone) {
  for (const char* name : {"q35-a-f32.gguf", "q35-a-q8_0.gguf"}) {
    const auto model = Model::load(kModels + name, "");
    const size_t V = model->text_config().n_vocab;
    Executor exec(*model, ExecutorOptions{2, 64});
    Scheduler sched(*model, exec);
    const std::vector<std::vector<TokenId>> prompts = {spread_prompt(150, 1), spread_prompt(7, 2),
                                                       spread_prompt(90, 3)};
    const std::vector<int> n_gen = {20, 30, 12};
    const auto request = [&](Sequence& seq, int i, Outcome& out) {
      return test::keep_logits(greedy_request(seq, prompts[i], n_gen[i]), out, V);
    };
    std::vector<Outcome> alone(3), together(3);
    for (int i = 0; i < 3; ++i) {
      Sequence seq(*model, SequenceOptions{512, KvType::F16});
      const RequestResult r = sched.run_one(request(seq, i, alone[i]));
      ASSERT_FALSE(r.error);
      alone[i].generated = r.generated;
    }
    std::vector<std::unique_ptr<Sequence>> seqs;
    std::vector<Scheduler::Id> ids;
    for (int i = 0; i < 3; ++i) {
      seqs.push_back(std::make_unique<Sequence>(*model, SequenceOptions{512, KvType::F16}));
      ids.push_back(sched.submit(request(*seqs[i], i, together[i])));
      if (i == 0) sched.step();  // the first is under way when the others join
    }
    sched.run();
    for (int i = 0; i < 3; ++i) {
      const RequestResult r = sched.take(ids[i]);
      ASSERT_FALSE(r.error) << name << " " << i;
      EXPECT_EQ(r.generated, alone[i].generated) << name << " " << i;
      EXPECT_EQ(int(r.generated.size()), n_gen[i]);
      ASSERT_EQ(together[i].logits.size(), alone[i].logits.size()) << name << " " << i;
      ASSERT_FALSE(alone[i].logits.empty());
      const auto [max_diff, max_abs] = test::logits_diff(together[i].logits, alone[i].logits);
      std::printf("%s sequence %d: logits |together - alone| <= %.3g (largest |logit| %.3g)\n",
                  name, i, max_diff, max_abs);
      // F32: another summation order, ~1e-6 relative: 1e-4 of the largest logit (measured
      // 9.3e-5 of 7.5). Q8_0: the 7-token prompt alone takes the few-rows kernel (activations
      // quantized per block) and in the batch the f32 panels, and the recurrent state carries
      // that difference into every later position: measured 7.0e-3 of 6.65 (1.05e-3 relative,
      // Qwen3-VL's tiny model 3.7e-4), so 2e-3 of the largest logit; the parity test allows a
      // mean of 0.02 against transformers for the same quantization.
      const double bound = std::string(name).find("f32") != std::string::npos ? 1e-4 : 2e-3;
      EXPECT_LE(max_diff, bound * std::max(1.0, max_abs)) << name << " " << i;
    }
  }
}

// A recurrent state keeps copies of itself where prompts diverge (turn starts, media ends), so
// a prompt that shares only the system turn with the cached one reuses that turn, and answers as
// a fresh sequence does.
TEST(Qwen35Pipeline, CheckpointsLetADivergingPromptReuseTheSharedStart) {
  const auto model = Model::load(kModels + "q35-a-f32.gguf", "");
  const Tokenizer& tok = model->tokenizer();
  const std::string system = "<|im_start|>system\nYou answer in one word.<|im_end|>\n";
  const auto turn = [&](const std::string& q) {
    return tok.encode(system + "<|im_start|>user\n" + q + "<|im_end|>\n<|im_start|>assistant\n",
                      true);
  };
  const std::vector<TokenId> a = turn("What colour is the sky at noon?");
  const std::vector<TokenId> b = turn("Name a fruit that is yellow.");
  const int shared = static_cast<int>(tok.encode(system, true).size());
  ASSERT_EQ(a[shared], tok.token_id("<|im_start|>"));
  ASSERT_NE(a[shared + 3], b[shared + 3]);  // the questions differ after "<|im_start|>user\n"

  Executor exec(*model, ExecutorOptions{2, 16});
  Scheduler sched(*model, exec);
  Sequence fresh(*model, SequenceOptions{256, KvType::F32});
  const RequestResult want = sched.run_one(greedy_request(fresh, b, 12));

  Sequence seq(*model, SequenceOptions{256, KvType::F32});
  sched.run_one(greedy_request(seq, a, 6));
  auto& state = static_cast<HybridState&>(seq.state());
  // Before the user turn, before the assistant turn, and before the prompt's last token.
  EXPECT_EQ(state.n_checkpoints(), 3);
  const RequestResult got = sched.run_one(greedy_request(seq, b, 12));
  EXPECT_EQ(got.stats.n_reused, shared);  // the system turn, from its checkpoint
  EXPECT_EQ(got.generated, want.generated);
  EXPECT_LE(state.n_checkpoints(), HybridState::kMaxCheckpoints);
}

// The stand-in Qwen3.5 templates of the chat-template fixture (written by
// tools/reference/make_qwen35_template_fixtures.py, checked against transformers in
// chat_template_test.cpp): "large" thinks by default; both trim earlier turns' think blocks.
std::string qwen35_template(const char* name) {
  std::ifstream in(REEL_FIXTURE_SRC "/tokenizer/qwen35-chat-template.json");
  return nlohmann::json::parse(in)["templates"][name].get<std::string>();
}

// A CLI conversation under Qwen3.5's template: when the next question comes, the previous
// answer's think block (the generation prompt's "<think>\n" or empty block, and any reasoning)
// leaves the context, so the second turn's prompt is the template's rendering of the whole
// history. The recurrent state goes back to its checkpoint before the answer's turn and the
// trimmed answer is read again.
TEST(Qwen35Pipeline, ASecondTurnDropsTheFirstAnswersThinkBlock) {
  const auto model = Model::load(kModels + "q35-a-f32.gguf", "");
  const Tokenizer& tok = model->tokenizer();
  Executor exec(*model, ExecutorOptions{2, 32});
  Scheduler sched(*model, exec);
  const std::string tmpl = qwen35_template("large");
  const TokenId think_id = tok.token_id("<think>"), im_start = tok.token_id("<|im_start|>");
  ASSERT_GE(think_id, 0);
  for (const Think think : {Think::kDefault, Think::kOff}) {
    SCOPED_TRACE(think == Think::kOff ? "thinking off" : "thinking on");
    SessionOptions o;
    o.sampling.temperature = 0;
    o.system_prompt = "You are brief.";
    o.sequence = {512, KvType::F32};
    o.chat_template = tmpl;
    o.think = think;
    ChatSession s(sched, o);
    s.ask("Hi there", 12, nullptr);
    const std::vector<TokenId> first = s.dialogue();
    const std::string answer = tok.decode(s.answer_ids());
    const int prompt1 = s.n_past() - static_cast<int>(s.answer_ids().size());
    EXPECT_EQ(std::count(first.begin(), first.begin() + prompt1, think_id), 1);
    // The next turn builds on the first turn up to "<|im_start|>assistant\n".
    EXPECT_LT(s.n_kept(), prompt1);
    const int assistant_start =
        static_cast<int>(
            std::find(std::make_reverse_iterator(first.begin() + prompt1), first.rend(), im_start)
                .base() -
            first.begin()) -
        1;
    EXPECT_EQ(s.n_kept(), assistant_start + 3);  // <|im_start|> "assistant" "\n"

    const GenerationStats second = s.ask("And then?", 4, nullptr);
    const std::vector<ChatMessage> history = {{"system", o.system_prompt},
                                              {"user", "Hi there"},
                                              {"assistant", answer},
                                              {"user", "And then?"}};
    const ThinkingSwitch sw = thinking_switch(tmpl);
    const std::vector<TokenId> want =
        tok.encode(render_chat(history, generation_prompt(sw, think), sw.think_blocks), true);
    ASSERT_LE(want.size(), s.dialogue().size());
    EXPECT_EQ(std::vector<TokenId>(s.dialogue().begin(), s.dialogue().begin() + want.size()), want);
    EXPECT_EQ(std::count(want.begin(), want.end(), think_id), 1);  // the new prompt's only
    // Back to the checkpoint before the first answer's turn, not to the start.
    EXPECT_EQ(second.n_reused, assistant_start);
  }
}

// A Qwen3-VL model's template has no think blocks: the dialogue grows by appending, and the
// next turn reuses all of it.
TEST(Qwen35Pipeline, AQwen3VlConversationKeepsItsAnswers) {
  const auto model = Model::load(kModels + "tiny-a-f32.gguf", "");
  Executor exec(*model, ExecutorOptions{2, 32});
  Scheduler sched(*model, exec);
  SessionOptions o;
  o.sampling.temperature = 0;
  o.sequence = {512, KvType::F32};
  ChatSession s(sched, o);
  s.ask("Hi there", 6, nullptr);
  const std::vector<TokenId> first = s.dialogue();
  EXPECT_EQ(s.n_kept(), s.n_past());
  const GenerationStats second = s.ask("And then?", 2, nullptr);
  EXPECT_TRUE(std::equal(first.begin(), first.end(), s.dialogue().begin()));
  // Everything the cache holds: the dialogue less its last answer token (sampled, never fed).
  EXPECT_EQ(second.n_reused, static_cast<int>(first.size()) - 1);
}

// Images and videos are tested in qwen35_media_test.cpp; a Qwen3-VL tower (with DeepStack) is
// not a Qwen3.5 model's.
TEST(Qwen35Pipeline, AQwen3VlVisionTowerIsRefused) {
  try {
    Model::load(kModels + "q35-a-f32.gguf", kModels + "tiny-a-mmproj-f32.gguf");
    FAIL() << "a Qwen3.5 text model was paired with a Qwen3-VL vision model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("do not belong together"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace reel
