// The original RK3588 app's command line on the NPU, end to end: the `reel` binary with .rknn and
// .rkllm files, the fake runtimes behind REEL_RKNN_LIB / REEL_RKLLM_LIB, a real clip and photo
// from tests/data, questions on stdin; checks what the user sees and what the runtimes were
// asked (the fakes' call log).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../../cli/process.h"
#include "../../cli/run_reel.h"
#include "../../emulation.h"

namespace reel::test {
namespace {

const std::string kClip = REEL_TEST_DATA "/media/clip-10s-720x358-h264.mp4";
const std::string kPhoto = REEL_TEST_DATA "/media/photo-640x488.jpeg";

class NpuCliTest : public ReelTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    ReelTest::SetUp();
    log_ = dir_ / "calls.log";
    ::setenv("REEL_FAKE_NPU_LOG", log_.c_str(), 1);
    ::setenv("REEL_RKNN_LIB", FAKE_RKNN_LIB, 1);
    ::setenv("REEL_RKLLM_LIB", v130() ? FAKE_RKLLM_130_LIB : FAKE_RKLLM_123_LIB, 1);
    ::unsetenv("REEL_FAKE_NPU_FAIL");
    ::unsetenv("REEL_RKLLM_ABI");
    ::unsetenv("REEL_FAKE_RKLLM_DELAY_MS");
    // 32x32 RGB in, 2 outputs of 4 tokens x 8 (the fake language model takes 16 floats a token).
    vision_ = file("qwen3-vl-2b-vision_rk3588.rknn",
                   "FAKE-RKNN input 32 32 nhwc outputs 2 tokens 4 embed 8\n")
                  .string();
    text_ = file("qwen3-vl-2b-instruct_w8a8_rk3588.rkllm",
                 std::string("FAKE-RKLLM ") + GetParam() + "\nanswer A red| square| moves.\n")
                .string();
  }
  void TearDown() override {
    ::unsetenv("REEL_FAKE_NPU_FAIL");
    ::unsetenv("REEL_FAKE_RKLLM_DELAY_MS");
    ReelTest::TearDown();
  }
  bool v130() const { return std::string(GetParam()) == "1.3.0"; }

  std::vector<std::string> calls(const std::string& function) const {
    std::vector<std::string> out;
    std::istringstream in(slurp(log_));
    for (std::string l; std::getline(in, l);)
      if (l.rfind(function + " ", 0) == 0) out.push_back(l);
    return out;
  }
  static bool has(const std::string& line, const std::string& field) {
    return (line + " ").find(" " + field + " ") != std::string::npos;
  }
  static std::string field(const std::string& line, const std::string& key) {
    const size_t at = line.find(" " + key + "=");
    if (at == std::string::npos) return "";
    const size_t b = at + key.size() + 2;
    return line.substr(b, line.find(' ', b) - b);
  }

  fs::path log_;
  std::string vision_, text_;
};

INSTANTIATE_TEST_SUITE_P(Abi, NpuCliTest, ::testing::Values("1.2.3", "1.3.0"),
                         [](const auto& info) {
                           return std::string(info.param) == "1.3.0" ? "v1_3_0" : "v1_2_3";
                         });

