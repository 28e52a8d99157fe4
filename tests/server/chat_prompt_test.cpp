// Prompts from OpenAI-style messages (src/pipeline/chat_prompt.h): the template text, media
// markers expanded into exactly the encodings' pad tokens, identities that follow the bytes
// (so a re-sent medium keeps its KV prefix), the memo of encodings, and context refusals that
// name the numbers. Uses the tiny-a fixture pair.
#include "pipeline/chat_prompt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "pipeline/chat_template.h"
#include "pipeline/executor.h"
#include "pipeline/media_cache.h"
#include "pipeline/sequence.h"

namespace reel {
namespace {

const std::string kModel = REEL_FIXTURE_DIR "/models/tiny-a-q8_0.gguf";
const std::string kMmproj = REEL_FIXTURE_DIR "/models/tiny-a-mmproj-f16.gguf";
const std::string kImage = REEL_FIXTURE_SRC "/images/rgb-97x61.png";
const std::string kOtherImage = REEL_FIXTURE_SRC "/images/rgb-70x45.webp";
const std::string kVideo = REEL_FIXTURE_SRC "/video/lossless-112x72.mkv";

ChatPart text(std::string t) {
  return {ChatPart::Kind::Text, std::move(t)};
}
ChatPart image(std::string p) {
  return {ChatPart::Kind::Image, std::move(p)};
}
ChatPart video(std::string p) {
  return {ChatPart::Kind::Video, std::move(p)};
}

class ChatPromptTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = Model::load(kModel, kMmproj);
    exec_ = std::make_unique<Executor>(*model_, ExecutorOptions{2, 64});
  }
  static void TearDownTestSuite() {
    exec_.reset();
    model_.reset();
  }
  ChatPrompt build(const std::vector<ChatTurn>& turns, int n_ctx = 4096, int max_tokens = -1) {
    ChatPromptOptions o;
    o.n_ctx = n_ctx;
    o.max_tokens = max_tokens;
    return build_chat_prompt(*model_, exec_->ctx(), turns, o, memo_);
  }
  int count(const std::vector<TokenId>& ids, TokenId id) {
    return int(std::count(ids.begin(), ids.end(), id));
  }
  std::vector<uint64_t> keys(const ChatPrompt& p) {
    return prompt_keys(p.ids, p.blocks, model_->image_pad(), model_->video_pad());
  }

  static std::shared_ptr<const Model> model_;
  static std::unique_ptr<Executor> exec_;
  MediaMemo memo_;
};
std::shared_ptr<const Model> ChatPromptTest::model_;
std::unique_ptr<Executor> ChatPromptTest::exec_;

TEST(ChatPromptRender, TextTurnsRenderAsTheChatTemplate) {
  const std::vector<ChatTurn> turns = {{"system", {text("Be brief.")}},
                                       {"user", {text("Hello "), text("there")}},
                                       {"assistant", {text("Hi.")}},
                                       {"user", {text("Again?")}}};
  const std::vector<ChatMessage> same = {
      {"system", "Be brief."}, {"user", "Hello there"}, {"assistant", "Hi."}, {"user", "Again?"}};
  EXPECT_EQ(render_chat_turns(turns), render_chat(same, true));
}

