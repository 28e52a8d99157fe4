// End-to-end tests of the `reel` binary: the happy paths of each command and the promise
// that bad input gives one clear error line and a non-zero exit, never a crash or a hang.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "run_reel.h"

namespace {

namespace fs = std::filesystem;

const std::string kReel = REEL_BINARY;
const std::string kModel = REEL_FIXTURE_DIR "/models/tiny-a-q8_0.gguf";
const std::string kModelF32 = REEL_FIXTURE_DIR "/models/tiny-a-f32.gguf";

using reel::test::Result;
using reel::test::slurp;

class Cli : public reel::test::ReelTest {};

TEST_F(Cli, TokenizePrintsIdsOnOneLine) {
  const auto f = file("t.txt", "Hello world");
  const Result r = reel("tokenize -m " + kModel + " -f " + f.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "9707 1879\n");  // the spec's test vector for "Hello world"
}

TEST_F(Cli, TokenizeParsesSpecialTokensAndAddsNothing) {
  const auto f = file("t.txt", "<|im_start|>user\n");
  const Result r = reel("tokenize -m " + kModel + " -f " + f.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "151644 872 198\n");
}

TEST_F(Cli, LogitsWritesEveryPosition) {
  const auto f = file("t.txt", "Hello world, hello Reel");
  const fs::path out = dir_ / "l.f32";
  const Result r = reel("logits -m " + kModelF32 + " -f " + f.string() + " -o " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const Result t = reel("tokenize -m " + kModelF32 + " -f " + f.string());
  const size_t n_tokens = std::count(t.out.begin(), t.out.end(), ' ') + 1;
  EXPECT_EQ(fs::file_size(out), n_tokens * 151936 * sizeof(float));
}

TEST_F(Cli, OneShotPromptAnswersAndStops) {
  const Result r = reel("-m " + kModel + " -p 'Hi there' -n 8 --temp 0 --stats json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  EXPECT_NE(r.err.find("\"decode_tps\""), std::string::npos) << r.err;
}

// --think: Qwen3-VL's template has no thinking switch, so "on" is refused in one line and "off"
// is the plain prompt (the same answer as without the flag).
TEST_F(Cli, ThinkOnNeedsATemplateWithTheSwitch) {
  const Result on = reel("-m " + kModel + " -p 'Hi there' -n 4 --temp 0 --think on");
  expect_clean_error(on, "no thinking switch");
  const Result off = reel("-m " + kModel + " -p 'Hi there' -n 4 --temp 0 --think off");
  const Result plain = reel("-m " + kModel + " -p 'Hi there' -n 4 --temp 0");
  ASSERT_EQ(off.code, 0) << off.err;
  EXPECT_EQ(off.out, plain.out);
  EXPECT_EQ(reel("-m " + kModel + " -p hi --think maybe").code, 2);
}

TEST_F(Cli, GreedyAnswersAreReproducible) {
  const Result a = reel("-m " + kModel + " -p 'Count to five' -n 12 --temp 0");
  const Result b = reel("-m " + kModel + " -p 'Count to five' -n 12 --temp 0");
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
}

TEST_F(Cli, ChatReadsTurnsClearsAndExits) {
  const Result r = reel("-m " + kModel + " -n 4 --temp 0",
                        "Hello\nAnd again\n<clear>\nOnce more\n<exit>\nnot read\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("dialogue cleared"), std::string::npos);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << r.out;  // three answers
}

TEST_F(Cli, ChatEndsAtEndOfInput) {
  const Result r = reel("-m " + kModel + " -n 2 --temp 0", "Hello\n");
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(Cli, MissingModelFile) {
  expect_clean_error(reel("-m /nonexistent/model.gguf -p hi"), "/nonexistent/model.gguf");
}

TEST_F(Cli, NotAGgufFile) {
  const auto f = file("junk.gguf", "this is not a gguf file at all, just text\n");
  expect_clean_error(reel("-m " + f.string() + " -p hi"), f.string());
}

TEST_F(Cli, EmptyFile) {
  const auto f = file("empty.gguf", "");
  expect_clean_error(reel("-m " + f.string() + " -p hi"), f.string());
}

TEST_F(Cli, TruncatedModelAtManyLengths) {
  const std::string whole = slurp(kModel);
  ASSERT_GT(whole.size(), 1000000u);
  for (size_t len :
       {size_t(3), size_t(24), size_t(1000), size_t(100000), whole.size() / 2, whole.size() - 1}) {
    const auto f = file("cut.gguf", whole.substr(0, len));
    expect_clean_error(reel("-m " + f.string() + " -p hi -n 1"), f.string());
  }
}

TEST_F(Cli, UnreadablePromptFile) {
  expect_clean_error(reel("-m " + kModel + " -f /nonexistent/prompt.txt"),
                     "/nonexistent/prompt.txt");
  expect_clean_error(reel("tokenize -m " + kModel + " -f /nonexistent/prompt.txt"),
                     "/nonexistent/prompt.txt");
}

TEST_F(Cli, PromptLongerThanTheContext) {
  std::string long_prompt;
  for (int i = 0; i < 200; ++i) long_prompt += "word ";
  const auto f = file("long.txt", long_prompt);
  expect_clean_error(reel("-m " + kModel + " -c 64 -f " + f.string()), "context");
  expect_clean_error(
      reel("logits -m " + kModel + " -c 64 -f " + f.string() + " -o " + (dir_ / "x.f32").string()),
      "context");
}

TEST_F(Cli, AbsurdFlagsAreRefused) {
  EXPECT_NE(reel("-m " + kModel + " -p hi -t 0").code, 0);
  EXPECT_NE(reel("-m " + kModel + " -p hi -c -5").code, 0);
  EXPECT_NE(reel("-m " + kModel + " -p hi --top-p 7").code, 0);
  EXPECT_NE(reel("-m " + kModel + " -p hi -n banana").code, 0);
  const Result huge = reel("-m " + kModel + " -p hi -c 16000000");
  EXPECT_NE(huge.code, 0);
  EXPECT_LT(huge.code, 124);
}

TEST_F(Cli, MissingModelFlag) {
  expect_clean_error(reel("-p hi"), "-m");
}

// Byte-level surgery on a copy of the fixture model: replaces the first occurrence of `from`
// (same length as `to`) in the header.
std::string patched_model(const std::string& from, const std::string& to) {
  std::string bytes = slurp(kModel);
  const size_t at = bytes.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) bytes.replace(at, from.size(), to);
  return bytes;
}

TEST_F(Cli, MissingTensorIsNamed) {
  const auto f = file("m.gguf", patched_model("blk.1.ffn_up.weight", "blk.1.ffn_XX.weight"));
  expect_clean_error(reel("-m " + f.string() + " -p hi"), "blk.1.ffn_up.weight is missing");
}

TEST_F(Cli, MisShapedTensorIsNamed) {
  // output_norm.weight is 1-D: after its name come n_dims (u32 = 1) and ne[0] (u64 = 32).
  std::string name = "output_norm.weight";
  std::string from = name + std::string("\x01\0\0\0\x20\0\0\0", 8);
  std::string to = name + std::string("\x01\0\0\0\x1f\0\0\0", 8);
  const auto f = file("m.gguf", patched_model(from, to));
  expect_clean_error(reel("-m " + f.string() + " -p hi"), "output_norm.weight has shape [31]");
}

TEST_F(Cli, OtherArchitectureIsRefused) {
  std::string bytes = slurp(kModel);
  for (size_t at = 0; (at = bytes.find("qwen3vl", at)) != std::string::npos; at += 7)
    bytes.replace(at, 7, "llama99");
  const auto f = file("m.gguf", bytes);
  expect_clean_error(reel("-m " + f.string() + " -p hi"),
                     "architecture 'llama99' is not supported");
}

TEST_F(Cli, VisionFileGivenAsTextModel) {
  expect_clean_error(reel("-m " REEL_FIXTURE_DIR "/models/tiny-a-mmproj-f32.gguf -p hi"),
                     "vision projector (mmproj) file, not a text model");
}

const std::string kMmproj = REEL_FIXTURE_DIR "/models/tiny-a-mmproj-f32.gguf";
const std::string kImage = REEL_FIXTURE_SRC "/images/rgb-97x61.png";   // 77 visual tokens
const std::string kImage2 = REEL_FIXTURE_SRC "/images/rgb-32x32.png";  // 64 visual tokens

// The --stats json objects on stderr, one per answer.
std::vector<nlohmann::json> stats_of(const std::string& err) {
  std::vector<nlohmann::json> out;
  std::istringstream in(err);
  for (std::string l; std::getline(in, l);)
    if (l.rfind("{", 0) == 0) out.push_back(nlohmann::json::parse(l));
  return out;
}

TEST_F(Cli, ImageOneShotReportsImageStats) {
  const Result r =
      reel("-m " + kModelF32 + " --mmproj " + kMmproj + " --image " + kImage + " --image " +
           kImage2 + " -p 'Describe the images.' -n 4 --temp 0 --stats json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto stats = stats_of(r.err);
  ASSERT_EQ(stats.size(), 1u) << r.err;
  EXPECT_EQ(stats[0]["images"], 2);
  EXPECT_EQ(stats[0]["frames"], 0);
  EXPECT_EQ(stats[0]["visual_tokens"], 141);
  EXPECT_EQ(stats[0]["image_tokens"], 141);
}

TEST_F(Cli, ImageChatBringsImagesInWhereTheTurnSaysImage) {
  const Result r = reel("-m " + kModelF32 + " --mmproj " + kMmproj + " --image " + kImage +
                            " -n 3 --temp 0 --stats json",
                        "Hello\n<image> What is this?\nAnd now?\n<clear>\n<image> Again\n");
  ASSERT_EQ(r.code, 0) << r.err;
  // Stats lines, one per answer: the images come in on turns 2 and 4 (after <clear>), and the
  // encoding is done once: the second time reuses it.
  const auto stats = stats_of(r.err);
  ASSERT_EQ(stats.size(), 4u) << r.err;
  EXPECT_EQ(stats[0]["images"], 0);
  EXPECT_EQ(stats[1]["images"], 1);
  EXPECT_EQ(stats[1]["frames"], 0);
  EXPECT_EQ(stats[1]["visual_tokens"], 77);
  EXPECT_EQ(stats[2]["images"], 0);
  EXPECT_EQ(stats[3]["images"], 1);
  EXPECT_EQ(stats[3]["vision_encode_ms"], 0) << "the encoding is reused";
}

TEST_F(Cli, EncodeWritesMainThenDeepStackPerToken) {
  const fs::path out = dir_ / "v.f32";
  const Result r =
      reel("encode --mmproj " + kMmproj + " --image " + kImage + " -o " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("77 tokens of 128 floats"), std::string::npos) << r.out;
  EXPECT_EQ(fs::file_size(out), 77u * 4 * 32 * sizeof(float));
}

// --vision-precision int16 on the F16 vision file: the same tokens within the option's promise
// (5e-3 of the output's rms; the vision test holds it against transformers); a value other than
// f32 or int16 is a usage error.
TEST_F(Cli, EncodeTakesVisionPrecision) {
  const std::string mmproj16 = REEL_FIXTURE_DIR "/models/tiny-a-mmproj-f16.gguf";
  const std::string base = "encode --mmproj " + mmproj16 + " --image " + kImage + " -o ";
  const fs::path a = dir_ / "f32.f32", b = dir_ / "int16.f32";
  ASSERT_EQ(reel(base + a.string()).code, 0);
  const Result r = reel(base + b.string() + " --vision-precision int16");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string fa = slurp(a), fb = slurp(b);
  ASSERT_EQ(fa.size(), fb.size());
  ASSERT_GT(fa.size(), 0u);
  const auto* x = reinterpret_cast<const float*>(fa.data());
  const auto* y = reinterpret_cast<const float*>(fb.data());
  const size_t n = fa.size() / sizeof(float);
  double sq = 0, worst = 0;
  for (size_t i = 0; i < n; ++i) {
    sq += double{x[i]} * x[i];
    worst = std::max(worst, double{std::fabs(x[i] - y[i])});
  }
  EXPECT_LT(worst, 5e-3 * std::sqrt(sq / double(n)));
  expect_clean_error(reel(base + (dir_ / "c.f32").string() + " --vision-precision bf16"),
                     "--vision-precision");
  expect_clean_error(reel("-m " + kModel + " --vision-precision fast -p hi"), "--vision-precision");
}

TEST_F(Cli, BadImagesGiveOneLine) {
  const std::string base = "-m " + kModelF32 + " --mmproj " + kMmproj + " -p hi -n 1 --image ";
  expect_clean_error(reel(base + "/nonexistent/a.png"), "/nonexistent/a.png");
  const auto junk = file("junk.png", "definitely not a png");
  expect_clean_error(reel(base + junk.string()), junk.string());
  const std::string png = slurp(kImage);
  for (size_t len : {size_t(8), size_t(40), png.size() / 2}) {
    const auto cut = file("cut.png", png.substr(0, len));
    expect_clean_error(reel(base + cut.string()), cut.string());
  }
  const auto empty = file("empty.jpg", "");
  expect_clean_error(reel(base + empty.string()), empty.string());
  expect_clean_error(reel(base + dir_.string()), dir_.string());
}

TEST_F(Cli, ImageWithoutVisionModel) {
  expect_clean_error(reel("-m " + kModel + " --image " + kImage + " -p hi"), "--mmproj");
}

TEST_F(Cli, VisionModelWithoutVisionEncoder) {
  std::string bytes = slurp(kMmproj);
  const std::string key = "clip.has_vision_encoder";
  const size_t at = bytes.find(key);
  ASSERT_NE(at, std::string::npos);
  bytes[at + key.size() + 4] = 0;  // after the key: u32 type (bool), then the value byte
  const auto f = file("novision.gguf", bytes);
  expect_clean_error(
      reel("-m " + kModel + " --mmproj " + f.string() + " --image " + kImage + " -p hi"),
      "no vision encoder");
}

TEST_F(Cli, VisionModelOfAnotherTextModel) {
  std::string bytes = slurp(kModelF32);
  const std::string key = "qwen3vl.n_deepstack_layers";
  const size_t at = bytes.find(key);
  ASSERT_NE(at, std::string::npos);
  bytes[at + key.size() + 4] = 2;  // u32 type, then the value's low byte: 3 -> 2
  const auto f = file("other.gguf", bytes);
  const Result r =
      reel("-m " + f.string() + " --mmproj " + kMmproj + " --image " + kImage + " -p hi");
  expect_clean_error(r, "do not belong together");
  EXPECT_NE(r.err.find(kMmproj), std::string::npos);
  EXPECT_NE(r.err.find(f.string()), std::string::npos);
}

TEST_F(Cli, AbsurdImageBudgetsAreRefused) {
  const std::string base =
      "-m " + kModelF32 + " --mmproj " + kMmproj + " --image " + kImage + " -p hi ";
  EXPECT_NE(reel(base + "--image-max-tokens 0").code, 0);
  EXPECT_NE(reel(base + "--image-min-tokens -3").code, 0);
}

const std::string kVideo = REEL_FIXTURE_SRC "/video/lossless-112x72.mkv";  // 30 frames, 10 fps
const std::string kClip = REEL_TEST_DATA "/media/clip-10s-720x358-h264.mp4";
const std::string kMmprojF16 = REEL_FIXTURE_DIR "/models/tiny-a-mmproj-f16.gguf";

nlohmann::json frames_json(const Result& r) {
  return nlohmann::json::parse(r.out);
}

TEST_F(Cli, FramesPrintsTheReferencePlanWithoutAModel) {
  const Result r = reel("frames " + kVideo);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = frames_json(r);
  EXPECT_EQ(j["indices"], nlohmann::json::parse("[0, 6, 12, 17, 23, 29]"));
  EXPECT_EQ(j["group_timestamps"],
            nlohmann::json::parse(R"(["<0.3 seconds>", "<1.4 seconds>", "<2.6 seconds>"])"));
  EXPECT_EQ(j["tokens"], 24);
}

TEST_F(Cli, FramesEvenlyAndWithinAContext) {
  auto j = frames_json(reel("frames " + kClip + " --frames 8"));
  EXPECT_EQ(j["indices"].size(), 8u);
  EXPECT_EQ(j["video"]["frames"], 240);
  EXPECT_EQ(j["video"]["width"], 854);  // 720 wide at SAR 427:360
  j = frames_json(reel("frames " + kClip + " -c 1024"));
  // The whole prompt (template, timestamps, markers) and the answer's room fit the context;
  // the answer's room is 512 tokens, at most a quarter of the context.
  EXPECT_EQ(j["answer_reserve"], 256);
  EXPECT_LE(j["prompt_tokens"].get<int>() + 256, 1024);
  EXPECT_GT(j["prompt_tokens"].get<int>(), j["tokens"].get<int>());
  EXPECT_FALSE(j["notes"].empty());
}

TEST_F(Cli, LegacyVideoCommandLineChats) {
  const Result r = reel(kMmprojF16 + " " + kModel + " " + kVideo + " 4 -n 3 --temp 0",
                        "<image> What happens?\nAnd then?\n<exit>\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("cold"), std::string::npos) << r.err;  // the original app's load table
  EXPECT_NE(r.err.find("4 frame(s)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ms/frame"), std::string::npos) << r.err;
  // The same question through the modern one-shot flags is the same prompt, the same answer.
  const Result legacy =
      reel(kMmprojF16 + " " + kModel + " " + kVideo + " 4 -n 4 --temp 0 --stats json",
           "<image>What happens?\n<exit>\n");
  const Result modern = reel("-m " + kModel + " --mmproj " + kMmprojF16 + " --video " + kVideo +
                             " --frames 4 -p 'What happens?' -n 4 --temp 0 --stats json");
  ASSERT_EQ(legacy.code, 0) << legacy.err;
  ASSERT_EQ(modern.code, 0) << modern.err;
  const auto a = stats_of(legacy.err), b = stats_of(modern.err);
  ASSERT_EQ(a.size(), 1u) << legacy.err;
  ASSERT_EQ(b.size(), 1u) << modern.err;
  EXPECT_EQ(a[0]["prompt_tokens"], b[0]["prompt_tokens"]);
  EXPECT_EQ(a[0]["generated_ids"], b[0]["generated_ids"]);
}

TEST_F(Cli, LegacyImagesCommandLine) {
  const Result r = reel(kMmprojF16 + " " + kModel + " " + kImage + " " + kImage2 + " -n 2 --temp 0",
                        "<image> Compare them.\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("2 image(s)"), std::string::npos) << r.err;
}

// A Qwen3.5 pair (hybrid text model, vision tower without DeepStack) through both command
// lines with no special flag: the original app's positional one chats about 4 frames, the modern
// one answers once (numbers against transformers: test_qwen35_media). Asked the same text, they
// build the same prompt and give the same greedy tokens.
TEST_F(Cli, Qwen35PairOnBothCommandLines) {
  const std::string model = REEL_FIXTURE_DIR "/models/q35-a-f32.gguf";
  const std::string mmproj = REEL_FIXTURE_DIR "/models/q35-a-mmproj-f16.gguf";
  const Result modern = reel("-m " + model + " --mmproj " + mmproj + " --video " + kVideo +
                             " --frames 4 -p 'What happens?' -n 6 --temp 0 --stats json");
  ASSERT_EQ(modern.code, 0) << modern.err;
  ASSERT_FALSE(modern.out.empty());
  // "<image>" is replaced where it stands, so the question must follow it without a space to be
  // the same prompt as -p's (media, then the text): then the greedy answers are the same tokens.
  const Result legacy = reel(mmproj + " " + model + " " + kVideo + " 4 -n 6 --temp 0 --stats json",
                             "<image>What happens?\n<exit>\n");
  ASSERT_EQ(legacy.code, 0) << legacy.err;
  EXPECT_FALSE(legacy.out.empty());
  const auto a = stats_of(modern.err), b = stats_of(legacy.err);
  ASSERT_EQ(a.size(), 1u) << modern.err;
  ASSERT_EQ(b.size(), 1u) << legacy.err;
  EXPECT_EQ(b[0]["frames"], 4);
  EXPECT_EQ(a[0]["prompt_tokens"], b[0]["prompt_tokens"]);
  EXPECT_EQ(a[0]["generated_ids"], b[0]["generated_ids"]);
}

TEST_F(Cli, VideoOneShotNativeAndAsImages) {
  const std::string base = "-m " + kModel + " --mmproj " + kMmprojF16 + " --video " + kVideo +
                           " -p 'Describe.' -n 2 --temp 0 --stats json";
  Result r = reel(base);
  ASSERT_EQ(r.code, 0) << r.err;
  auto stats = stats_of(r.err);
  ASSERT_EQ(stats.size(), 1u) << r.err;
  EXPECT_EQ(stats[0]["frames"], 6);
  EXPECT_EQ(stats[0]["visual_tokens"], 24);
  EXPECT_EQ(stats[0]["video_tokens"], 24);
  r = reel(base + " --video-as-images --frames 3");
  ASSERT_EQ(r.code, 0) << r.err;
  stats = stats_of(r.err);
  ASSERT_EQ(stats.size(), 1u) << r.err;
  EXPECT_EQ(stats[0]["frames"], 3);
}

TEST_F(Cli, VideoLongerThanTheBudgetIsSampledDown) {
  const Result r = reel("-m " + kModel + " --mmproj " + kMmprojF16 + " --video " + kClip +
                        " -p 'Describe.' -n 2 --temp 0 -c 1024 --stats json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("left for the video: took"), std::string::npos) << r.err;
  const auto stats = stats_of(r.err);
  ASSERT_EQ(stats.size(), 1u) << r.err;
  EXPECT_LE(stats[0]["prompt_tokens"].get<int>() + 2, 1024);
}

TEST_F(Cli, BadVideosGiveOneLine) {
  const std::string base = "-m " + kModel + " --mmproj " + kMmprojF16 + " -p hi -n 1 --video ";
  expect_clean_error(reel(base + "/nonexistent/v.mp4"), "/nonexistent/v.mp4");
  const auto text = file("notes.mp4", "this is not a video");
  expect_clean_error(reel(base + text.string()), text.string());
  const std::string clip = slurp(kClip);
  for (size_t len : {size_t(100), size_t(5000), clip.size() / 3}) {
    const auto cut = file("cut.mp4", clip.substr(0, len));
    const Result r = reel(base + cut.string());
    EXPECT_LT(r.code, 124) << "crash or hang at " << len << ": " << r.err;
    if (r.code != 0) expect_clean_error(r, cut.string());
  }
  expect_clean_error(reel("frames /nonexistent/v.mp4"), "/nonexistent/v.mp4");
  const auto audio = dir_ / "tone.m4a";
  ASSERT_EQ(
      std::system(("ffmpeg -loglevel error -f lavfi -i sine=duration=1 " + audio.string()).c_str()),
      0);
  expect_clean_error(reel("frames " + audio.string()), audio.string());
}

TEST_F(Cli, LegacyFramesMustBeAPositiveNumber) {
  for (const char* frames : {"0", "-3", "eight", "1e9", "99999999999"}) {
    const Result r = reel(kMmprojF16 + " " + kModel + " " + kVideo + " " + frames, "<exit>\n");
    expect_clean_error(r, "FRAMES");
    EXPECT_EQ(r.code, 2) << "a usage error";
  }
}

}  // namespace
