// Conversations: exact token budgets (every token the prompt holds is counted before any
// media are decoded), all-or-nothing turns (a failed, refused or cancelled turn leaves the
// dialogue exactly as it was, and its media can be brought in later), and cancellation at
// each point where the work is checked. Uses the tiny-a fixture pair with greedy decoding.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "pipeline/conversation.h"
#include "test_engine.h"

namespace reel {
namespace {

const std::string kModel = REEL_FIXTURE_DIR "/models/tiny-a-q8_0.gguf";
const std::string kMmproj = REEL_FIXTURE_DIR "/models/tiny-a-mmproj-f16.gguf";
const std::string kImage = REEL_FIXTURE_SRC "/images/large-320x200.png";
const std::string kSmallImage = REEL_FIXTURE_SRC "/images/rgb-97x61.png";
const std::string kVideo = REEL_FIXTURE_SRC "/../../assets/demo-4s-320x180.mp4";

// The model and its scheduler, and the context every conversation here gets.
struct Engine : test::TestEngine {
  Engine(int ctx, int n_batch) : TestEngine(kModel, kMmproj, 2, std::min(n_batch, ctx)), n_ctx(ctx) {}
  ConversationOptions with_ctx(ConversationOptions o) const {
    o.sequence.n_ctx = n_ctx;
    return o;
  }
  int n_ctx;
};

std::unique_ptr<Engine> load(int n_ctx, int n_batch = 64) {
  return std::make_unique<Engine>(n_ctx, n_batch);
}

ConversationOptions greedy(int max_tokens) {
  ConversationOptions o;
  o.sampling.temperature = 0;
  o.max_tokens = max_tokens;
  return o;
}

// The answer's ids, or the exception's type.
struct Outcome {
  std::vector<TokenId> ids;
  TurnStats stats;
};

Outcome ask(Conversation& c, const std::string& text, bool one_shot = false,
            TurnEvents ev = {}) {
  Outcome o;
  o.stats = c.ask(text, one_shot, ev);
  o.ids = o.stats.generated;
  return o;
}

TEST(PromptCount, TimestampTokensMatchTheTokenizer) {
  const auto engine = load(256);
  for (double t : {0.0, 0.25, 0.5, 1.0, 9.95, 10.0, 12.3, 99.9, 100.0, 725.5, 3599.9, 12345.6}) {
    const auto ids = engine->tokenizer().encode(timestamp_text(t), true);
    EXPECT_EQ(timestamp_tokens(t), static_cast<int>(ids.size())) << timestamp_text(t);
  }
}

TEST(PromptCount, VideoPromptTokensMatchTheTokenizer) {
  const auto engine = load(256);
  for (bool as_images : {false, true})
    for (int frames : {0, 5, 64}) {
      VideoOptions o;
      o.as_images = as_images;
      o.n_frames = frames;
      const VideoPlan p = plan_video(kVideo, o, 16, 2, 0);
      const auto ids = engine->tokenizer().encode(video_prompt_text(p), true);
      EXPECT_EQ(video_prompt_tokens(p), static_cast<int64_t>(ids.size()))
          << "as_images " << as_images << ", frames " << frames;
    }
}

TEST(PromptCount, TemplateAroundAVideoIsEightTokens) {
  // `reel frames` counts the template without a tokenizer; this is the number it uses.
  const auto engine = load(256);
  const std::string text = "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n";
  EXPECT_EQ(engine->tokenizer().encode(text, true).size(), 8u);
}

TEST(Memory, KvRefusalComparesTheRightNumbers) {
  const double gib = double(1 << 30);
  EXPECT_NO_THROW(check_kv_memory(1000, 19.0 * gib, 24.0 * gib));  // 19 < 0.8 * 24 = 19.2
  try {
    check_kv_memory(1000, 20.0 * gib, 24.0 * gib);
    FAIL() << "20 GiB is over 80% of 24 GiB";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("needs 20.0 GiB"), std::string::npos) << m;
    EXPECT_NE(m.find("the 19.2 GiB it may take"), std::string::npos) << m;
    EXPECT_NE(m.find("24.0 GiB"), std::string::npos) << m;
  }
}

TEST(PromptBudget, PlansFitTheContextExactly) {
  // Tight contexts, the answer's room taken into account: the planned prompt plus the answer
  // never exceeds the context, and the video is cut down rather than refused.
  for (int n_ctx : {96, 160, 400}) {
    const auto engine = load(n_ctx);
    ConversationOptions o = greedy(6);
    o.video_path = kVideo;
    Conversation c(engine->scheduler(), engine->with_ctx(o));
    std::vector<std::string> notes;
    TurnEvents ev;
    ev.note = [&](const std::string& n) { notes.push_back(n); };
    const Outcome r = ask(c, "Describe this video in detail, please.", true, ev);
    EXPECT_GT(r.stats.video_tokens, 0);
    EXPECT_LE(r.stats.gen.n_prompt + 6, n_ctx) << n_ctx;
    EXPECT_EQ(r.stats.gen.n_generated, 6);
    // The first token comes from the prompt's pass; stopped by the limit, the sixth is not fed.
    EXPECT_EQ(r.stats.gen.n_decode_steps, 5);
    EXPECT_FALSE(r.stats.gen.hit_context_limit);
    if (n_ctx < 300) {
      EXPECT_EQ(notes.size(), 1u) << "one line says what was chosen";
    }
  }
}

TEST(PromptBudget, ManyFramesAreSampledDownBeforeDecoding) {
  const auto engine = load(300);
  ConversationOptions o = greedy(4);
  o.video_path = kVideo;
  o.video.n_frames = 100000;
  Conversation c(engine->scheduler(), engine->with_ctx(o));
  const Outcome r = ask(c, "What happens?", true);
  EXPECT_LE(r.stats.gen.n_prompt + 4, 300);
  EXPECT_LT(r.stats.n_frames, 96);
}

TEST(PromptBudget, NoRoomIsRefusedBeforeDecodingWithTheNumbers) {
  const auto engine = load(40);
  ConversationOptions o = greedy(32);
  o.video_path = kVideo;
  Conversation c(engine->scheduler(), engine->with_ctx(o));
  int progress_calls = 0;
  TurnEvents ev;
  ev.progress = [&](const char*, int, int) { ++progress_calls; };
  try {
    ask(c, "Describe this video.", true, ev);
    FAIL() << "expected ContextFull";
  } catch (const ContextFull& e) {
    EXPECT_NE(std::string(e.what()).find("32"), std::string::npos) << e.what();
  }
  EXPECT_EQ(progress_calls, 0) << "nothing was encoded";
  EXPECT_EQ(c.n_past(), 0);
}

TEST(PromptBudget, ImagesShareWhatTheContextLeaves) {
  const auto engine = load(120);
  ConversationOptions o = greedy(4);
  o.images = {kImage, kSmallImage};
  Conversation c(engine->scheduler(), engine->with_ctx(o));
  std::vector<std::string> notes;
  TurnEvents ev;
  ev.note = [&](const std::string& n) { notes.push_back(n); };
  const Outcome r = ask(c, "Compare them.", true, ev);
  EXPECT_EQ(r.stats.n_images, 2);
  EXPECT_LE(r.stats.gen.n_prompt + 4, 120);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("sized down"), std::string::npos) << notes[0];
}