TEST(ChatPromptRender, MediaBecomeOneMarkerEachInOrder) {
  const std::string s =
      render_chat_turns({{"user", {image("a"), text("x"), video("b"), image("c")}}});
  EXPECT_EQ(s,
            "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>x"
            "<|vision_start|><|video_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>"
            "<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatPromptRender, UnknownRoleIsRefused) {
  EXPECT_THROW(render_chat_turns({{"tool", {text("x")}}}), Error);
}

TEST_F(ChatPromptTest, TextOnlyPromptIsTheTokenizedTemplate) {
  const std::vector<ChatTurn> turns = {{"user", {text("What color is the circle?")}}};
  const ChatPrompt p = build(turns);
  EXPECT_EQ(p.ids, model_->tokenizer().encode(render_chat_turns(turns), true));
  EXPECT_TRUE(p.blocks.empty());
  EXPECT_EQ(p.n_images + p.n_videos, 0);
}

TEST_F(ChatPromptTest, ImageExpandsIntoItsTokensWithAnIdentityOfItsBytes) {
  const ChatPrompt p = build({{"user", {image(kImage), text("What is this?")}}});
  ASSERT_EQ(p.blocks.size(), 1u);
  EXPECT_EQ(p.n_images, 1);
  EXPECT_GT(p.image_tokens, 0);
  EXPECT_EQ(count(p.ids, model_->image_pad()), p.image_tokens);
  EXPECT_EQ(p.blocks[0].hm * p.blocks[0].wm, p.image_tokens);
  EXPECT_NE(p.blocks[0].id, 0u);
  EXPECT_EQ(p.memo_hits, 0);

  // The same bytes under another name, in a later build: the same identity, from the memo.
  const std::string copy = ::testing::TempDir() + "/chat_prompt_copy.png";
  std::filesystem::copy_file(kImage, copy, std::filesystem::copy_options::overwrite_existing);
  const ChatPrompt again = build({{"user", {image(copy), text("And now?")}}});
  ASSERT_EQ(again.blocks.size(), 1u);
  EXPECT_EQ(again.blocks[0].id, p.blocks[0].id);
  EXPECT_EQ(again.memo_hits, 1);
  EXPECT_EQ(again.vision_encode_ms, 0.0);

  // Without the memo the identity is the same too (it is the bytes', not the encoding's).
  MediaMemo fresh;
  ChatPromptOptions o;
  const ChatPrompt cold =
      build_chat_prompt(*model_, exec_->ctx(), {{"user", {image(copy)}}}, o, fresh);
  EXPECT_EQ(cold.blocks[0].id, p.blocks[0].id);

  const ChatPrompt other = build({{"user", {image(kOtherImage)}}});
  EXPECT_NE(other.blocks[0].id, p.blocks[0].id);
}

TEST_F(ChatPromptTest, ResentHistoryKeepsThePreviousPromptAsPrefix) {
  std::vector<ChatTurn> turns = {{"user", {image(kImage), text("What is this?")}}};
  const ChatPrompt first = build(turns);
  turns.push_back({"assistant", {text("A red square.")}});
  turns.push_back({"user", {text("Where is it?")}});
  const ChatPrompt second = build(turns);
  const std::vector<uint64_t> a = keys(first), b = keys(second);
  ASSERT_LT(a.size(), b.size());
  EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin()));
}

TEST_F(ChatPromptTest, VideoExpandsIntoGroupsWithStableIdentities) {
  const ChatPrompt p = build({{"user", {video(kVideo), text("What happens?")}}});
  EXPECT_EQ(p.n_videos, 1);
  ASSERT_FALSE(p.blocks.empty());
  EXPECT_EQ(count(p.ids, model_->video_pad()), p.video_tokens);
  int rows = 0;
  for (const VisualBlock& b : p.blocks) rows += b.hm * b.wm;
  EXPECT_EQ(rows, p.video_tokens);
  for (size_t i = 1; i < p.blocks.size(); ++i) EXPECT_NE(p.blocks[i].id, p.blocks[0].id);

  const ChatPrompt again = build({{"user", {video(kVideo), text("What happens?")}}});
  EXPECT_EQ(again.memo_hits, 1);
  EXPECT_EQ(keys(again), keys(p));
}

TEST_F(ChatPromptTest, MixedMediaKeepTheirOrder) {
  const ChatPrompt p = build({{"user", {video(kVideo), image(kImage), text("Compare.")}}});
  ASSERT_GE(p.blocks.size(), 2u);
  // The video's groups come first, the image last.
  const auto first_video = std::find(p.ids.begin(), p.ids.end(), model_->video_pad());
  const auto first_image = std::find(p.ids.begin(), p.ids.end(), model_->image_pad());
  EXPECT_LT(first_video, first_image);
  EXPECT_EQ(p.blocks.back().hm * p.blocks.back().wm, p.image_tokens);
}

TEST_F(ChatPromptTest, OverflowIsRefusedWithTheNumbers) {
  const std::string long_text(3000, 'a');
  try {
    build({{"user", {text(long_text + " " + long_text)}}}, /*n_ctx=*/256);
    FAIL() << "expected ContextFull";
  } catch (const ContextFull& e) {
    EXPECT_NE(std::string(e.what()).find("256"), std::string::npos) << e.what();
  }
  // A video in a context too small for even one group after the answer's reserve.
  EXPECT_THROW(build({{"user", {video(kVideo), text("x")}}}, /*n_ctx=*/64, /*max_tokens=*/60),
               ContextFull);
}

