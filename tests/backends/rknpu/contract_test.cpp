// Contract tests of the NPU runtime layer against the fake runtimes (fake_rknn.cpp,
// fake_rkllm.cpp): that Reel calls RKNN and both RKLLM ABIs as Rockchip's headers and demo
// document (arguments, struct fields, call order, buffer lifetimes, callback states), and that
// every error the runtimes report, a missing library and a missing symbol become one clear
// reel::Error.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../../emulation.h"
#include "backends/rknpu/model_files.h"
#include "backends/rknpu/rkllm_text.h"
#include "backends/rknpu/rknn_vision.h"
#include "backends/rknpu/runtime.h"
#include "common/error.h"

namespace reel::rknpu {
namespace {

namespace fs = std::filesystem;

// A scratch folder with the call log, and the environment pointing at the fakes.
class FakeNpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("reel-rknpu-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    log_ = dir_ / "calls.log";
    ::setenv("REEL_FAKE_NPU_LOG", log_.c_str(), 1);
    ::setenv("REEL_RKNN_LIB", FAKE_RKNN_LIB, 1);
    ::setenv("REEL_RKLLM_LIB", FAKE_RKLLM_123_LIB, 1);
    ::unsetenv("REEL_FAKE_NPU_FAIL");
    ::unsetenv("REEL_RKLLM_ABI");
    ::unsetenv("REEL_FAKE_RKLLM_DELAY_MS");
  }
  void TearDown() override {
    ::unsetenv("REEL_FAKE_NPU_FAIL");
    ::unsetenv("REEL_RKLLM_ABI");
    ::unsetenv("REEL_FAKE_RKLLM_DELAY_MS");
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string file(const std::string& name, const std::string& content) const {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

  // The log's lines, oldest first.
  std::vector<std::string> calls() const {
    std::ifstream in(log_);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  }
  // The lines for `function`.
  std::vector<std::string> calls(const std::string& function) const {
    std::vector<std::string> out;
    for (const std::string& l : calls())
      if (l.rfind(function + " ", 0) == 0 || l == function) out.push_back(l);
    return out;
  }
  // The function names in call order.
  std::vector<std::string> order() const {
    std::vector<std::string> out;
    for (const std::string& l : calls()) out.push_back(l.substr(0, l.find(' ')));
    return out;
  }

  fs::path dir_, log_;
};

bool has(const std::string& line, const std::string& field) {
  return (line + " ").find(" " + field + " ") != std::string::npos;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// ---- RKNN: the vision encoder -----------------------------------------------------------------

// 8x6 input, 2 outputs (merged + one deepstack level) of 3 tokens x 8.
constexpr const char* kRknnModel = "FAKE-RKNN\ninput 8 6 nhwc\noutputs 2\ntokens 3\nembed 8\n";

media::Image test_image(int w, int h) {
  media::Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(size_t(w) * size_t(h) * 3);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = uint8_t(i * 7);
  return img;
}

TEST_F(FakeNpuTest, RknnEncodesAsDocumented) {
  const std::string model = file("v.rknn", kRknnModel);
  {
    RknnVisionEncoder enc(RknnApi::load(), model);
    EXPECT_EQ(enc.input_width(), 8);
    EXPECT_EQ(enc.input_height(), 6);
    EXPECT_EQ(enc.n_tokens(), 3);
    EXPECT_EQ(enc.token_floats(), 16);
    EXPECT_EQ(enc.sdk_version(), "api 2.3.2 (fake), driver 0.9.8");
    std::vector<float> out;
    enc.encode(test_image(8, 6), out);
    enc.encode(test_image(8, 6), out);
    ASSERT_EQ(out.size(), 2u * 3 * 16);
    // [run][token][output][embed]; the fake's values are exact in float (all < 2^13 with
    // thousandths that round the same on both sides), so equality within 1e-4 is exact enough.
    for (int run = 0; run < 2; ++run)
      for (int t = 0; t < 3; ++t)
        for (int j = 0; j < 2; ++j)
          for (int e = 0; e < 8; ++e)
            EXPECT_NEAR(out[size_t(((run * 3 + t) * 2 + j) * 8 + e)],
                        1000.0f * float(j) + float(t) + float(e) / 1000.0f + float(run), 1e-4);
  }
  // rknn_init with the path (size 0, no flags, no extend), the queries with the right struct
  // sizes, then per image: inputs_set (uint8 NHWC, converted by the runtime), run, outputs_get
  // (float, runtime-allocated), outputs_release of every output; destroy with nothing held.
  const std::vector<std::string> expected = {
      "rknn_init",        "rknn_query",           "rknn_query",      "rknn_query",
      "rknn_query",       "rknn_query",           "rknn_inputs_set", "rknn_run",
      "rknn_outputs_get", "rknn_outputs_release", "rknn_inputs_set", "rknn_run",
      "rknn_outputs_get", "rknn_outputs_release", "rknn_destroy"};
  EXPECT_EQ(order(), expected);
  const auto init = calls("rknn_init");
  ASSERT_EQ(init.size(), 1u);
  EXPECT_TRUE(has(init[0], "path=\"" + model + "\"") && has(init[0], "size=0") &&
              has(init[0], "flag=0") && has(init[0], "extend=null") && has(init[0], "rc=0"))
      << init[0];
  const auto q = calls("rknn_query");
  EXPECT_TRUE(has(q[0], "cmd=5") && has(q[0], "size=512")) << q[0];  // SDK version
  EXPECT_TRUE(has(q[1], "cmd=0") && has(q[1], "size=8")) << q[1];    // in/out numbers
  EXPECT_TRUE(has(q[2], "cmd=1") && has(q[2], "size=376") && has(q[2], "index=0")) << q[2];
  EXPECT_TRUE(has(q[3], "cmd=2") && has(q[3], "index=0")) << q[3];
  EXPECT_TRUE(has(q[4], "cmd=2") && has(q[4], "index=1")) << q[4];
  for (const std::string& l : calls("rknn_inputs_set"))
    EXPECT_TRUE(has(l, "n_inputs=1") && has(l, "index=0") && has(l, "size=144") &&
                has(l, "pass_through=0") && has(l, "type=3") && has(l, "fmt=1") && has(l, "rc=0"))
        << l;
  for (const std::string& l : calls("rknn_run")) EXPECT_TRUE(has(l, "extend=null")) << l;
  for (const std::string& l : calls("rknn_outputs_get"))
    EXPECT_TRUE(has(l, "n_outputs=2") && has(l, "want_float=1") && has(l, "is_prealloc=0")) << l;
  for (const std::string& l : calls("rknn_outputs_release"))
    EXPECT_TRUE(has(l, "n_outputs=2") && has(l, "outstanding=0")) << l;
  EXPECT_TRUE(has(calls("rknn_destroy")[0], "outstanding=0")) << calls("rknn_destroy")[0];
}

TEST_F(FakeNpuTest, RknnReadsNchwInputSize) {
  RknnVisionEncoder enc(RknnApi::load(),
                        file("v.rknn", "FAKE-RKNN input 20 10 nchw outputs 1 tokens 5 embed 4"));
  EXPECT_EQ(enc.input_width(), 20);
  EXPECT_EQ(enc.input_height(), 10);
  EXPECT_EQ(enc.n_tokens(), 5);
  EXPECT_EQ(enc.token_floats(), 4);
}

// As the pipeline's VisionEncoder: one frame of the input size, main rows from output 0 and
// DeepStack rows from the others, each [token][embed].
TEST_F(FakeNpuTest, RknnAsAVisionEncoder) {
  RknnVisionEncoder enc(RknnApi::load(),
                        file("v.rknn", "FAKE-RKNN input 64 32 nhwc outputs 3 tokens 2 embed 4"));
  enc.require_pipeline_shapes();  // 2 x 1 tokens of 32x32 pixels
  const VisionGeometry& g = enc.geometry();
  EXPECT_EQ(g.factor(), 32);
  EXPECT_EQ(g.temporal_patch, 1);
  EXPECT_EQ(g.out_dim, 4);
  EXPECT_EQ(g.n_deepstack, 2);
  EXPECT_EQ(g.fixed_width, 64);
  EXPECT_EQ(g.fixed_height, 32);
  const media::Image img = test_image(64, 32);
  const media::Image* frames[1] = {&img};
  std::vector<float> main(2 * 4, -1), ds(2 * 2 * 4, -1);
  ops::Context ctx(1);
  enc.encode_group(frames, main.data(), ds.data(), ctx);
  // The fake's values are exact in float (see RknnEncodesAsDocumented).
  for (int t = 0; t < 2; ++t)
    for (int e = 0; e < 4; ++e) {
      EXPECT_NEAR(main[size_t(t * 4 + e)], float(t) + float(e) / 1000.0f, 1e-4);
      for (int l = 0; l < 2; ++l)
        EXPECT_NEAR(ds[size_t((l * 2 + t) * 4 + e)],
                    1000.0f * float(l + 1) + float(t) + float(e) / 1000.0f, 1e-4);
    }
  const media::Image* two[2] = {&img, &img};
  EXPECT_THROW(enc.encode_group(two, main.data(), ds.data(), ctx), Error);
  // A token count that is not the input's 32-pixel grid cannot feed the pipeline.
  RknnVisionEncoder odd(RknnApi::load(),
                        file("o.rknn", "FAKE-RKNN input 64 32 nhwc outputs 1 tokens 3 embed 4"));
  EXPECT_NE(error_of([&] { odd.require_pipeline_shapes(); }).find("gives 3 tokens"),
            std::string::npos);
}

TEST_F(FakeNpuTest, RknnRefusedModelIsOneErrorAndNoDestroy) {
  const std::string bad = file("bad.rknn", "not a model");
  const std::string e = error_of([&] { RknnVisionEncoder(RknnApi::load(), bad); });
  EXPECT_NE(e.find(bad), std::string::npos) << e;
  EXPECT_NE(e.find("rknn_init returned -6"), std::string::npos) << e;
  EXPECT_TRUE(calls("rknn_destroy").empty());  // no context was made
}

TEST_F(FakeNpuTest, RknnRunErrorsReleaseEverything) {
  for (const char* fail : {"rknn_inputs_set=-8", "rknn_run=-2", "rknn_outputs_get=-4"}) {
    SCOPED_TRACE(fail);
    fs::remove(log_);
    ::setenv("REEL_FAKE_NPU_FAIL", fail, 1);
    {
      RknnVisionEncoder enc(RknnApi::load(), file("v.rknn", kRknnModel));
      std::vector<float> out;
      const std::string e = error_of([&] { enc.encode(test_image(8, 6), out); });
      const std::string function = std::string(fail).substr(0, std::string(fail).find('='));
      EXPECT_NE(e.find(function + " failed in the RKNN runtime (error " +
                       std::string(fail).substr(function.size() + 1) + ")"),
                std::string::npos)
          << e;
      EXPECT_TRUE(out.empty());
    }
    EXPECT_TRUE(calls("rknn_outputs_release").empty());  // nothing was handed out
    EXPECT_TRUE(has(calls("rknn_destroy").at(0), "outstanding=0"));
  }
}

TEST_F(FakeNpuTest, RknnQueryErrorDestroysContext) {
  ::setenv("REEL_FAKE_NPU_FAIL", "rknn_query=-1", 1);
  const std::string e =
      error_of([&] { RknnVisionEncoder(RknnApi::load(), file("v.rknn", kRknnModel)); });
  EXPECT_NE(e.find("rknn_query(IN_OUT_NUM) failed in the RKNN runtime (error -1)"),
            std::string::npos)
      << e;
  ASSERT_EQ(calls("rknn_destroy").size(), 1u);
  EXPECT_TRUE(has(calls("rknn_destroy")[0], "live=0"));
}

TEST_F(FakeNpuTest, RknnMissingLibraryAndSymbol) {
  ::setenv("REEL_RKNN_LIB", (dir_ / "librknnrt.so").c_str(), 1);
  std::string e = error_of([] { RknnApi::load(); });
  EXPECT_NE(e.find("cannot load the RKNN runtime"), std::string::npos) << e;
  EXPECT_NE(e.find("REEL_RKNN_LIB"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  try {
    RknnApi::load();
  } catch (const Error& err) {
    EXPECT_EQ(err.kind(), ErrorKind::Unsupported);
  }
  ::setenv("REEL_RKNN_LIB", FAKE_RKLLM_123_LIB, 1);  // a library, but not RKNN's
  e = error_of([] { RknnApi::load(); });
  EXPECT_NE(e.find("has no symbol rknn_init"), std::string::npos) << e;
}

// ---- RKLLM: the language model, once per ABI --------------------------------------------------

struct AbiCase {
  const char* lib;
  const char* version;
};

class RkllmContract : public FakeNpuTest, public ::testing::WithParamInterface<AbiCase> {
 protected:
  void SetUp() override {
    FakeNpuTest::SetUp();
    ::setenv("REEL_RKLLM_LIB", GetParam().lib, 1);
  }
  bool v130() const { return std::string(GetParam().version) == "1.3.0"; }
  std::string model(const char* answer = "The clip| shows| a red square.") {
    return file("t.rkllm",
                std::string("FAKE-RKLLM ") + GetParam().version + "\nanswer " + answer + "\n");
  }
};

INSTANTIATE_TEST_SUITE_P(Abi, RkllmContract,
                         ::testing::Values(AbiCase{FAKE_RKLLM_123_LIB, "1.2.3"},
                                           AbiCase{FAKE_RKLLM_130_LIB, "1.3.0"}),
                         [](const auto& info) {
                           return std::string(info.param.version) == "1.3.0" ? "v1_3_0" : "v1_2_3";
                         });

TEST_P(RkllmContract, DetectsTheAbi) {
  const auto api = RkllmApi::load();
  EXPECT_STREQ(rkllm_abi_name(api->abi), GetParam().version);
  EXPECT_NE(api->describe().find(std::string("ABI ") + GetParam().version + " (RKLLMParam is "),
            std::string::npos)
      << api->describe();
  // The probe called rkllm_createDefaultParam (twice) and nothing else.
  for (const std::string& f : order()) EXPECT_EQ(f, "rkllm_createDefaultParam");
}

TEST_P(RkllmContract, AbiOverride) {
  ::setenv("REEL_RKLLM_ABI", GetParam().version, 1);
  const auto api = RkllmApi::load();
  EXPECT_STREQ(rkllm_abi_name(api->abi), GetParam().version);
  EXPECT_NE(api->describe().find("set by REEL_RKLLM_ABI"), std::string::npos);
  ::setenv("REEL_RKLLM_ABI", "1.1", 1);
  EXPECT_NE(error_of([] { RkllmApi::load(); }).find("REEL_RKLLM_ABI must be 1.2.3 or 1.3.0"),
            std::string::npos);
}

TEST_P(RkllmContract, InitsAsDocumented) {
  const std::string path = model();
  { RkllmTextModel m(RkllmApi::load(), path); }
  const auto init = calls("rkllm_init");
  ASSERT_EQ(init.size(), 1u);
  const std::string& l = init[0];
  EXPECT_TRUE(has(l, std::string("abi=") + GetParam().version) &&
              has(l, "model_path=\"" + path + "\"") && has(l, "max_context_len=4096") &&
              has(l, "max_new_tokens=1024") && has(l, "skip_special_token=1") &&
              has(l, "is_async=0") && has(l, "base_domain_id=1") && has(l, "rc=0"))
      << l;
  // Defaults Reel does not set stay the runtime's (rkllm_createDefaultParam first).
  EXPECT_TRUE(has(l, "top_k=1") && has(l, "n_batch=1")) << l;
  if (v130()) {
    EXPECT_TRUE(has(l, "ignore_eos_token=0") && has(l, "callbacks=set") &&
                has(l, "result_callback=set") && has(l, "tokenizer_callback=null") &&
                has(l, "embed_callback=null"))
        << l;
  } else {
    EXPECT_TRUE(has(l, "img_start=\"<|vision_start|>\"") && has(l, "img_end=\"<|vision_end|>\"") &&
                has(l, "img_content=\"<|image_pad|>\"") && has(l, "callback=set"))
        << l;
  }
  const std::vector<std::string> o = order();
  ASSERT_GE(o.size(), 2u);
  EXPECT_EQ(o[o.size() - 3], "rkllm_createDefaultParam");  // after the two probe calls
  EXPECT_EQ(o.back(), "rkllm_destroy");
  EXPECT_TRUE(has(calls("rkllm_destroy")[0], "live=0"));
}

TEST_P(RkllmContract, StreamsATextTurn) {
  RkllmTextModel m(RkllmApi::load(), model());
  std::string answer;
  int chunks = 0;
  const RkllmPerf p = m.generate("Hello there", nullptr, true, [&](std::string_view s) {
    answer += s;
    ++chunks;
  });
  EXPECT_EQ(answer, "The clip shows a red square.");
  EXPECT_EQ(chunks, 3);  // the fake's waiting state (no text) is not passed on
  EXPECT_EQ(p.generate_tokens, 3);
  EXPECT_DOUBLE_EQ(p.generate_ms, 300.0);
  EXPECT_DOUBLE_EQ(p.prefill_ms, 250.0);
  EXPECT_DOUBLE_EQ(p.memory_mb, 1234.0);
  const auto run = calls("rkllm_run");
  ASSERT_EQ(run.size(), 1u);
  EXPECT_TRUE(has(run[0], "role=\"user\"") && has(run[0], "enable_thinking=0") &&
              has(run[0], "input_type=0") && has(run[0], "prompt=\"Hello there\"") &&
              has(run[0], "mode=0") && has(run[0], "lora_params=null") &&
              has(run[0], "prompt_cache_params=null") && has(run[0], "keep_history=1") &&
              has(run[0], "userdata=set") && has(run[0], "init_args_alive=1") &&
              has(run[0], "callbacks=5") && has(run[0], "rc=0"))
      << run[0];
  EXPECT_TRUE(has(run[0], std::string("sizeof_input=") + (v130() ? "160" : "64"))) << run[0];
  if (v130()) {
    EXPECT_TRUE(has(run[0], "sampling_params=null") && has(run[0], "infer_max_new_tokens=0"))
        << run[0];
  }
}

TEST_P(RkllmContract, PassesImageEmbeddingsForTheWholeRun) {
  RkllmTextModel m(RkllmApi::load(), model());
  // 2 images x 3 tokens x 16 floats (the fake's embedding size).
  std::vector<float> embed(2 * 3 * 16);
  double sum = 0;
  for (size_t i = 0; i < embed.size(); ++i) sum += (embed[i] = float(i % 17) * 0.5f);
  RkllmImages images{embed.data(), 2, 3, 392, 392};
  std::string answer;
  m.generate("<image><image>What is this?", &images, true,
             [&](std::string_view s) { answer += s; });
  EXPECT_EQ(answer, "The clip shows a red square.");
  const auto run = calls("rkllm_run");
  ASSERT_EQ(run.size(), 1u);
  const std::string& l = run[0];
  std::ostringstream expect_sum;
  expect_sum << "embed_sum=" << sum;
  EXPECT_TRUE(has(l, "input_type=3") && has(l, "prompt=\"<image><image>What is this?\"") &&
              has(l, "image_markers=2") && has(l, "n_image=2") && has(l, "n_image_tokens=3") &&
              has(l, "image_width=392") && has(l, "image_height=392") && has(l, expect_sum.str()) &&
              has(l, "embed_stable=1"))
      << l;
  if (v130()) {
    EXPECT_TRUE(has(l, "image_start=\"<|vision_start|>\"") &&
                has(l, "image_end=\"<|vision_end|>\"") &&
                has(l, "image_content=\"<|image_pad|>\"") && has(l, "video_embed=null") &&
                has(l, "n_video=0"))
        << l;
  }
}

TEST_P(RkllmContract, ImagesBeyondTheContextAreRefusedBeforeTheRun) {
  RkllmOptions o;
  o.max_context_len = 100;
  RkllmTextModel m(RkllmApi::load(), model(), o);
  std::vector<float> embed(5 * 20 * 16);
  RkllmImages images{embed.data(), 5, 20, 32, 32};  // exactly 100 visual tokens
  try {
    m.generate("<image>x", &images, true, [](std::string_view) {});
    FAIL() << "no error";
  } catch (const ContextFull& e) {
    EXPECT_NE(std::string(e.what()).find("5 images of 20 tokens do not fit in the 100-token"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(calls("rkllm_run").empty());
  images.n_images = 4;  // 80 tokens: fits
  m.generate("<image>x", &images, true, [](std::string_view) {});
  EXPECT_EQ(calls("rkllm_run").size(), 1u);
}

TEST_P(RkllmContract, ClearKeepsTheSystemPrompt) {
  RkllmTextModel m(RkllmApi::load(), model());
  auto ignore = [](std::string_view) {};
  m.generate("one", nullptr, true, ignore);
  m.generate("two", nullptr, true, ignore);
  m.clear_history();
  m.generate("three", nullptr, true, ignore);
  const auto run = calls("rkllm_run");
  ASSERT_EQ(run.size(), 3u);
  EXPECT_TRUE(has(run[1], "history_turns=1")) << run[1];
  EXPECT_TRUE(has(run[2], "history_turns=0")) << run[2];
  const auto clear = calls("rkllm_clear_kv_cache");
  ASSERT_EQ(clear.size(), 1u);
  EXPECT_TRUE(has(clear[0], "keep_system_prompt=1") && has(clear[0], "start_pos=null") &&
              has(clear[0], "end_pos=null"))
      << clear[0];
}

TEST_P(RkllmContract, RuntimeErrorsBecomeOneLine) {
  RkllmTextModel m(RkllmApi::load(), model());
  auto ignore = [](std::string_view) {};
  ::setenv("REEL_FAKE_NPU_FAIL", "rkllm_run=-3", 1);
  std::string e = error_of([&] { m.generate("hi", nullptr, true, ignore); });
  EXPECT_NE(e.find("rkllm_run returned -3"), std::string::npos) << e;
  ::setenv("REEL_FAKE_NPU_FAIL", "rkllm_run=state", 1);
  e = error_of([&] { m.generate("hi", nullptr, true, ignore); });
  EXPECT_NE(e.find("reported an error"), std::string::npos) << e;
  ::setenv("REEL_FAKE_NPU_FAIL", "rkllm_clear_kv_cache=-1", 1);
  e = error_of([&] { m.clear_history(); });
  EXPECT_NE(e.find("rkllm_clear_kv_cache returned -1"), std::string::npos) << e;
  ::unsetenv("REEL_FAKE_NPU_FAIL");
  std::string answer;
  m.generate("again", nullptr, true, [&](std::string_view s) { answer += s; });  // still usable
  EXPECT_EQ(answer, "The clip shows a red square.");
}

TEST_P(RkllmContract, InitFailureLeavesNoHandle) {
  ::setenv("REEL_FAKE_NPU_FAIL", "rkllm_init=-1", 1);
  const std::string e = error_of([&] { RkllmTextModel(RkllmApi::load(), model()); });
  EXPECT_NE(e.find("rkllm_init returned -1"), std::string::npos) << e;
  EXPECT_TRUE(calls("rkllm_destroy").empty());
}

TEST_P(RkllmContract, ModelForTheOtherVersionIsRefused) {
  const char* other = v130() ? "1.2.3" : "1.3.0";
  const std::string path = file("old.rkllm", std::string("FAKE-RKLLM ") + other + "\nanswer x\n");
  const std::string e = error_of([&] { RkllmTextModel(RkllmApi::load(), path); });
  EXPECT_NE(
      e.find(path + ": the RKLLM runtime (ABI " + GetParam().version + ") cannot load this model"),
      std::string::npos)
      << e;
  EXPECT_NE(e.find("another RKLLM version"), std::string::npos) << e;
  EXPECT_TRUE(has(calls("rkllm_init").at(0), std::string("model_version=") + other));
}

TEST_P(RkllmContract, WriterFailureIsRethrownAfterTheRun) {
  RkllmTextModel m(RkllmApi::load(), model());
  int seen = 0;
  const std::string e = error_of([&] {
    m.generate("hi", nullptr, true, [&](std::string_view) {
      ++seen;
      throw IoError("cannot write to standard output");
    });
  });
  EXPECT_EQ(e, "cannot write to standard output");
  EXPECT_EQ(seen, 1);  // the rest of the answer was dropped, not written
  EXPECT_TRUE(has(calls("rkllm_run").at(0), "rc=0"));  // the run ended normally
  EXPECT_TRUE(calls("rkllm_abort").empty());           // never from inside the runtime's callback
}

// A stop asked for while the runtime generates: rkllm_abort from Reel's own thread (never from
// inside the runtime's callback), the rest of the answer dropped, Cancelled thrown after
// rkllm_run returned, and the model answers the next question in full.
TEST_P(RkllmContract, CancelAbortsTheRunFromOutsideTheCallback) {
  // 5 chunks, 100 ms before each (scaled under emulation), in the first run only.
  const std::string delay = std::to_string(int(100 * test::slowdown())) + "x1";
  ::setenv("REEL_FAKE_RKLLM_DELAY_MS", delay.c_str(), 1);
  RkllmTextModel m(RkllmApi::load(), model("one| two| three| four| five"));
  std::atomic<bool> cancel{false};
  std::string answer;
  bool cancelled = false;
  try {
    m.generate(
        "Tell a long story.", nullptr, true,
        [&](std::string_view s) {
          answer += s;
          cancel = true;  // as the Ctrl-C handler would, right after the first chunk
        },
        &cancel);
  } catch (const Error& e) {
    cancelled = e.kind() == ErrorKind::Cancelled;
  }
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(answer, "one");  // nothing after the stop was asked for
  const auto aborts = calls("rkllm_abort");
  ASSERT_EQ(aborts.size(), 1u);
  EXPECT_TRUE(has(aborts[0], "running=1") && has(aborts[0], "from_callback=0")) << aborts[0];
  ASSERT_EQ(calls("rkllm_run").size(), 1u);
  // The runtime stopped before its last chunk: the abort reached it while it generated.
  EXPECT_TRUE(has(calls("rkllm_run")[0], "aborted=1")) << calls("rkllm_run")[0];
  EXPECT_FALSE(has(calls("rkllm_run")[0], "chunks=5")) << calls("rkllm_run")[0];

  // The next question, with the flag cleared, runs to its end on the same handle.
  cancel = false;
  answer.clear();
  m.generate(
      "Again.", nullptr, true, [&](std::string_view s) { answer += s; }, &cancel);
  EXPECT_EQ(answer, "one two three four five");
  EXPECT_EQ(calls("rkllm_abort").size(), 1u);  // no abort without a stop
  EXPECT_TRUE(has(calls("rkllm_run").at(1), "aborted=0")) << calls("rkllm_run").at(1);
  // A flag already set stops the turn before the runtime starts it.
  cancel = true;
  EXPECT_EQ(error_of([&] {
              m.generate(
                  "x", nullptr, true, [](std::string_view) {}, &cancel);
            }),
            "the answer was stopped");
  EXPECT_EQ(calls("rkllm_run").size(), 2u);
}

// RKLLMInput.enable_thinking, in both ABIs: what RkllmOptions says (--think on).
TEST_P(RkllmContract, ThinkingSwitchReachesTheRuntime) {
  RkllmOptions o;
  o.enable_thinking = true;
  RkllmTextModel m(RkllmApi::load(), model(), o);
  m.generate("Think.", nullptr, true, [](std::string_view) {});
  EXPECT_TRUE(has(calls("rkllm_run").at(0), "enable_thinking=1")) << calls("rkllm_run").at(0);
}

// Qwen3.5 came with RKLLM 1.3.0: a 1.2.3 runtime refuses such a file before rkllm_init, in one
// line; 1.3.0 loads it.
TEST_P(RkllmContract, Qwen35NeedsRuntime130) {
  const std::string path = file("Qwen3.5-0.8B_w8a8_rk3588.rkllm",
                                std::string("FAKE-RKLLM ") + GetParam().version + "\nanswer Hi.\n");
  if (v130()) {
    RkllmTextModel m(RkllmApi::load(), path);
    std::string answer;
    m.generate("Hello", nullptr, true, [&](std::string_view s) { answer += s; });
    EXPECT_EQ(answer, "Hi.");
    return;
  }
  try {
    RkllmTextModel m(RkllmApi::load(), path);
    ADD_FAILURE() << "a 1.2.3 runtime took a Qwen3.5 file";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path + ": a Qwen3.5 model needs the RKLLM runtime 1.3.0 or later"),
              std::string::npos)
        << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
  EXPECT_TRUE(calls("rkllm_init").empty());
}

TEST(NpuModelFiles, NamesQwen35) {
  for (const char* yes :
       {"/m/Qwen3.5-0.8B_w8a8_rk3588.rkllm", "qwen3_5-2b.rkllm", "QWEN3-5.rkllm", "x/qwen35.rkllm"})
    EXPECT_TRUE(names_qwen35(yes)) << yes;
  for (const char* no :
       {"/m/qwen3-vl-2b-instruct_w8a8_rk3588.rkllm", "/qwen3.5/model.rkllm", "qwen2.5-vl.rkllm"})
    EXPECT_FALSE(names_qwen35(no)) << no;
}

TEST_F(FakeNpuTest, RkllmMissingSymbol) {
  ::setenv("REEL_RKLLM_LIB", FAKE_RKLLM_NOCLEAR_LIB, 1);
  const std::string e = error_of([] { RkllmApi::load(); });
  EXPECT_NE(e.find("has no symbol rkllm_clear_kv_cache"), std::string::npos) << e;
}

TEST_F(FakeNpuTest, RkllmMissingLibrary) {
  ::setenv("REEL_RKLLM_LIB", "/nonexistent/librkllmrt.so", 1);
  const std::string e = error_of([] { RkllmApi::load(); });
  EXPECT_NE(e.find("cannot load the RKLLM runtime /nonexistent/librkllmrt.so"), std::string::npos)
      << e;
  EXPECT_NE(e.find("REEL_RKLLM_LIB"), std::string::npos) << e;
}

// A library that writes an RKLLMParam of neither size is not guessed at.
TEST(RkllmAbiProbe, RefusesAnUnknownParamSize) {
  struct Small {
    unsigned char bytes[96];
  };
  auto fn = +[]() -> Small {
    Small s;
    std::memset(&s, 1, sizeof s);
    return s;
  };
  std::string source;
  try {
    detect_rkllm_abi(reinterpret_cast<void*>(fn), source);
    FAIL() << "no error";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("wrote 96 bytes"), std::string::npos) << e.what();
  }
}

TEST(RknpuModelFiles, ByExtensionInAnyCase) {
  EXPECT_TRUE(is_rknn_file("qwen3-vl-2b-vision_rk3588.rknn"));
  EXPECT_TRUE(is_rknn_file("/models/V.RKNN"));
  EXPECT_FALSE(is_rknn_file(".rknn"));  // a name, not only an extension
  EXPECT_FALSE(is_rknn_file("v.rknn.gguf"));
  EXPECT_TRUE(is_rkllm_file("qwen3-vl-2b-instruct_w8a8_rk3588.rkllm"));
  EXPECT_FALSE(is_rkllm_file("t.rknn"));
  EXPECT_FALSE(is_rknn_file("t.rkllm"));
}

}  // namespace
}  // namespace reel::rknpu