TEST(Rollback, SeveralImagesLoadAllOrNothingNamingTheBadOne) {
  const auto engine = load(512);
  ConversationOptions o = greedy(4);
  o.images = {kImage, "/nonexistent/broken.png"};
  Conversation c(engine->scheduler(), engine->with_ctx(o));
  try {
    ask(c, "<image> What is this?");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.png"), std::string::npos) << e.what();
  }
  EXPECT_EQ(c.n_past(), 0);
}

// A turn after a failed one answers exactly as the same turn in a fresh conversation: the
// failure left nothing behind, and media it meant to bring in come in now.
void expect_same_as_fresh(Engine& engine, const ConversationOptions& o, Conversation& c,
                          const std::string& first, const std::string& next) {
  Conversation fresh(engine.scheduler(), engine.with_ctx(o));
  const Outcome want_first = ask(fresh, first);
  const Outcome want_next = ask(fresh, next);
  const Outcome got_first = ask(c, first);
  const Outcome got_next = ask(c, next);
  EXPECT_EQ(got_first.ids, want_first.ids);
  EXPECT_EQ(got_first.stats.visual_tokens(), want_first.stats.visual_tokens());
  EXPECT_EQ(got_next.ids, want_next.ids);
  EXPECT_EQ(c.n_past(), fresh.n_past());
}