TEST_P(NpuCliTest, SeedCommandLineChatsAboutAVideo) {
  const Result r =
      reel(vision_ + " " + text_ + " " + kClip + " 4",
           "<image>What happens in the video?\n<clear>\nAnd then?\n<exit>\nnot asked\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "A red square moves.\nA red square moves.\n");
  // The runtime's ABI, the original app's load table, the vision time, the runtime's speeds.
  EXPECT_NE(r.err.find(std::string("reel: NPU: RKLLM runtime ") +
                       (v130() ? FAKE_RKLLM_130_LIB : FAKE_RKLLM_123_LIB) + ": ABI " + GetParam()),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("reel: NPU: RKNN runtime " FAKE_RKNN_LIB ": api 2.3.2 (fake), driver 0.9.8"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("reel: vision   " + vision_), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("reel: text     " + text_), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[0 image(s), 4 frame(s), 16 visual tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ms/frame)]"), std::string::npos) << r.err;
  // The fake reports 3 tokens in 300 ms.
  EXPECT_NE(r.err.find("generated 3 tokens, 10.0 tok/s | NPU runtime memory 1234 MiB"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("reel: dialogue cleared"), std::string::npos) << r.err;

  // Both models loaded twice (cold, then warm) and everything released at the end.
  EXPECT_EQ(calls("rknn_init").size(), 2u);
  EXPECT_EQ(calls("rknn_destroy").size(), 2u);
  EXPECT_EQ(calls("rkllm_init").size(), 2u);
  ASSERT_EQ(calls("rkllm_destroy").size(), 2u);
  EXPECT_TRUE(has(calls("rkllm_destroy")[1], "live=0"));
  // Four frames, each resized to the encoder's 32x32 input; different frames, different pixels.
  const auto inputs = calls("rknn_inputs_set");
  ASSERT_EQ(inputs.size(), 4u);
  std::set<std::string> sums;
  for (const std::string& l : inputs) {
    EXPECT_TRUE(has(l, "size=3072") && has(l, "type=3") && has(l, "fmt=1")) << l;
    sums.insert(field(l, "byte_sum"));
  }
  EXPECT_GT(sums.size(), 1u);
  for (const std::string& l : calls("rknn_outputs_release")) EXPECT_TRUE(has(l, "outstanding=0"));
  // The question with the four frames' embeddings, one <image> per frame; then, after <clear>
  // (the runtime's KV cache cleared, system prompt kept), a text question; nothing after <exit>.
  const auto runs = calls("rkllm_run");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_TRUE(has(runs[0], "input_type=3") && has(runs[0], "n_image=4") &&
              has(runs[0], "n_image_tokens=4") && has(runs[0], "image_markers=4") &&
              has(runs[0], "image_width=32") && has(runs[0], "image_height=32") &&
              has(runs[0], "embed_stable=1") && has(runs[0], "keep_history=1") &&
              has(runs[0], "prompt=\"<image><image><image><image>What happens in the video?\""))
      << runs[0];
  ASSERT_EQ(calls("rkllm_clear_kv_cache").size(), 1u);
  EXPECT_TRUE(has(calls("rkllm_clear_kv_cache")[0], "keep_system_prompt=1"));
  EXPECT_TRUE(has(runs[1], "input_type=0") && has(runs[1], "prompt=\"And then?\"") &&
              has(runs[1], "history_turns=0"))
      << runs[1];
}

TEST_P(NpuCliTest, DefaultsToEightFrames) {
  const Result r = reel(vision_ + " " + text_ + " " + kClip, "<image>Describe it.\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(calls("rknn_inputs_set").size(), 8u);
  ASSERT_EQ(calls("rkllm_run").size(), 1u);
  EXPECT_TRUE(has(calls("rkllm_run")[0], "n_image=8")) << calls("rkllm_run")[0];
}

TEST_P(NpuCliTest, FileListOfImages) {
  const Result r = reel(vision_ + " " + text_ + " " + kPhoto + " " + kPhoto, "<image>Describe.\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "A red square moves.\n");
  EXPECT_NE(r.err.find("[2 image(s), 0 frame(s), 8 visual tokens"), std::string::npos) << r.err;
  const auto runs = calls("rkllm_run");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_TRUE(has(runs[0], "n_image=2") && has(runs[0], "image_markers=2")) << runs[0];
}

TEST_P(NpuCliTest, MissingRuntimeIsOneLine) {
  ::setenv("REEL_RKNN_LIB", (dir_ / "none" / "librknnrt.so").c_str(), 1);
  const Result r = reel(vision_ + " " + text_ + " " + kClip + " 2", "<image>Hi\n");
  expect_clean_error(r, "cannot load the RKNN runtime");
  EXPECT_EQ(r.code, 1);
}

TEST_P(NpuCliTest, ModelOfTheOtherVersionIsRefused) {
  const std::string other = file("other.rkllm", std::string("FAKE-RKLLM ") +
                                                    (v130() ? "1.2.3" : "1.3.0") + "\nanswer x\n")
                                .string();
  const Result r = reel(vision_ + " " + other + " " + kClip + " 2", "<image>Hi\n");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("reel: " + other + ": the RKLLM runtime (ABI " + GetParam() +
                       ") cannot load this model"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(calls("rknn_inputs_set").empty());  // stopped before any frame was encoded
}

TEST_P(NpuCliTest, FailedTurnsExitOne) {
  ::setenv("REEL_FAKE_NPU_FAIL", "rkllm_run=-2", 1);
  const Result r = reel(vision_ + " " + text_ + " " + kClip + " 2", "<image>Hi\nAgain\n");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("rkllm_run returned -2"), std::string::npos) << r.err;
  EXPECT_EQ(calls("rkllm_run").size(), 2u);  // the chat went on after the first failure
}

TEST_P(NpuCliTest, MixedModelFilesAreAUsageError) {
  const std::string gguf = file("text.gguf", "GGUF").string();
  const Result r = reel(vision_ + " " + gguf + " " + kClip, "");
  expect_clean_error(r, ".rknn then the text model as .rkllm");
  EXPECT_EQ(r.code, 2);
}

// The modern flags run the same chat: -m FILE.rkllm --mmproj FILE.rknn, --frames as FRAMES.
TEST_P(NpuCliTest, ModernFlagsRunTheSameChat) {
  const Result r =
      reel("-m " + text_ + " --mmproj " + vision_ + " --video " + kClip + " --frames 3",
           "<image>Describe it.\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "A red square moves.\n");
  EXPECT_EQ(calls("rknn_inputs_set").size(), 3u);
  const Result images =
      reel("--backend rknpu -m " + text_ + " --mmproj " + vision_ + " --image " + kPhoto,
           "<image>Describe.\n");
  ASSERT_EQ(images.code, 0) << images.err;
  EXPECT_EQ(images.out, "A red square moves.\n");
}

// -p: one question with the media, the answer streamed to stdout, exit 0; standard input is
// not read. The media go first unless the prompt says where; no history is kept.
TEST_P(NpuCliTest, OneShotPromptAnswersOnce) {
  const Result r = reel("-m " + text_ + " --mmproj " + vision_ + " --video " + kClip +
                            " --frames 3 -p \"What happens in the video?\"",
                        "<image>never asked\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "A red square moves.\n");
  const auto runs = calls("rkllm_run");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_TRUE(has(runs[0], "input_type=3") && has(runs[0], "n_image=3") &&
              has(runs[0], "image_markers=3") && has(runs[0], "keep_history=0") &&
              has(runs[0], "prompt=\"<image><image><image>What happens in the video?\""))
      << runs[0];
  // As the CPU path's one-shot: no tables unless asked for.
  EXPECT_EQ(r.err.find("reel: vision   "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("tok/s"), std::string::npos) << r.err;

  // Images, with the marker where the prompt puts it; --stats text prints the app's lines.
  const Result img = reel("-m " + text_ + " --mmproj " + vision_ + " --image " + kPhoto +
                              " -p \"Here: <image> what is it?\" --stats text",
                          "");
  ASSERT_EQ(img.code, 0) << img.err;
  EXPECT_EQ(img.out, "A red square moves.\n");
  ASSERT_EQ(calls("rkllm_run").size(), 2u);
  EXPECT_TRUE(has(calls("rkllm_run")[1], "prompt=\"Here: <image> what is it?\"") &&
              has(calls("rkllm_run")[1], "n_image=1"))
      << calls("rkllm_run")[1];
  EXPECT_NE(img.err.find("[1 image(s), 0 frame(s), 4 visual tokens"), std::string::npos) << img.err;
  EXPECT_NE(img.err.find("generated 3 tokens, 10.0 tok/s"), std::string::npos) << img.err;

  // -f reads the question from a file; --stats json gives one JSON line.
  const std::string q = file("q.txt", "Describe it.").string();
  const Result js = reel(
      "-m " + text_ + " --mmproj " + vision_ + " --image " + kPhoto + " -f " + q + " --stats json",
      "");
  ASSERT_EQ(js.code, 0) << js.err;
  EXPECT_EQ(js.out, "A red square moves.\n");
  EXPECT_TRUE(has(calls("rkllm_run")[2], "prompt=\"<image>Describe it.\""))
      << calls("rkllm_run")[2];
  EXPECT_NE(js.err.find("{\"images\":1,\"frames\":0,\"visual_tokens\":4,"), std::string::npos)
      << js.err;
  EXPECT_NE(js.err.find("\"generated_tokens\":3,\"decode_ms\":300.0,\"decode_tps\":10.0"),
            std::string::npos)
      << js.err;

  // A failed answer: one line, exit 1.
  ::setenv("REEL_FAKE_NPU_FAIL", "rkllm_run=-2", 1);
  const Result bad =
      reel("-m " + text_ + " --mmproj " + vision_ + " --image " + kPhoto + " -p hi", "");
  EXPECT_EQ(bad.code, 1) << bad.err;
  EXPECT_EQ(bad.out, "");
  EXPECT_NE(bad.err.find("rkllm_run returned -2"), std::string::npos) << bad.err;
}

// Ctrl-C during an answer stops it (rkllm_abort, from outside the runtime's callback) and the
// chat goes on; at the prompt it ends Reel with 130, as the CPU chat does.
TEST_P(NpuCliTest, CtrlCStopsTheAnswerThenExitsAtThePrompt) {
  const std::string slow = file("slow.rkllm", std::string("FAKE-RKLLM ") + GetParam() +
                                                  "\nanswer Once| upon| a| time| there| was\n")
                               .string();
  // 6 chunks, 300 ms before each (scaled under emulation), in the first answer only.
  const double slow_by = slowdown();
  const std::string delay = std::to_string(int(300 * slow_by)) + "x1";
  ::setenv("REEL_FAKE_RKLLM_DELAY_MS", delay.c_str(), 1);
  Process p({REEL_BINARY, "-m", slow, "--mmproj", vision_, "--image", kPhoto});
  p.write_line("<image>Tell a long story.");
  ASSERT_TRUE(p.wait_for("Once", 60 * slow_by, /*on_stderr=*/false)) << p.err();
  p.signal(SIGINT);
  ASSERT_TRUE(p.wait_for("stopped", 10 * slow_by)) << p.err();
  EXPECT_EQ(p.wait_exit(0.2), -1) << "still running";
  EXPECT_EQ(p.out().find("there"), std::string::npos) << p.out();  // the rest was dropped
  const auto aborts = calls("rkllm_abort");
  ASSERT_EQ(aborts.size(), 1u);
  EXPECT_TRUE(has(aborts[0], "running=1") && has(aborts[0], "from_callback=0")) << aborts[0];

  // The next question is answered in full on the same handle.
  p.write_line("And then?");
  ASSERT_TRUE(p.wait_for("generated 6 tokens", 30 * slow_by)) << p.err();
  EXPECT_NE(p.out().find("Once upon a time there was\n"), std::string::npos) << p.out();
  const auto runs = calls("rkllm_run");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_TRUE(has(runs[0], "aborted=1") && has(runs[1], "aborted=0")) << runs[1];

  p.signal(SIGINT);  // at the prompt
  EXPECT_EQ(p.wait_exit(10 * slow_by), 130) << p.err();
  EXPECT_EQ(calls("rkllm_abort").size(), 1u);
}

// Qwen3.5 on RKLLM 1.3.0: its .rknn has one output (no DeepStack), as wide as the text model's
// hidden size (16 floats a token in the fake model); a video in, the answer streamed out, with
// --think on as enable_thinking. A 1.2.3 runtime refuses the file in one line, before loading.
TEST_P(NpuCliTest, Qwen35PairOnRuntime130) {
  const std::string vision = file("Qwen3.5-0.8B_vision_rk3588.rknn",
                                  "FAKE-RKNN input 32 32 nhwc outputs 1 tokens 4 embed 16\n")
                                 .string();
  const std::string text =
      file("Qwen3.5-0.8B_w8a8_rk3588.rkllm",
           std::string("FAKE-RKLLM ") + GetParam() + "\nanswer A red| square.\nembed 16\n")
          .string();
  const std::string args = "-m " + text + " --mmproj " + vision + " --video " + kClip +
                           " --frames 2 --think on -p \"What happens?\"";
  const Result r = reel(args, "");
  if (!v130()) {
    expect_clean_error(r, "a Qwen3.5 model needs the RKLLM runtime 1.3.0 or later");
    EXPECT_TRUE(calls("rkllm_init").empty());
    EXPECT_TRUE(calls("rknn_init").empty());  // refused before any model loaded
    return;
  }
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "A red square.\n");
  ASSERT_EQ(calls("rknn_inputs_set").size(), 2u);
  const auto runs = calls("rkllm_run");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_TRUE(has(runs[0], "input_type=3") && has(runs[0], "n_image=2") &&
              has(runs[0], "n_image_tokens=4") && has(runs[0], "enable_thinking=1") &&
              has(runs[0], "image_markers=2") && has(runs[0], "embed_stable=1") &&
              has(runs[0], "image_start=\"<|vision_start|>\"") &&
              has(runs[0], "image_content=\"<|image_pad|>\""))
      << runs[0];
  // Without --think the switch stays off, as before.
  ASSERT_EQ(reel("-m " + text + " --mmproj " + vision + " --image " + kPhoto + " -p hi", "").code,
            0);
  EXPECT_TRUE(has(calls("rkllm_run").at(1), "enable_thinking=0")) << calls("rkllm_run").at(1);
}

// --backend and the files' kinds must agree; the commands that run on the CPU only say so.
TEST_P(NpuCliTest, BackendAndFilesMustAgree) {
  const std::string gguf = file("text.gguf", "GGUF").string();
  expect_clean_error(
      reel("--backend cpu -m " + text_ + " --mmproj " + vision_ + " --video " + kClip, ""),
      "--backend cpu runs GGUF files");
  expect_clean_error(reel("--backend rknpu -m " + gguf + " -p hi", ""),
                     "--backend rknpu runs Rockchip's .rkllm");
  expect_clean_error(reel("serve -m " + text_ + " --port 0", ""),
                     "reel serve runs on the CPU (GGUF files) only so far");
  expect_clean_error(reel("bench -m " + text_, ""), "reel bench runs on the CPU");
  EXPECT_EQ(reel("--backend gpu -m " + gguf + " -p hi", "").code, 2);
  EXPECT_TRUE(calls("rkllm_init").empty());  // refused before any runtime was loaded
}

// The NPU's vision encoder feeding the CPU's text decoder: -m TEXT.gguf --mmproj VISION.rknn.
// The tiny fixture's hidden size is 32 with 3 DeepStack layers, so an .rknn of 4 outputs x 32
// floats belongs with it; 64x64 input at 32 pixels per token side is 4 tokens per frame.
const std::string kTinyText = REEL_FIXTURE_DIR "/models/tiny-a-f32.gguf";
const std::string kTinyMmproj = REEL_FIXTURE_DIR "/models/tiny-a-mmproj-f16.gguf";

TEST_P(NpuCliTest, NpuVisionFeedsTheCpuTextDecoder) {
  const std::string rknn =
      file("tiny-vision.rknn", "FAKE-RKNN input 64 64 nhwc outputs 4 tokens 4 embed 32\n").string();
  const Result img = reel("-m " + kTinyText + " --mmproj " + rknn + " --image " + kPhoto +
                              " -p Describe. -n 3 --temp 0 --stats json",
                          "");
  ASSERT_EQ(img.code, 0) << img.err;
  EXPECT_NE(img.err.find("\"images\":1,\"frames\":0,\"visual_tokens\":4"), std::string::npos)
      << img.err;
  EXPECT_NE(img.err.find("vision on the NPU, text on the CPU"), std::string::npos) << img.err;
  ASSERT_EQ(calls("rknn_inputs_set").size(), 1u);
  EXPECT_TRUE(has(calls("rknn_inputs_set")[0], "size=12288")) << calls("rknn_inputs_set")[0];
  EXPECT_EQ(calls("rknn_outputs_get").size(), 1u);
  EXPECT_TRUE(calls("rkllm_init").empty());  // the text ran on the CPU

  // A video goes as images, one frame each, every frame through the .rknn model.
  const Result video = reel("-m " + kTinyText + " --mmproj " + rknn + " --video " + kClip +
                                " --frames 3 -p Describe. -n 2 --temp 0 --stats json",
                            "");
  ASSERT_EQ(video.code, 0) << video.err;
  EXPECT_NE(video.err.find("\"images\":0,\"frames\":3,\"visual_tokens\":12"), std::string::npos)
      << video.err;
  EXPECT_EQ(calls("rknn_inputs_set").size(), 4u);  // 1 image above + 3 frames
  for (const std::string& l : calls("rknn_outputs_release")) EXPECT_TRUE(has(l, "outstanding=0"));

  // The media cache knows the .rknn encoder by its file: a second run encodes nothing.
  const std::string cached = "-m " + kTinyText + " --mmproj " + rknn + " --image " + kPhoto +
                             " -p Describe. -n 1 --temp 0 --media-cache " + (dir_ / "mc").string();
  ASSERT_EQ(reel(cached, "").code, 0);
  const size_t encoded = calls("rknn_inputs_set").size();
  EXPECT_EQ(encoded, 5u);
  const Result again = reel(cached, "");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(calls("rknn_inputs_set").size(), encoded);
}

// Frames of a fixed size cannot shrink: a tight context takes fewer of them, at the .rknn size.
TEST_P(NpuCliTest, NpuVisionInATightContextTakesFewerFrames) {
  const std::string rknn =
      file("tiny-vision.rknn", "FAKE-RKNN input 64 64 nhwc outputs 4 tokens 4 embed 32\n").string();
  const Result r = reel("-m " + kTinyText + " --mmproj " + rknn + " --video " + kClip +
                            " --frames 30 -c 80 -p Describe. -n 1 --temp 0",
                        "");
  ASSERT_EQ(r.code, 0) << r.err;
  const size_t at = r.err.find("30 frames at 64x64 would take about 180 prompt tokens");
  ASSERT_NE(at, std::string::npos) << r.err;
  const size_t took = r.err.find(": took ", at);
  ASSERT_NE(took, std::string::npos) << r.err;
  const int frames = std::atoi(r.err.c_str() + took + 7);
  EXPECT_GT(frames, 0);
  EXPECT_LT(frames, 30);
  EXPECT_EQ(r.err.find(": took " + std::to_string(frames) + " frames at 64x64"), took) << r.err;
  EXPECT_EQ(calls("rknn_inputs_set").size(), size_t(frames));
}

TEST_P(NpuCliTest, NpuVisionOfAnotherModelIsRefused) {
  const std::string narrow =
      file("narrow.rknn", "FAKE-RKNN input 64 64 nhwc outputs 4 tokens 4 embed 16\n").string();
  const Result w =
      reel("-m " + kTinyText + " --mmproj " + narrow + " --image " + kPhoto + " -p hi -n 1", "");
  expect_clean_error(w, "16-wide embeddings but the text model's hidden size is 32");
  EXPECT_NE(w.err.find("do not belong together"), std::string::npos) << w.err;
  const std::string no_deepstack =
      file("plain.rknn", "FAKE-RKNN input 64 64 nhwc outputs 1 tokens 4 embed 32\n").string();
  expect_clean_error(
      reel("-m " + kTinyText + " --mmproj " + no_deepstack + " --image " + kPhoto + " -p hi -n 1",
           ""),
      "0 DeepStack layers but the text model expects 3");
  const std::string odd =
      file("odd.rknn", "FAKE-RKNN input 64 64 nhwc outputs 4 tokens 5 embed 32\n").string();
  expect_clean_error(
      reel("-m " + kTinyText + " --mmproj " + odd + " --image " + kPhoto + " -p hi -n 1", ""),
      "input gives 5 tokens, not one per 32x32 pixels");
  EXPECT_TRUE(calls("rknn_inputs_set").empty());
  // The chat and watch take an .rknn file beside a GGUF text model; serve does not yet.
  const std::string rknn =
      file("tiny-vision.rknn", "FAKE-RKNN input 64 64 nhwc outputs 4 tokens 4 embed 32\n").string();
  expect_clean_error(reel("serve -m " + kTinyText + " --mmproj " + rknn + " --port 0", ""),
                     "reel serve runs on the CPU (GGUF files) only so far");
  expect_clean_error(reel("--backend cpu -m " + kTinyText + " --mmproj " + rknn + " -p hi", ""),
                     "--backend cpu runs GGUF files");
  expect_clean_error(reel("-m " + rknn + " -p hi", ""), "is a vision encoder (.rknn)");
}

// The number just before `key` in `text` ("...\"frames\":10..." -> 10 for "\"frames\":"); -1 if
// absent.
long number_after(const std::string& text, const std::string& key) {
  const size_t at = text.find(key);
  return at == std::string::npos ? -1 : std::atol(text.c_str() + at + key.size());
}

// `reel watch` with the NPU's vision encoder and the CPU's text decoder: every sampled frame of a
// file goes through the .rknn model alone (one inference each) and the window is asked about as
// the chat asks about a video planned as images (one image per frame): the same prompt length for
// the same number of frames. The file's end gives one answer about the last window, exit 0.
TEST_P(NpuCliTest, WatchWithNpuVision) {
  const std::string rknn =
      file("tiny-vision.rknn", "FAKE-RKNN input 64 64 nhwc outputs 4 tokens 4 embed 32\n").string();
  const std::string q = "'What happens?'";
  const Result r = reel("watch " + kClip + " -m " + kTinyText + " --mmproj " + rknn +
                            " --fps 1 --ask " + q + " --every 100s --temp 0 -n 3 -t 1",
                        "");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("vision on the NPU, each frame alone; text on the CPU"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("encoded at 64x64 (4 visual tokens per frame"), std::string::npos) << r.err;
  // One JSON line: one answer about the window.
  ASSERT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.out.find("\"question\":\"What happens?\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"answer\":\""), std::string::npos) << r.out;
  // 10 s at 1 fps; a frame the encoder could not take in time would be dropped (it is fast, so
  // none should be, but only the counts must agree).
  const long frames = number_after(r.out, "\"frames\":");
  EXPECT_GE(frames, 8) << r.out;
  EXPECT_LE(frames, 10) << r.out;
  // One inference per frame, each a 64x64 RGB input, every output buffer given back.
  const auto inputs = calls("rknn_inputs_set");
  ASSERT_EQ(long(inputs.size()), frames) << r.err;
  std::set<std::string> sums;
  for (const std::string& l : inputs) {
    EXPECT_TRUE(has(l, "size=12288")) << l;
    sums.insert(field(l, "byte_sum"));
  }
  EXPECT_GT(sums.size(), 1u);  // different frames, different pixels
  EXPECT_EQ(long(calls("rknn_run").size()), frames);
  for (const std::string& l : calls("rknn_outputs_release")) EXPECT_TRUE(has(l, "outstanding=0"));
  EXPECT_EQ(calls("rknn_destroy").size(), 1u);
  EXPECT_TRUE(calls("rkllm_init").empty());  // the text ran on the CPU
  // 4 tokens and 2 markers per frame: the chat's prompt for as many frames of the file.
  const Result chat =
      reel("-m " + kTinyText + " --mmproj " + rknn + " --video " + kClip + " --frames " +
               std::to_string(frames) + " -p " + q + " --temp 0 -n 3 -t 1 --stats json",
           "");
  ASSERT_EQ(chat.code, 0) << chat.err;
  const long prompt = number_after(r.out, "\"prompt_tokens\":");
  EXPECT_EQ(prompt, number_after(chat.err, "\"prompt_tokens\":")) << r.out << chat.err;
  EXPECT_GE(prompt, 6 * frames);
}

// An .rkllm text model stays the chat's: watch refuses it in one line, before loading anything.
TEST_P(NpuCliTest, WatchRefusesAnNpuTextModel) {
  const Result r =
      reel("watch " + kClip + " -m " + text_ + " --mmproj " + vision_ + " --ask q", "");
  expect_clean_error(r, "reel watch runs the text model on the CPU");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(calls("rknn_init").empty());
  EXPECT_TRUE(calls("rkllm_init").empty());
}

// Qwen3.5's encoder has no DeepStack: an .rknn of one output, as wide as the text model's hidden
// size, feeds a Qwen3.5 GGUF text model (q35-a: hidden 32, no DeepStack layers); one with
// DeepStack outputs is refused as another model's. And the CPU's Qwen3.5 vision tower feeds a
// Qwen3.5 .rkllm on 1.3.0 with its main rows only.
TEST_P(NpuCliTest, Qwen35EncoderWithoutDeepStack) {
  const std::string q35 = REEL_FIXTURE_DIR "/models/q35-a-f32.gguf";
  const std::string plain =
      file("q35-vision.rknn", "FAKE-RKNN input 64 64 nhwc outputs 1 tokens 4 embed 32\n").string();
  const Result r = reel("-m " + q35 + " --mmproj " + plain + " --image " + kPhoto +
                            " -p Describe. -n 2 --temp 0 --stats json",
                        "");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("\"images\":1,\"frames\":0,\"visual_tokens\":4"), std::string::npos)
      << r.err;
  const std::string deepstack =
      file("ds-vision.rknn", "FAKE-RKNN input 64 64 nhwc outputs 4 tokens 4 embed 32\n").string();
  expect_clean_error(
      reel("-m " + q35 + " --mmproj " + deepstack + " --image " + kPhoto + " -p hi -n 1", ""),
      "3 DeepStack layers but the text model expects 0");

  if (!v130()) return;
  const std::string text =
      file("Qwen3.5-0.8B_w8a8_rk3588.rkllm",
           std::string("FAKE-RKLLM ") + GetParam() + "\nanswer Red.\nembed 32\n")
          .string();
  const Result npu =
      reel("-m " + text + " --mmproj " REEL_FIXTURE_DIR "/models/q35-a-mmproj-f16.gguf --image " +
               kPhoto + " -p Describe.",
           "");
  ASSERT_EQ(npu.code, 0) << npu.err;
  EXPECT_EQ(npu.out, "Red.\n");
  const auto runs = calls("rkllm_run");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_TRUE(has(runs[0], "input_type=3") && has(runs[0], "n_image=1") &&
              has(runs[0], "embed_stable=1"))
      << runs[0];
  EXPECT_NE(field(runs[0], "embed_sum"), "0") << runs[0];
}

// The CPU's vision encoder feeding the NPU's text model: -m TEXT.rkllm --mmproj VISION.gguf. The
// rows go to the runtime as an .rknn file's do: per token the main row, then the 3 DeepStack
// rows, 4 x 32 floats (the fake model is told so).
TEST_P(NpuCliTest, CpuVisionFeedsTheNpuTextModel) {
  const std::string text = file("wide.rkllm", std::string("FAKE-RKLLM ") + GetParam() +
                                                  "\nanswer A red| square.\nembed 128\n")
                               .string();
  const Result r =
      reel("-m " + text + " --mmproj " + kTinyMmproj + " --video " + kClip + " --frames 2",
           "<image>What happens?\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "A red square.\n");
  EXPECT_NE(r.err.find("NPU text, CPU vision"), std::string::npos) << r.err;
  EXPECT_TRUE(calls("rknn_init").empty());  // no .rknn model: the CPU encoded the frames
  const auto runs = calls("rkllm_run");
  ASSERT_EQ(runs.size(), 1u);
  // The clip as displayed (its non-square pixels applied), sized as the CPU sizes an image by
  // default: 864x352, 27 x 11 tokens.
  EXPECT_TRUE(has(runs[0], "input_type=3") && has(runs[0], "n_image=2") &&
              has(runs[0], "n_image_tokens=297") && has(runs[0], "image_width=864") &&
              has(runs[0], "image_height=352") && has(runs[0], "embed_stable=1") &&
              has(runs[0], "image_markers=2"))
      << runs[0];
  EXPECT_NE(field(runs[0], "embed_sum"), "0") << runs[0];

  const Result images =
      reel("-m " + text + " --mmproj " + kTinyMmproj + " --image " + kPhoto + " --image " + kPhoto,
           "<image>Describe.\n");
  ASSERT_EQ(images.code, 0) << images.err;
  EXPECT_EQ(images.out, "A red square.\n");
  ASSERT_EQ(calls("rkllm_run").size(), 2u);
  EXPECT_TRUE(has(calls("rkllm_run")[1], "n_image=2")) << calls("rkllm_run")[1];
}

}  // namespace
}  // namespace reel::test
