// Prompts of chat requests about live streams (build_stream_prompt): a window is the very prompt
// `reel watch` asks with (ask_about_window: the session's user turn around live_video_text and the
// question), its pairs keep their identities (prefix reuse), and a window too long for the
// context loses its oldest pairs, never its newest.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "pipeline/executor.h"
#include "pipeline/live_window.h"
#include "pipeline/scheduler.h"
#include "pipeline/session.h"
#include "server/streams.h"

namespace reel::server {
namespace {

const std::string kModel = REEL_FIXTURE_DIR "/models/tiny-a-q8_0.gguf";
const std::string kMmproj = REEL_FIXTURE_DIR "/models/tiny-a-mmproj-f16.gguf";

// `n` pairs of 2x3 tokens at 2 fps starting at t0 (their rows are never read here).
LiveGroups fake_window(int n, double t0 = 7.25) {
  LiveGroups out;
  for (int i = 0; i < n; ++i) {
    auto g = std::make_shared<LiveGroup>();
    g->id = 1000 + uint64_t(i);
    g->t0_s = t0 + i;
    g->t1_s = t0 + i + 0.5;
    g->rows.hm = 2;
    g->rows.wm = 3;
    g->rows.main.assign(6, 0.f);
    out.push_back(g);
  }
  return out;
}

std::vector<ChatTurn> ask(const std::string& question) {
  return {{"user", {{ChatPart::Kind::Video, ""}, {ChatPart::Kind::Text, question}}}};
}

class StreamPrompt : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = Model::load(kModel, kMmproj); }
  static void TearDownTestSuite() { model_.reset(); }
  static std::shared_ptr<const Model> model_;
};
std::shared_ptr<const Model> StreamPrompt::model_;

TEST_F(StreamPrompt, IsThePromptReelWatchAsksWith) {
  const LiveGroups w = fake_window(5);
  const std::string q = "What moved?";
  const ChatPrompt p = build_stream_prompt(*model_, ask(q), {w}, 4096, -1);
  // What ask_about_window tokenizes for the same window and question in a fresh dialogue.
  Executor exec(*model_, ExecutorOptions{1, 64});
  Scheduler sched(*model_, exec);
  SessionOptions so;
  so.sequence.n_ctx = 4096;
  ChatSession session(sched, so);
  EXPECT_EQ(p.ids,
            model_->tokenizer().encode(session.user_turn_text(live_video_text(w) + q), true));
  // Timestamps count from the window's first frame, not the stream's start.
  EXPECT_NE(live_video_text(w).find("<0.2 seconds>"), std::string::npos) << live_video_text(w);
  ASSERT_EQ(p.blocks.size(), w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    EXPECT_EQ(p.blocks[i].id, w[i]->id);  // prefix reuse across questions
    EXPECT_EQ(p.blocks[i].main, w[i]->rows.main.data());
  }
  EXPECT_EQ(p.n_videos, 1);
  EXPECT_EQ(p.n_frames, 10);
  EXPECT_EQ(p.video_tokens, 30);
  EXPECT_TRUE(p.notes.empty());
}

TEST_F(StreamPrompt, TwoWindowsAreTwoVideosInOrder) {
  const LiveGroups a = fake_window(2), b = fake_window(3, 100);
  std::vector<ChatTurn> turns = ask("Compare.");
  turns[0].parts.push_back({ChatPart::Kind::Video, ""});
  const ChatPrompt p = build_stream_prompt(*model_, turns, {a, b}, 4096, -1);
  ASSERT_EQ(p.blocks.size(), 5u);
  EXPECT_EQ(p.blocks[1].id, a[1]->id);
  EXPECT_EQ(p.blocks[2].id, b[0]->id);
  EXPECT_EQ(p.n_videos, 2);
}

TEST_F(StreamPrompt, TooLongWindowsLoseTheirOldestPairs) {
  const LiveGroups w = fake_window(40);
  const ChatPrompt whole = build_stream_prompt(*model_, ask("What moved?"), {w}, 4096, 16);
  // A context that holds the prompt less about ten pairs (6 pad tokens and ~8 of text each).
  const int n_ctx = int(whole.ids.size()) + 16 - 10 * 14;
  const ChatPrompt cut = build_stream_prompt(*model_, ask("What moved?"), {w}, n_ctx, 16);
  EXPECT_LE(int(cut.ids.size()) + 16, n_ctx);
  ASSERT_LT(cut.blocks.size(), w.size());
  ASSERT_GE(cut.blocks.size(), 25u);
  EXPECT_EQ(cut.blocks.back().id, w.back()->id);  // the newest pair stays
  EXPECT_EQ(cut.blocks.front().id, w[w.size() - cut.blocks.size()]->id);
  EXPECT_FALSE(cut.notes.empty());
  // Not even one pair fits: refused, naming the sizes.
  EXPECT_THROW(build_stream_prompt(*model_, ask("What moved?"), {w}, 24, 16), ContextFull);
}

}  // namespace
}  // namespace reel::server
