// Prompts of chat requests about live streams (place_stream_windows, then build_chat_prompt with
// the windows as pre-encoded media): a window is the very prompt `reel watch` asks with
// (ask_about_window: the session's user turn around live_video_text and the question), its pairs
// keep their identities (prefix reuse), a window too long for the context loses its oldest
// pairs, never its newest, and a window beside images and videos, in any order, gives the prompt
// the CLI builds for the same media with the window's frames as a video file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "media/stream.h"
#include "pipeline/executor.h"
#include "pipeline/live_window.h"
#include "pipeline/scheduler.h"
#include "pipeline/session.h"
#include "server/streams.h"

namespace reel::server {
namespace {

const std::string kModel = REEL_FIXTURE_DIR "/models/tiny-a-q8_0.gguf";
const std::string kMmproj = REEL_FIXTURE_DIR "/models/tiny-a-mmproj-f16.gguf";
const std::string kImage = REEL_FIXTURE_SRC "/images/rgb-97x61.png";
const std::string kVideo = REEL_FIXTURE_SRC "/video/lossless-112x72.mkv";

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

ChatPart text(std::string t) {
  return {ChatPart::Kind::Text, std::move(t)};
}
ChatPart image(std::string p) {
  return {ChatPart::Kind::Image, std::move(p)};
}
ChatPart video(std::string p) {
  return {ChatPart::Kind::Video, std::move(p)};
}
// A stream part's place, as the request parser leaves it (a video without a path).
ChatPart stream_place() {
  return video("");
}

std::vector<ChatTurn> ask(const std::string& question) {
  return {{"user", {stream_place(), text(question)}}};
}

class StreamPrompt : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = Model::load(kModel, kMmproj);
    exec_ = std::make_unique<Executor>(*model_, ExecutorOptions{1, 64});
  }
  static void TearDownTestSuite() {
    exec_.reset();
    model_.reset();
  }
  // The engine's path: the windows into the stream parts' places (the video parts without a
  // path, in order), then the chat prompt.
  ChatPrompt build(std::vector<ChatTurn> turns, const std::vector<LiveGroups>& windows,
                   int n_ctx = 4096, int max_tokens = -1) {
    std::vector<StreamPart> parts;
    for (size_t t = 0; t < turns.size(); ++t)
      for (size_t j = 0; j < turns[t].parts.size(); ++j)
        if (turns[t].parts[j].kind == ChatPart::Kind::Video && turns[t].parts[j].text.empty())
          parts.push_back({t, j, "stream-" + std::to_string(parts.size()), 0, ""});
    place_stream_windows(turns, parts, windows);
    return build_media(turns, n_ctx, max_tokens);
  }
  ChatPrompt build_media(const std::vector<ChatTurn>& turns, int n_ctx = 4096,
                         int max_tokens = -1) {
    ChatPromptOptions o;
    o.n_ctx = n_ctx;
    o.max_tokens = max_tokens;
    return build_chat_prompt(*model_, exec_->ctx(), turns, o, memo_);
  }
  static std::shared_ptr<const Model> model_;
  static std::unique_ptr<Executor> exec_;
  MediaMemo memo_;
};
std::shared_ptr<const Model> StreamPrompt::model_;
std::unique_ptr<Executor> StreamPrompt::exec_;

TEST_F(StreamPrompt, IsThePromptReelWatchAsksWith) {
  const LiveGroups w = fake_window(5);
  const std::string q = "What moved?";
  const ChatPrompt p = build(ask(q), {w});
  // What ask_about_window tokenizes for the same window and question in a fresh dialogue.
  Scheduler sched(*model_, *exec_);
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
  turns[0].parts.push_back(stream_place());
  const ChatPrompt p = build(turns, {a, b});
  ASSERT_EQ(p.blocks.size(), 5u);
  EXPECT_EQ(p.blocks[1].id, a[1]->id);
  EXPECT_EQ(p.blocks[2].id, b[0]->id);
  EXPECT_EQ(p.n_videos, 2);
}

TEST_F(StreamPrompt, TooLongWindowsLoseTheirOldestPairs) {
  const LiveGroups w = fake_window(40);
  const ChatPrompt whole = build(ask("What moved?"), {w}, 4096, 16);
  // A context that holds the prompt less about ten pairs (6 pad tokens and ~8 of text each).
  const int n_ctx = int(whole.ids.size()) + 16 - 10 * 14;
  const ChatPrompt cut = build(ask("What moved?"), {w}, n_ctx, 16);
  EXPECT_LE(int(cut.ids.size()) + 16, n_ctx);
  ASSERT_LT(cut.blocks.size(), w.size());
  ASSERT_GE(cut.blocks.size(), 25u);
  EXPECT_EQ(cut.blocks.back().id, w.back()->id);  // the newest pair stays
  EXPECT_EQ(cut.blocks.front().id, w[w.size() - cut.blocks.size()]->id);
  EXPECT_FALSE(cut.notes.empty());
  // Not even one pair fits: refused, naming the sizes.
  EXPECT_THROW(build(ask("What moved?"), {w}, 24, 16), ContextFull);
}