TEST_F(ChatPromptTest, UnreadableMediumNamesTheFile) {
  try {
    build({{"user", {image("/nonexistent/x.png")}}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.png"), std::string::npos) << e.what();
  }
}

// With a media cache, a fresh memo (another server, or the same one after eviction) reads the
// encodings from disk instead of running the vision encoder, and the prompt is the same.
TEST_F(ChatPromptTest, MediaCacheServesWhatTheMemoNoLongerHolds) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / ("chat_prompt_cache_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  MediaCache cache(0, dir.string());  // disk only, as `reel serve --media-cache`
  ChatPromptOptions o;
  o.media_cache = &cache;
  o.model_key = model_identity(*model_->vision_file());
  const std::vector<ChatTurn> turns = {
      {"user", {image(kImage), video(kVideo), text("What is shown?")}}};
  MediaMemo first_memo, second_memo;
  const ChatPrompt a = build_chat_prompt(*model_, exec_->ctx(), turns, o, first_memo);
  EXPECT_EQ(a.cache_hits, 0);
  EXPECT_GT(a.vision_encode_ms, 0);
  EXPECT_EQ(cache.stats().disk_writes, 2);
  const ChatPrompt b = build_chat_prompt(*model_, exec_->ctx(), turns, o, second_memo);
  EXPECT_EQ(b.cache_hits, 2);
  EXPECT_EQ(b.memo_hits, 0);
  EXPECT_EQ(b.vision_encode_ms, 0);
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_EQ(keys(a), keys(b));
  ASSERT_EQ(a.blocks.size(), b.blocks.size());
  const size_t dim = size_t(model_->vision().geometry().out_dim);
  for (size_t i = 0; i < a.blocks.size(); ++i)
    for (size_t r = 0; r < size_t(a.blocks[i].hm * a.blocks[i].wm) * dim; ++r)
      ASSERT_EQ(a.blocks[i].main[r], b.blocks[i].main[r]) << i;  // bit-exact from disk
  std::filesystem::remove_all(dir);
}

TEST_F(ChatPromptTest, VideoLongerThanTheLimitIsRefusedWithIt) {
  ChatPromptOptions o;
  o.max_video_seconds = 0.1;  // the fixture clip lasts longer
  MediaMemo memo;
  try {
    build_chat_prompt(*model_, exec_->ctx(), {{"user", {video(kVideo), text("x")}}}, o, memo);
    ADD_FAILURE() << "a long video was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("over the limit of 0.1 s"), std::string::npos) << e.what();
  }
}

TEST(ChatPromptNoVision, MediaNeedAVisionModel) {
  auto model = Model::load(kModel);
  Executor exec(*model, ExecutorOptions{1, 16});
  MediaMemo memo;
  EXPECT_THROW(
      build_chat_prompt(*model, exec.ctx(), {{"user", {image(kImage)}}}, ChatPromptOptions{}, memo),
      Error);
}

TEST(MediaMemoTest, EvictsTheLeastRecentlyUsed) {
  MediaMemo memo(/*max_entries=*/2, /*max_bytes=*/1000);
  auto img = [](size_t floats) {
    auto e = std::make_shared<EncodedImage>();
    e->main.resize(floats);
    return std::shared_ptr<const EncodedImage>(e);
  };
  memo.put(1, img(10));
  memo.put(2, img(10));
  EXPECT_NE(memo.image(1), nullptr);  // 1 is now more recent than 2
  memo.put(3, img(10));
  EXPECT_EQ(memo.size(), 2u);
  EXPECT_EQ(memo.image(2), nullptr);
  EXPECT_NE(memo.image(1), nullptr);
  EXPECT_NE(memo.image(3), nullptr);
  memo.put(4, img(1000));  // 4000 bytes: over the whole budget, not kept
  EXPECT_EQ(memo.image(4), nullptr);
  EXPECT_EQ(memo.size(), 2u);
  memo.put(5, img(200));  // 800 bytes: evicts until it fits
  EXPECT_LE(memo.bytes(), 1000u);
  EXPECT_NE(memo.image(5), nullptr);
}

TEST(FileIdentity, FollowsBytesAndSalt) {
  const std::string a = ::testing::TempDir() + "/ident_a", b = ::testing::TempDir() + "/ident_b";
  std::ofstream(a) << "same bytes";
  std::ofstream(b) << "same bytes";
  EXPECT_EQ(file_identity(a, 1), file_identity(b, 1));
  EXPECT_NE(file_identity(a, 1), file_identity(a, 2));
  std::ofstream(b) << "other bytes";
  EXPECT_NE(file_identity(a, 1), file_identity(b, 1));
  EXPECT_THROW(file_identity("/nonexistent/file", 1), Error);
}

}  // namespace
}  // namespace reel
