// Qwen3.5 with images and videos against transformers (tests/fixtures/reference/q35-a-media.json,
// written by tools/reference/make_qwen35_vision_fixtures.py): the q35-a text model with a vision
// tower without DeepStack (q35-a-mmproj-f16.gguf), image and video prompts expanded as the
// session does it, 3-axis positions, logits at every position and 32 greedy tokens; and the
// loader's check that a text file and an mmproj belong together.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.h"
#include "prompt_check.h"
#include "test_engine.h"

namespace reel {
namespace {

using nlohmann::json;
using test::read_json;

const std::string kRepo = REEL_FIXTURE_SRC "/../../";
const std::string kModels = REEL_FIXTURE_DIR "/models/";

class Qwen35Media : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ref_ = read_json(REEL_FIXTURE_DIR "/reference/q35-a-media.json");
    video_ = read_json(REEL_FIXTURE_SRC "/video/video.json");
    const json all = read_json(REEL_FIXTURE_SRC "/vision/images.json");
    for (const auto& e : all["images"]) images_[e["name"].get<std::string>()] = e;
    // Batches of 29: every prompt takes several chunks, some split inside a medium.
    engine_ = new test::TestEngine(kModels + ref_["model"].get<std::string>(),
                                   kModels + ref_["mmproj"].get<std::string>(), 2, 29);
  }
  static void TearDownTestSuite() { delete engine_; }

  static std::string image_path(const json& name) {
    return kRepo + images_[name.get<std::string>()]["source"].get<std::string>();
  }
  static std::string video_path() { return kRepo + video_["video"]["file"].get<std::string>(); }
  static VideoOptions video_options(const std::string& sampling) {
    VideoOptions v;
    v.display_corrections = false;  // transformers' video readers apply neither
    if (sampling == "num_frames_5") v.n_frames = 5;
    return v;
  }

  // Expands the case's markers, checks ids and positions, runs the prompt and returns the
  // largest logit difference over the stored columns; greedy tokens must be identical.
  static double run_case(const json& c, const std::vector<EncodedImage>& images,
                         const std::vector<EncodedVideo>& videos) {
    const Tokenizer& tok = engine_->tokenizer();
    const TextConfig& t = engine_->model().text_config();
    std::vector<VisualBlock> blocks;
    const std::string text = expand_markers(c["text"].get<std::string>(), images, videos, blocks);
    if (c.contains("expanded_text")) {
      EXPECT_EQ(text, c["expanded_text"].get<std::string>());
    }
    const std::vector<int32_t> ids = tok.encode(text, true);
    EXPECT_EQ(ids, c["ids"].get<std::vector<int32_t>>());
    if (ids != c["ids"].get<std::vector<int32_t>>()) return 1e9;
    const PromptLayout L = layout_prompt(ids, blocks, 0, tok.token_id("<|image_pad|>"),
                                         tok.token_id("<|video_pad|>"), t.n_embd);
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(L.pos[i].t, c["position_ids"][0][i].get<int>()) << i;
      EXPECT_EQ(L.pos[i].h, c["position_ids"][1][i].get<int>()) << i;
      EXPECT_EQ(L.pos[i].w, c["position_ids"][2][i].get<int>()) << i;
    }
    EXPECT_EQ(L.next_pos - int(ids.size()), c["rope_delta"].get<int>());
    std::vector<float> logits;
    const std::vector<int32_t> got = engine_->run(ids, blocks, 32, logits);
    EXPECT_EQ(logits.size(), ids.size() * t.n_vocab);
    if (logits.size() != ids.size() * t.n_vocab) return 1e9;
    EXPECT_EQ(got, c["greedy"].get<std::vector<int32_t>>());
    const char* columns = c["kind"] == "image" ? "image_columns" : "video_columns";
    return test::max_column_diff(logits, t.n_vocab, ref_[columns], c["logits"]);
  }

  static json ref_, video_;
  static std::map<std::string, json> images_;
  static test::TestEngine* engine_;
};

json Qwen35Media::ref_, Qwen35Media::video_;
std::map<std::string, json> Qwen35Media::images_;
test::TestEngine* Qwen35Media::engine_ = nullptr;

TEST_F(Qwen35Media, LoadsAVisionTowerWithoutDeepStack) {
  const Model& m = engine_->model();
  ASSERT_NE(m.hybrid(), nullptr);
  EXPECT_EQ(m.vision().geometry().n_deepstack, 0);
  EXPECT_EQ(m.qwen3vl_vision().config().n_layer, ref_["vision_config"]["depth"].get<int>());
  EXPECT_EQ(m.qwen3vl_vision().config().n_embd, ref_["vision_config"]["hidden_size"].get<int>());
  EXPECT_EQ(m.vision().geometry().out_dim, m.text_config().n_embd);
}

// From the image files through Reel's decoder and resize. The vision encoder and the hybrid
// decoder both run in f32 with sums in another order than PyTorch (the delta rule's chunked
// form too); measured at most 3e-4 on these prompts (the resize of these fixtures moves no
// logit further), so 1e-3, Qwen3-VL's tolerance for logits of order 1-10, still holds with
// margin while a wrong position, row or layer shows as differences of order 1.
TEST_F(Qwen35Media, ImagePromptsMatchTransformers) {
  int n = 0;
  for (const auto& c : ref_["cases"]) {
    if (c["kind"] != "image") continue;
    SCOPED_TRACE(c["name"].get<std::string>());
    std::vector<EncodedImage> images;
    for (const auto& name : c["images"]) images.push_back(engine_->encode_image(image_path(name)));
    EXPECT_LE(run_case(c, images, {}), 1e-3);
    ++n;
  }
  EXPECT_EQ(n, 2);
}

// Decoded frames are exact (a lossless RGB video) and the resize is torch's, so everything
// downstream agrees to float32 rounding (measured at most 2e-4): 1e-3, as for Qwen3-VL's
// video prompts.
TEST_F(Qwen35Media, VideoPromptsMatchTransformers) {
  int n = 0;
  for (const auto& c : ref_["cases"]) {
    if (c["kind"] != "video") continue;
    SCOPED_TRACE(c["name"].get<std::string>());
    std::vector<EncodedImage> images;
    for (const auto& name : c["images"]) images.push_back(engine_->encode_image(image_path(name)));
    std::vector<EncodedVideo> videos;
    videos.push_back(
        engine_->encode_video(video_path(), video_options(c["sampling"].get<std::string>()), 0));
    EXPECT_LE(run_case(c, images, videos), 1e-3);
    ++n;
  }
  EXPECT_EQ(n, 3);
}

TEST(Qwen35MediaPair, RefusesFilesThatDoNotBelongTogether) {
  // Same width (32), but Qwen3-VL's tower feeds three DeepStack layers a Qwen3.5 model lacks,
  // and a Qwen3-VL text model expects those three layers from its tower.
  for (const auto& [text, mmproj] : {std::pair{"q35-a-f32.gguf", "tiny-a-mmproj-f32.gguf"},
                                     std::pair{"tiny-a-f32.gguf", "q35-a-mmproj-f16.gguf"}}) {
    try {
      Model::load(kModels + text, kModels + mmproj);
      ADD_FAILURE() << text << " with " << mmproj << " loaded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("do not belong together"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_NO_THROW(Model::load(kModels + "q35-b-f16.gguf", kModels + "q35-a-mmproj-f16.gguf"));
}

}  // namespace
}  // namespace reel
