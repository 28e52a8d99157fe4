// Video prompts end to end against transformers (tests/fixtures/video/, written by
// tools/reference/make_video_fixtures.py): sampled frames, timestamps, grid, placeholder
// expansion with timestamps, 3-axis positions per temporal group, vision outputs, logits at
// every position and 32 greedy tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.h"
#include "test_engine.h"
#include "prompt_check.h"

namespace reel {
namespace {

using nlohmann::json;

using test::read_json;

const std::string kRepo = REEL_FIXTURE_SRC "/../../";

class VideoPrompt : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    prompts_ = read_json(REEL_FIXTURE_DIR "/video/prompts.json");
    video_ = read_json(REEL_FIXTURE_SRC "/video/video.json");
    const json all = read_json(REEL_FIXTURE_SRC "/vision/images.json");
    for (const auto& e : all["images"]) images_[e["name"].get<std::string>()] = e;
    // Batches of 29: every prompt takes several.
    engine_ = new test::TestEngine(REEL_FIXTURE_DIR "/models/" + prompts_["model"].get<std::string>(),
                                   REEL_FIXTURE_DIR "/models/" + prompts_["mmproj"].get<std::string>(), 2, 29);
  }
  static void TearDownTestSuite() { delete engine_; }

  static VideoOptions options_for(const std::string& sampling) {
    VideoOptions v;
    v.display_corrections = false;  // transformers' video readers apply neither
    if (sampling == "num_frames_5") v.n_frames = 5;
    return v;
  }
  static std::string video_path() { return kRepo + video_["video"]["file"].get<std::string>(); }

  static json prompts_, video_;
  static std::map<std::string, json> images_;
  static test::TestEngine* engine_;
};

json VideoPrompt::prompts_, VideoPrompt::video_;
std::map<std::string, json> VideoPrompt::images_;
test::TestEngine* VideoPrompt::engine_ = nullptr;

TEST_F(VideoPrompt, PlanMatchesTheProcessor) {
  ASSERT_GE(video_["samplings"].size(), 2u);
  for (const auto& s : video_["samplings"]) {
    const VideoPlan p = plan_video(video_path(), options_for(s["name"].get<std::string>()), 16, 2, 0);
    EXPECT_EQ(p.indices, s["indices"].get<std::vector<int64_t>>()) << s["name"];
    EXPECT_EQ(p.resized_w, s["resized"][0].get<int>());
    EXPECT_EQ(p.resized_h, s["resized"][1].get<int>());
    EXPECT_EQ(p.n_groups, s["video_grid_thw"][0].get<int>());
    EXPECT_EQ(p.grid_h, s["video_grid_thw"][1].get<int>());
    EXPECT_EQ(p.grid_w, s["video_grid_thw"][2].get<int>());
    ASSERT_EQ(p.group_times.size(), s["timestamp_text"].size());
    for (size_t g = 0; g < p.group_times.size(); ++g) {
      std::string want = "<";  // (GCC 12 warns falsely about "<" + std::string&&)
      want += s["timestamp_text"][g].get<std::string>() + " seconds>";
      EXPECT_EQ(timestamp_text(p.group_times[g]), want);
    }
  }
}

// Decoded frames are exact (a lossless RGB video) and the resize is torch's, so everything
// downstream agrees to float32 rounding: 1e-3 on logits of order 1-10, as for images.
TEST_F(VideoPrompt, LogitsPositionsAndGreedyMatch) {
  const Qwen3VLText& m = engine_->text();
  const Tokenizer& tok = engine_->tokenizer();
  const int V = m.config().n_vocab;
  ASSERT_GE(prompts_["cases"].size(), 2u);
  for (const auto& c : prompts_["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    std::vector<EncodedImage> images;
    for (const auto& name : c["images"])
      images.push_back(engine_->encode_image(kRepo + images_[name]["source"].get<std::string>()));
    std::vector<EncodedVideo> videos;
    videos.push_back(engine_->encode_video(video_path(), options_for(c["sampling"].get<std::string>()), 0));
    std::vector<VisualBlock> blocks;
    const std::string text = expand_markers(c["text"].get<std::string>(), images, videos, blocks);
    ASSERT_EQ(text, c["expanded_text"].get<std::string>());
    const std::vector<int32_t> ids = tok.encode(text, true);
    ASSERT_EQ(ids, c["ids"].get<std::vector<int32_t>>());
    const PromptLayout L = layout_prompt(ids, blocks, 0, tok.token_id("<|image_pad|>"),
                                         tok.token_id("<|video_pad|>"), m.config().n_embd);
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_EQ(L.pos[i].t, c["position_ids"][0][i].get<int>()) << i;
      ASSERT_EQ(L.pos[i].h, c["position_ids"][1][i].get<int>()) << i;
      ASSERT_EQ(L.pos[i].w, c["position_ids"][2][i].get<int>()) << i;
    }
    EXPECT_EQ(L.next_pos - int(ids.size()), c["rope_delta"].get<int>());

    std::vector<float> logits;
    const std::vector<int32_t> got = engine_->run(ids, blocks, 32, logits);
    ASSERT_EQ(logits.size(), ids.size() * V);
    EXPECT_LE(test::max_column_diff(logits, V, prompts_["columns"], c["logits"]), 1e-3);
    EXPECT_EQ(got, c["greedy"].get<std::vector<int32_t>>());
  }
}

TEST_F(VideoPrompt, TightBudgetSamplesDownInsteadOfRefusing) {
  VideoOptions o = options_for("default");
  const VideoPlan full = plan_video(video_path(), o, 16, 2, 0);
  ASSERT_EQ(full.n_tokens(), 24);
  const VideoPlan small = plan_video(video_path(), o, 16, 2, 20);
  EXPECT_LE(small.n_tokens(), 20);
  EXPECT_FALSE(small.notes.empty());
  const VideoPlan tiny = plan_video(video_path(), o, 16, 2, 3);
  EXPECT_LE(tiny.n_tokens(), 3);
  EXPECT_GE(tiny.n_groups, 1);
}

TEST_F(VideoPrompt, AsImagesEncodesEveryFrameAlone) {
  VideoOptions o = options_for("default");
  o.as_images = true;
  o.n_frames = 4;
  const EncodedVideo v = engine_->encode_video(video_path(), o, 0);
  EXPECT_EQ(v.plan.n_groups, 4);
  EXPECT_EQ(v.blocks().size(), 4u);
  const std::string text = v.prompt_text();
  EXPECT_EQ(text.find("seconds"), std::string::npos);
  EXPECT_EQ(text.find("<|video_pad|>"), std::string::npos);
}

}  // namespace
}  // namespace reel