TEST(Rollback, AFullContextLeavesTheDialogueAsItWas) {
  const auto engine = load(256);
  const ConversationOptions o = greedy(5);
  Conversation c(engine->scheduler(), engine->with_ctx(o));
  ask(c, "Hello there.");
  const int before = c.n_past();
  EXPECT_THROW(ask(c, std::string(3000, 'x')), ContextFull);
  EXPECT_EQ(c.n_past(), before);
  // The dialogue continues as if the failed turn never happened.
  Conversation fresh(engine->scheduler(), engine->with_ctx(o));
  ask(fresh, "Hello there.");
  EXPECT_EQ(ask(c, "And now?").ids, ask(fresh, "And now?").ids);
}

struct CancelPoint {
  const char* stage;  // progress stage at which to cancel, or "answer"
  int after;          // progress count (or answer pieces) before cancelling
};

class Cancel : public ::testing::TestWithParam<CancelPoint> {};

TEST_P(Cancel, StopsAndLeavesTheConversationConsistent) {
  const CancelPoint point = GetParam();
  const auto engine = load(1024, 16);
  std::atomic<bool> flag{false};
  engine->ctx().set_cancel_flag(&flag);
  ConversationOptions o = greedy(12);
  o.video_path = kVideo;
  o.images = {kSmallImage};
  Conversation c(engine->scheduler(), engine->with_ctx(o));
  TurnEvents ev;
  int pieces = 0;
  ev.progress = [&](const char* stage, int done, int) {
    if (std::strcmp(stage, point.stage) == 0 && done >= point.after) flag = true;
  };
  ev.text = [&](std::string_view) {
    if (std::strcmp(point.stage, "answer") == 0 && ++pieces >= point.after) flag = true;
    return true;
  };
  EXPECT_THROW(c.ask("<image><video> What is there?", false, ev), Cancelled);
  EXPECT_EQ(c.n_past(), 0);
  flag = false;
  expect_same_as_fresh(*engine, o, c, "<image><video> What is there?", "And then?");
}

INSTANTIATE_TEST_SUITE_P(AtEachPoint, Cancel,
                         ::testing::Values(CancelPoint{"encoding images", 1},
                                           CancelPoint{"encoding video", 1},
                                           CancelPoint{"reading the prompt", 16},
                                           CancelPoint{"answer", 2}),
                         [](const auto& info) {
                           std::string s = info.param.stage;
                           for (char& ch : s)
                             if (ch == ' ') ch = '_';
                           return s;
                         });

TEST(Rollback, AClearedDialogueBringsTheMediaInAgain) {
  const auto engine = load(1024);
  ConversationOptions o = greedy(4);
  o.images = {kSmallImage};
  Conversation c(engine->scheduler(), engine->with_ctx(o));
  const Outcome a = ask(c, "<image> What is it?");
  EXPECT_EQ(a.stats.n_images, 1);
  const Outcome b = ask(c, "<image> Again?");
  EXPECT_EQ(b.stats.n_images, 0) << "already in the dialogue";
  c.clear();
  const Outcome again = ask(c, "<image> What is it?");
  EXPECT_EQ(again.stats.n_images, 1);
  EXPECT_EQ(again.ids, a.ids);
  EXPECT_EQ(again.stats.vision_encode_ms, 0) << "the encoding was reused";
}

}  // namespace
}  // namespace reel