// A window among other media: the prompt equals the CLI's for the same media in the same order,
// the window given as a video file of its frames (ids, blocks and rows alike), whatever the
// order.
TEST_F(StreamPrompt, MixesWithImagesAndVideosAsTheCliWould) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("reel-stream-prompt-" + std::to_string(getpid()));
  fs::create_directories(dir);
  // 4 s at 2 fps, sides multiples of 32: the CLI takes all 8 frames at their size (default
  // --fps 2), as LiveVideo does at --fps 2.
  const std::string clip = (dir / "clip2.mp4").string();
  const std::string cmd =
      "ffmpeg -v error -y -f lavfi -i testsrc=size=128x96:rate=2 -t 4 "
      "-c:v libx264 -pix_fmt yuv420p '" +
      clip + "' </dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  // The window: the clip read as a stream, each pair encoded once as LiveVideo does.
  ops::Context ctx(1);
  auto reader = media::StreamReader::open(clip);
  LiveGroups w;
  for (media::StreamFrame a, b; reader->next(a) && reader->next(b);) {
    auto g = std::make_shared<LiveGroup>();
    g->rows = encode_video_group(model_->vision(), a.image, b.image, ctx);
    g->id = new_block_identity();
    g->t0_s = a.pts_s;
    g->t1_s = b.pts_s;
    w.push_back(g);
  }
  ASSERT_EQ(w.size(), 4u);

  const std::string q = "What changed between them?";
  const std::vector<std::vector<ChatPart>> orders = {
      {image(kImage), stream_place(), text(q)},
      {stream_place(), text("and"), image(kImage), text(q)},
      {video(kVideo), image(kImage), stream_place(), text(q)}};
  for (const std::vector<ChatPart>& parts : orders) {
    std::vector<ChatTurn> cli_turns = {{"user", parts}};
    for (ChatPart& p : cli_turns[0].parts)
      if (p.kind == ChatPart::Kind::Video && p.text.empty()) p.text = clip;
    const ChatPrompt live = build({{"user", parts}}, {w});
    const ChatPrompt cli = build_media(cli_turns);
    SCOPED_TRACE(std::to_string(&parts - orders.data()));
    EXPECT_EQ(live.ids, cli.ids);
    EXPECT_EQ(live.n_images, cli.n_images);
    EXPECT_EQ(live.n_videos, cli.n_videos);
    EXPECT_EQ(live.n_frames, cli.n_frames);
    EXPECT_EQ(live.video_tokens, cli.video_tokens);
    EXPECT_EQ(live.image_tokens, cli.image_tokens);
    ASSERT_EQ(live.blocks.size(), cli.blocks.size());
    for (size_t i = 0; i < live.blocks.size(); ++i) {
      const VisualBlock &x = live.blocks[i], &y = cli.blocks[i];
      ASSERT_EQ(x.hm, y.hm) << i;
      ASSERT_EQ(x.wm, y.wm) << i;
      const size_t n = size_t(x.hm) * x.wm * size_t(w[0]->rows.main.size() / w[0]->rows.n_tokens());
      // The same arithmetic on the same pixels (encode_video_group is encode_video's per-group
      // code): equal to the bit.
      EXPECT_TRUE(std::equal(x.main, x.main + n, y.main)) << "block " << i;
    }
    // The window's pairs keep their identities (a grown window reuses the KV prefix).
    size_t found = 0;
    for (const VisualBlock& b : live.blocks)
      for (const auto& g : w) found += b.id == g->id;
    EXPECT_EQ(found, w.size());
  }
  // The comparison can fail: the window's frames in another order are another prompt.
  LiveGroups reversed(w.rbegin(), w.rend());
  for (auto& g : reversed) {
    auto c = std::make_shared<LiveGroup>(*g);
    c->t0_s = w[&g - reversed.data()]->t0_s;
    c->t1_s = w[&g - reversed.data()]->t1_s;
    g = c;
  }
  const ChatPrompt live = build({{"user", orders[0]}}, {reversed});
  std::vector<ChatTurn> cli_turns = {{"user", orders[0]}};
  cli_turns[0].parts[1].text = clip;
  const ChatPrompt cli = build_media(cli_turns);
  EXPECT_EQ(live.ids, cli.ids);  // the same text...
  const size_t n = w[0]->rows.main.size();
  EXPECT_FALSE(std::equal(live.blocks[1].main, live.blocks[1].main + n, cli.blocks[1].main));
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace reel::server
